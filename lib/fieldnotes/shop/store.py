"""Orders, stock, payments and conversation state in a real database: SQLite (WAL) or PostgreSQL.

One :class:`Store` speaks to either, chosen by URL (``sqlite:///path/shop.db`` or
``postgresql://user@host:port/db``). Every change happens inside :meth:`Store.transaction`;
stock is decremented only where enough is left (and a CHECK keeps it from going negative),
orders are keyed by the confirmation that placed them, and each session's state carries a
version that every accepted message advances exactly once, so any worker can serve any turn.
:func:`temporary_postgres` starts a throw-away PostgreSQL server on 127.0.0.1 for tests.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import queue
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

from fieldnotes.ports import free_port
from fieldnotes.shop.catalog import Catalog

SCHEMA = """
CREATE TABLE IF NOT EXISTS products (product_id TEXT PRIMARY KEY, title TEXT NOT NULL, ptype TEXT NOT NULL,
  brand TEXT NOT NULL, colour TEXT NOT NULL, gender TEXT NOT NULL, price_vnd BIGINT NOT NULL CHECK (price_vnd > 0));
CREATE TABLE IF NOT EXISTS variants (sku TEXT PRIMARY KEY, product_id TEXT NOT NULL REFERENCES products,
  size TEXT NOT NULL, stock INTEGER NOT NULL CHECK (stock >= 0), initial_stock INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS sessions (session_id TEXT PRIMARY KEY, version INTEGER NOT NULL,
  last_message_id INTEGER NOT NULL, state TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS messages (session_id TEXT NOT NULL REFERENCES sessions, message_id INTEGER NOT NULL,
  request_hash TEXT NOT NULL, reply TEXT NOT NULL, PRIMARY KEY (session_id, message_id));
CREATE TABLE IF NOT EXISTS orders (order_id TEXT PRIMARY KEY, session_id TEXT NOT NULL REFERENCES sessions,
  confirm_key TEXT NOT NULL UNIQUE, status TEXT NOT NULL, name TEXT NOT NULL, phone TEXT NOT NULL,
  address TEXT NOT NULL, total_vnd BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS order_lines (order_id TEXT NOT NULL REFERENCES orders, sku TEXT NOT NULL REFERENCES variants,
  quantity INTEGER NOT NULL CHECK (quantity > 0), price_vnd BIGINT NOT NULL, PRIMARY KEY (order_id, sku));
CREATE TABLE IF NOT EXISTS payments (idempotency_key TEXT PRIMARY KEY, order_id TEXT NOT NULL REFERENCES orders,
  request_hash TEXT NOT NULL, status TEXT NOT NULL, charge_id TEXT, response TEXT);
CREATE TABLE IF NOT EXISTS provider_ledger (idempotency_key TEXT PRIMARY KEY, request_hash TEXT NOT NULL,
  charge_id TEXT NOT NULL, amount_vnd BIGINT NOT NULL, status TEXT NOT NULL, response TEXT NOT NULL);
"""
ORDER_STATUSES = ("placed", "paid", "cancelled")
PAYMENT_KEY_PREFIX = "pay:"
"""An order's payment idempotency key is this prefix and its order id."""


class OutOfStock(Exception):
    """A variant has fewer units left than an order asks for."""


class StaleState(Exception):
    """A session's state changed since it was read (another worker served a turn)."""


def request_hash(body: object) -> str:
    """A stable fingerprint of a JSON-able request body (hex SHA-256)."""
    return hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


class Tx:
    """One open transaction: ``execute``, ``one`` and ``all`` with ``?`` placeholders."""

    def __init__(self, conn, postgres: bool):
        self._conn, self._pg = conn, postgres

    def execute(self, sql: str, params: tuple = ()):
        """Run one statement; returns the cursor (``rowcount`` for updates)."""
        if self._pg:
            sql = sql.replace("?", "%s")
        cur = self._conn.cursor()
        cur.execute(sql, params)
        return cur

    def one(self, sql: str, params: tuple = ()) -> tuple | None:
        """The first row of a query, or None."""
        return self.execute(sql, params).fetchone()

    def all(self, sql: str, params: tuple = ()) -> list[tuple]:
        """Every row of a query."""
        return list(self.execute(sql, params).fetchall())


class Store:
    """The shop's database: a small pool of connections to SQLite (WAL) or PostgreSQL."""

    def __init__(self, url: str, *, pool_size: int = 4):
        if not isinstance(url, str) or not url.startswith(("sqlite:///", "postgresql://")):
            raise ValueError(f"url must start with 'sqlite:///' or 'postgresql://', got {url!r}")
        self.url = url
        self.postgres = url.startswith("postgresql://")
        self._pool: queue.LifoQueue = queue.LifoQueue()
        self._pool_size = pool_size

    def _connect(self):
        """A new connection, configured for concurrent writers."""
        if self.postgres:
            import psycopg

            return psycopg.connect(self.url, autocommit=True)
        import sqlite3

        conn = sqlite3.connect(self.url.removeprefix("sqlite:///"), timeout=30, isolation_level=None,
                               check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA busy_timeout=30000")
        return conn

    @contextlib.contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[Tx]:
        """A transaction: committed when the block ends, rolled back if it raises.

        For a write, SQLite takes the write lock at the start (BEGIN IMMEDIATE), so two workers
        never interleave; PostgreSQL runs READ COMMITTED and locks the rows it updates. A read
        (``write=False``) takes no write lock (SQLite BEGIN DEFERRED, PostgreSQL READ ONLY).
        """
        try:
            conn = self._pool.get_nowait()
        except queue.Empty:
            conn = self._connect()
        ok = False
        try:
            if self.postgres:
                conn.execute("BEGIN" if write else "BEGIN READ ONLY")
            else:
                conn.execute("BEGIN IMMEDIATE" if write else "BEGIN DEFERRED")
            yield Tx(conn, self.postgres)
            conn.execute("COMMIT")
            ok = True
        finally:
            if not ok:
                with contextlib.suppress(Exception):
                    conn.execute("ROLLBACK")
            if self._pool.qsize() < self._pool_size:
                self._pool.put(conn)
            else:
                conn.close()

    def close(self) -> None:
        """Close every pooled connection."""
        while not self._pool.empty():
            self._pool.get_nowait().close()

    # -------------------------------------------------------------- set-up

    def create_schema(self) -> None:
        """Create the tables if they do not exist."""
        with self.transaction() as tx:
            for statement in filter(str.strip, SCHEMA.split(";")):
                tx.execute(statement)

    def add_catalog(self, catalog: Catalog) -> None:
        """Insert the catalog's products and variants (their stock is also the initial stock)."""
        with self.transaction() as tx:
            for p in catalog.products:
                tx.execute("INSERT INTO products VALUES (?, ?, ?, ?, ?, ?, ?)",
                           (p.product_id, p.title, p.ptype, p.brand, p.colour, p.gender, p.price_vnd))
            for v in catalog.variants:
                tx.execute("INSERT INTO variants VALUES (?, ?, ?, ?, ?)",
                           (v.sku, v.product_id, v.size, v.stock, v.stock))

    def stock(self) -> dict[str, int]:
        """Units left of every variant, by SKU."""
        with self.transaction() as tx:
            return dict(tx.all("SELECT sku, stock FROM variants"))

    # -------------------------------------------------------------- sessions

    def create_session(self, state: dict) -> str:
        """A new conversation with its initial state; returns its id."""
        sid = uuid.uuid4().hex
        with self.transaction() as tx:
            tx.execute("INSERT INTO sessions VALUES (?, 0, 0, ?)", (sid, json.dumps(state)))
        return sid

    @staticmethod
    def load_session(tx: Tx, session_id: str, *, lock: bool = True) -> tuple[int, int, dict] | None:
        """(version, last message id, state) of a session, row-locked on PostgreSQL unless
        ``lock`` is False; None if unknown."""
        suffix = " FOR UPDATE" if tx._pg and lock else ""
        row = tx.one(f"SELECT version, last_message_id, state FROM sessions WHERE session_id = ?{suffix}",
                     (session_id,))
        return None if row is None else (row[0], row[1], json.loads(row[2]))

    @staticmethod
    def save_session(tx: Tx, session_id: str, version: int, message_id: int, state: dict) -> None:
        """Store the state after message ``message_id``; StaleState if the version moved meanwhile."""
        cur = tx.execute(
            "UPDATE sessions SET version = version + 1, last_message_id = ?, state = ? "
            "WHERE session_id = ? AND version = ?", (message_id, json.dumps(state), session_id, version))
        if cur.rowcount != 1:
            raise StaleState(f"session {session_id} moved past version {version}")

    @staticmethod
    def save_state(tx: Tx, session_id: str, state: dict) -> None:
        """Replace a session's state within the transaction that already advanced its version."""
        tx.execute("UPDATE sessions SET state = ? WHERE session_id = ?", (json.dumps(state), session_id))

    @staticmethod
    def recorded_reply(tx: Tx, session_id: str, message_id: int) -> tuple[str, dict] | None:
        """(request hash, reply) recorded for a message, or None if it was never answered."""
        row = tx.one("SELECT request_hash, reply FROM messages WHERE session_id = ? AND message_id = ?",
                     (session_id, message_id))
        return None if row is None else (row[0], json.loads(row[1]))

    @staticmethod
    def record_reply(tx: Tx, session_id: str, message_id: int, req_hash: str, reply: dict) -> None:
        """Keep the reply to a message, so that a repeat gets the same answer."""
        tx.execute("INSERT INTO messages VALUES (?, ?, ?, ?)",
                   (session_id, message_id, req_hash, json.dumps(reply, ensure_ascii=False)))

    @staticmethod
    def keep_response(tx: Tx, session_id: str, message_id: int, response: dict) -> dict:
        """Keep the first response sent for an answered message (with its reply record); returns
        the response kept, which is an earlier one if another worker kept one first."""
        row = tx.one("SELECT reply FROM messages WHERE session_id = ? AND message_id = ?", (session_id, message_id))
        if row is None:
            raise ValueError(f"message {message_id} of session {session_id} was never answered")
        recorded = json.loads(row[0])
        if recorded.get("response") is None:
            recorded["response"] = response
            tx.execute("UPDATE messages SET reply = ? WHERE session_id = ? AND message_id = ?",
                       (json.dumps(recorded, ensure_ascii=False), session_id, message_id))
        return recorded["response"]

    # -------------------------------------------------------------- orders

    @staticmethod
    def place_order(tx: Tx, session_id: str, confirm_key: str, lines: list[tuple[str, int]],
                    details: dict) -> str:
        """Create the order confirmed by ``confirm_key`` (once) and take its units from stock.

        ``lines`` are (SKU, quantity). Raises OutOfStock (the caller's transaction then rolls
        back, so nothing is written); a second call with the same key returns the first order.
        """
        order_id = "O" + hashlib.sha256(confirm_key.encode()).hexdigest()[:12]
        if tx.one("SELECT 1 FROM orders WHERE order_id = ?", (order_id,)):
            return order_id
        if not lines:
            raise ValueError("lines is empty; an order needs at least one (sku, quantity)")
        total = 0
        priced = []
        for sku, qty in lines:
            if qty <= 0:
                raise ValueError(f"quantity of {sku} must be > 0, got {qty}")
            cur = tx.execute("UPDATE variants SET stock = stock - ? WHERE sku = ? AND stock >= ?", (qty, sku, qty))
            if cur.rowcount != 1:
                raise OutOfStock(f"{sku} has fewer than {qty} units left")
            price = tx.one("SELECT p.price_vnd FROM variants v JOIN products p USING (product_id) WHERE v.sku = ?",
                           (sku,))[0]
            priced.append((sku, qty, price))
            total += qty * price
        tx.execute("INSERT INTO orders VALUES (?, ?, ?, 'placed', ?, ?, ?, ?)",
                   (order_id, session_id, confirm_key, details["name"], details["phone"], details["address"], total))
        for sku, qty, price in priced:
            tx.execute("INSERT INTO order_lines VALUES (?, ?, ?, ?)", (order_id, sku, qty, price))
        return order_id

    @staticmethod
    def order(tx: Tx, order_id: str) -> dict | None:
        """An order with its lines, or None."""
        row = tx.one("SELECT order_id, session_id, status, name, phone, address, total_vnd FROM orders "
                     "WHERE order_id = ?", (order_id,))
        if row is None:
            return None
        keys = ("order_id", "session_id", "status", "name", "phone", "address", "total_vnd")
        lines = tx.all("SELECT sku, quantity, price_vnd FROM order_lines WHERE order_id = ? ORDER BY sku", (order_id,))
        return dict(zip(keys, row, strict=True)) | {"lines": [list(line) for line in lines]}

    def orders_of(self, session_id: str) -> list[dict]:
        """Every order a session placed, with its lines."""
        with self.transaction() as tx:
            ids = [r[0] for r in tx.all("SELECT order_id FROM orders WHERE session_id = ? ORDER BY order_id",
                                        (session_id,))]
            return [self.order(tx, i) for i in ids]

    @staticmethod
    def cancel_order(tx: Tx, order_id: str) -> str:
        """Cancel a placed or paid order and put its units back; returns the status it had."""
        row = tx.one("SELECT status FROM orders WHERE order_id = ?", (order_id,))
        if row is None:
            raise ValueError(f"order_id {order_id!r} does not exist")
        if row[0] == "cancelled":
            return "cancelled"
        for sku, qty in tx.all("SELECT sku, quantity FROM order_lines WHERE order_id = ?", (order_id,)):
            tx.execute("UPDATE variants SET stock = stock + ? WHERE sku = ?", (qty, sku))
        tx.execute("UPDATE orders SET status = 'cancelled' WHERE order_id = ?", (order_id,))
        return row[0]

    # -------------------------------------------------------------- invariants

    def audit(self) -> dict[str, int]:
        """Violations of each database invariant (0 = held), read in one transaction; meant for a
        quiet database (after a run and :func:`fieldnotes.shop.payments.reconcile`), since a
        payment under way is briefly charged and not yet captured. Stock below zero is not audited:
        the schema's CHECK refuses it."""
        with self.transaction() as tx:
            q = lambda sql: int(tx.one(sql)[0])  # noqa: E731
            ledger_order = f"provider_ledger g LEFT JOIN orders o ON g.idempotency_key = '{PAYMENT_KEY_PREFIX}' || o.order_id"
            return {
                "units_sold_equal_units_ordered": q(
                    "SELECT COUNT(*) FROM variants v WHERE v.initial_stock - v.stock != COALESCE((SELECT SUM(l.quantity) "
                    "FROM order_lines l JOIN orders o USING (order_id) WHERE l.sku = v.sku AND o.status != 'cancelled'), 0)"),
                "one_captured_payment_per_paid_order": q(
                    "SELECT COUNT(*) FROM orders o WHERE (o.status = 'paid') != ((SELECT COUNT(*) FROM payments p "
                    "WHERE p.order_id = o.order_id AND p.status = 'captured') = 1) OR (SELECT COUNT(*) FROM payments p "
                    "WHERE p.order_id = o.order_id AND p.status = 'captured') > 1"),
                "no_charge_without_payment": q(
                    "SELECT COUNT(*) FROM provider_ledger g WHERE g.status = 'captured' AND NOT EXISTS (SELECT 1 FROM "
                    "payments p WHERE p.idempotency_key = g.idempotency_key AND p.status IN ('captured', 'refunded'))"),
                "every_charge_is_for_a_paid_order_or_refunded": q(
                    f"SELECT COUNT(*) FROM {ledger_order} WHERE g.status = 'captured' "
                    "AND (o.order_id IS NULL OR o.status != 'paid')"),
                "ledger_amount_equals_order_total": q(
                    f"SELECT COUNT(*) FROM {ledger_order} WHERE o.order_id IS NULL OR g.amount_vnd != o.total_vnd"),
                "no_confirmed_order_left_unpaid": q("SELECT COUNT(*) FROM orders WHERE status = 'placed'"),
                "repeated_messages_did_not_move_dialogue": q(
                    "SELECT COUNT(*) FROM sessions s WHERE s.version != (SELECT COUNT(*) FROM messages m "
                    "WHERE m.session_id = s.session_id)"),
            }


def open_store(url: str, catalog: Catalog | None = None) -> Store:
    """A store at ``url`` with its schema; ``catalog`` is loaded when given (into an empty store)."""
    store = Store(url)
    store.create_schema()
    if catalog is not None:
        store.add_catalog(catalog)
    return store


# ------------------------------------------------------------------ a throw-away PostgreSQL server

def postgres_bindir() -> Path | None:
    """Folder of the PostgreSQL server programs (``initdb``, ``pg_ctl``): Debian's versioned folder,
    else ``pg_config --bindir``, else PATH; None if the server is not installed."""
    debian = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    if debian:
        return debian[-1].parent
    if shutil.which("pg_config"):
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True)
        if out.returncode == 0 and (Path(out.stdout.strip()) / "initdb").exists():
            return Path(out.stdout.strip())
    found = shutil.which("initdb")
    return Path(found).parent if found else None


@contextlib.contextmanager
def temporary_postgres() -> Iterator[str]:
    """Start a PostgreSQL server in a temp folder on 127.0.0.1 and a free port; yield its URL; stop it.

    Run as root (as CI does), the server runs as the ``postgres`` user, since initdb refuses root.
    """
    bindir = postgres_bindir()
    if bindir is None:
        raise RuntimeError("PostgreSQL is not installed; run `python3 lib/fieldnotes/preflight.py test`")
    folder = Path(tempfile.mkdtemp(prefix="fieldnotes-pg-"))
    data = folder / "data"
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    port = free_port()
    log = folder / "server.log"
    try:
        subprocess.run([*as_user, str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres",
                        "--no-sync", "-E", "UTF8"], check=True, capture_output=True)
        options = f"-c listen_addresses=127.0.0.1 -p {port} -k {folder} -c fsync=off -c max_connections=200"
        subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w",
                        "start"], check=True, capture_output=True)
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                           capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)
