"""The assistant as a web service: one turn handler over the store, and the FastAPI app around it.

:func:`handle_turn` serves one message. It reads the session, checks the message (unknown
session: 404; a ``message_id`` already answered: the stored reply, or 409 if the text differs;
one that skips ahead: 409; empty, over-long or control-character text: a polite reply, nothing
written), runs the dialogue step, then writes everything the turn changes (new state, order,
stock, the reply kept for replays) in **one** transaction that first checks the session's
version did not move since it was read; if it did (another worker served a turn meanwhile) the
turn is recomputed. Payment and the provider's refund follow the commit, and a replay of the
confirming message resumes a payment that did not finish. Nothing about a conversation lives in
process memory, so any uvicorn worker can serve any turn.
"""

from __future__ import annotations

import contextlib
import os
import threading
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, replace
from importlib import resources
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field

from fieldnotes.shop.catalog import Catalog, make_catalog
from fieldnotes.shop.dialog import SHOWN, Shop, new_state, step
from fieldnotes.shop.nlu import Parse, load_nlu
from fieldnotes.shop.payments import MockProvider, cancel_in, pay_order, payment_key, reconcile
from fieldnotes.shop.search import build_index, search
from fieldnotes.shop.store import OutOfStock, StaleState, Store, Tx, request_hash
from fieldnotes.shop.text import MAX_MESSAGE_CHARS

RETRIES = 5
"""Times a turn is recomputed when another worker moved the session between read and write."""
_ALLOWED_CONTROLS = {"\t", "\n", "\r"}


class TurnError(Exception):
    """A message the service refuses with an HTTP status (404 unknown session, 409 out of order)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


@dataclass
class Assistant:
    """What serves a turn: the store (the only state), the shop (catalog + search) and a parser."""

    store: Store
    shop: Shop
    parse: Callable[[str], Parse]
    provider: MockProvider
    pause_before_charge_s: float = 0.0
    """Test hook (s): hold each payment between its pending record and the charge."""


def text_problem(text: str) -> str | None:
    """A polite reply (Vietnamese, with the English gloss) if ``text`` cannot be read, else None."""
    if len(text) > MAX_MESSAGE_CHARS:
        return (f"Tin nhắn dài quá ({len(text)} ký tự); bạn viết ngắn hơn {MAX_MESSAGE_CHARS} ký tự nhé. "
                f"(Message too long: at most {MAX_MESSAGE_CHARS} characters.)")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "Tin nhắn có ký tự không đọc được; bạn gõ lại giúp mình nhé. (Unreadable characters.)"
    if any(unicodedata.category(c) == "Cc" and c not in _ALLOWED_CONTROLS for c in text):
        return "Tin nhắn có ký tự điều khiển lạ; bạn gõ lại giúp mình nhé. (Control characters are not accepted.)"
    if not text.strip():
        return "Bạn chưa nhập gì cả; bạn cần tìm sản phẩm gì ạ? (The message is empty.)"
    return None


def shown_products(shop: Shop, state: dict) -> list[dict]:
    """The products a turn is about: the chosen one, else the listed search results."""
    ids = [state["product"]] if state["product"] else state["results"]
    out = []
    for pid in ids:
        p = shop.catalog.product(pid)
        sizes = [v.size for v in shop.catalog.variants_of(pid) if v.size]
        out.append({"id": p.product_id, "title": p.title, "price_vnd": p.price_vnd, "brand": p.brand,
                    "colour": p.colour, "sizes": sizes})
    return out


def _apply(tx: Tx, session_id: str, message_id: int, state: dict, reply: str, effects) -> tuple[dict, str, str | None]:
    """Apply a step's effects inside the turn's transaction; returns (state, reply, what happened)."""
    happened = None
    for effect in effects:
        if effect.kind == "place_order":
            tx.execute("SAVEPOINT place_order")
            try:
                order_id = Store.place_order(tx, session_id, f"{session_id}:{message_id}", list(effect.lines),
                                             effect.details)
            except OutOfStock:
                tx.execute("ROLLBACK TO SAVEPOINT place_order")
                state.update(stage="browse", cart=[])
                reply = "Rất tiếc, sản phẩm vừa hết hàng nên chưa đặt được; giỏ hàng đã được làm trống."
                continue
            tx.execute("RELEASE SAVEPOINT place_order")
            state["order_id"], happened = order_id, "placed"
            reply += f" Mã đơn {order_id}."
        elif effect.kind == "cancel_order":
            cancel_in(tx, effect.order_id)
            happened = "cancelled"
    if "{status}" in reply:
        row = tx.one("SELECT status FROM orders WHERE order_id = ?", (state.get("cancel_asked") or state["order_id"],))
        reply = reply.replace("{status}", {"placed": "đã đặt, chờ thanh toán", "paid": "đã thanh toán",
                                           "cancelled": "đã hủy"}.get(row[0] if row else "", "không rõ"))
    return state, reply, happened


class Settling:
    """How many payments and refunds this process is making right now, between a turn's commit and
    the provider's answer (thread-safe). Diagnostics only, reported by /health so that a kill test
    can strike a worker inside that window; nothing about a conversation depends on it."""

    def __init__(self):
        self.lock, self.now = threading.Lock(), 0

    @contextlib.contextmanager
    def one(self):
        """Count one settlement for the duration of the block."""
        with self.lock:
            self.now += 1
        try:
            yield
        finally:
            with self.lock:
                self.now -= 1


SETTLING = Settling()


def _settle(assistant: Assistant, recorded: dict) -> None:
    """After the commit: pay an order the turn placed (or finish paying it), refund one it cancelled."""
    with SETTLING.one():
        _settle_now(assistant, recorded)


def _settle_now(assistant: Assistant, recorded: dict) -> None:
    """The payment or refund of :func:`_settle`."""
    order_id = recorded["order_id"]
    if recorded["happened"] == "placed":
        pay_order(assistant.store, assistant.provider, order_id, pause_before_charge_s=assistant.pause_before_charge_s)
    elif recorded["happened"] == "cancelled":
        assistant.provider.refund(payment_key(order_id))


def _response(assistant: Assistant, session_id: str, recorded: dict, message_id: int, replayed: bool) -> dict:
    """The reply as first sent. A turn about an order sends the order as the database holds it after
    the turn's payment or refund; that first response is kept with the turn (the first one to be
    computed wins), so a replay returns it byte for byte rather than re-reading the order."""
    if recorded.get("response") is not None:
        return recorded["response"] | {"replayed": replayed}
    order = None
    if recorded["order_id"]:
        with assistant.store.transaction(write=False) as tx:
            order = Store.order(tx, recorded["order_id"])
    response = {"reply": recorded["reply"], "state": recorded["state"], "products": recorded["products"],
                "order": order, "message_id": message_id, "replayed": replayed, "accepted": True}
    if order is not None:
        with assistant.store.transaction() as tx:
            first = Store.keep_response(tx, session_id, message_id, response | {"replayed": False})
        return first | {"replayed": replayed}
    return response


def handle_turn(assistant: Assistant, session_id: str, message_id: int, text: str) -> dict:
    """Serve one message; returns the ChatResponse fields. Raises TurnError for a 4xx."""
    store = assistant.store
    for _ in range(RETRIES):
        with store.transaction(write=False) as tx:
            session = store.load_session(tx, session_id, lock=False)
            if session is None:
                raise TurnError(404, f"session_id {session_id!r} does not exist; POST /sessions starts one")
            version, last, state = session
            problem = text_problem(text)
            if problem:
                return {"reply": problem, "state": state["stage"], "products": [], "order": None,
                        "message_id": message_id, "replayed": False, "accepted": False}
            body = request_hash({"text": text})
            seen = store.recorded_reply(tx, session_id, message_id)
        if seen is not None:
            if seen[0] != body:
                raise TurnError(409, f"message_id {message_id} of session {session_id} was already used "
                                     "with a different text")
            if seen[1].get("response") is None:
                _settle(assistant, seen[1])  # finishes a payment a killed worker or a timeout left open
            return _response(assistant, session_id, seen[1], message_id, replayed=True)
        if message_id != last + 1:
            raise TurnError(409, f"message_id {message_id} is out of order; session {session_id} expects "
                                 f"{last + 1}")
        new, reply, effects = step(state, assistant.parse(text), assistant.shop)
        try:
            with store.transaction() as tx:
                # first the version check (on PostgreSQL it waits for a concurrent turn's row lock)
                store.save_session(tx, session_id, version, message_id, new)
                new, reply, happened = _apply(tx, session_id, message_id, new, reply, effects)
                store.save_state(tx, session_id, new)
                recorded = {"reply": reply, "state": new["stage"], "products": shown_products(assistant.shop, new),
                            "order_id": new["order_id"], "happened": happened}
                store.record_reply(tx, session_id, message_id, body, recorded)
        except StaleState:
            continue
        _settle(assistant, recorded)
        return _response(assistant, session_id, recorded, message_id, replayed=False)
    raise TurnError(409, f"session {session_id} is busy (changed {RETRIES} times while this turn was served); "
                         "send the message again")


# ------------------------------------------------------------------ the app


class ChatRequest(BaseModel):
    """One message from the shopper: ``message_id`` counts 1, 2, ... within a session."""

    session_id: str = Field(min_length=1, max_length=64)
    message_id: int = Field(ge=1, le=2**63 - 1)  # a 64-bit signed integer in both databases
    text: str


class ProductOut(BaseModel):
    """A product shown in a reply (price in VND)."""

    id: str
    title: str
    price_vnd: int
    brand: str
    colour: str
    sizes: list[str]


class OrderOut(BaseModel):
    """The session's order as the database holds it; ``lines`` are [sku, quantity, price_vnd]."""

    order_id: str
    status: str
    total_vnd: int
    name: str
    phone: str
    address: str
    lines: list[tuple[str, int, int]]


class ChatResponse(BaseModel):
    """The assistant's answer: reply text, dialogue stage, products shown, the order if any."""

    reply: str
    state: str
    products: list[ProductOut]
    order: OrderOut | None
    message_id: int
    replayed: bool
    accepted: bool


class SessionOut(BaseModel):
    """A new conversation."""

    session_id: str


def _assistant_of(request: Request) -> Assistant:
    """The assistant the app built at start-up: the one injected dependency (tests may override it)."""
    return request.app.state.assistant


AssistantDep = Annotated[Assistant, Depends(_assistant_of)]


def with_stock(catalog: Catalog, store: Store) -> Catalog:
    """The catalog with each variant's stock as the database holds it now."""
    stock = store.stock()
    return Catalog(catalog.products, tuple(replace(v, stock=stock[v.sku]) for v in catalog.variants))


def units_left(store: Store, product_id: str) -> dict[str, int]:
    """Units left of each variant of a product, read from the database now."""
    with store.transaction(write=False) as tx:
        return dict(tx.all("SELECT sku, stock FROM variants WHERE product_id = ?", (product_id,)))


def in_stock_now(store: Store, product_ids: list[str], size: str | None) -> list[str]:
    """The products (in the given order) that have a variant in stock now, of ``size`` if given."""
    if not product_ids:
        return []
    marks = ", ".join("?" * len(product_ids))
    with store.transaction(write=False) as tx:
        rows = tx.all(f"SELECT product_id, size FROM variants WHERE stock > 0 AND product_id IN ({marks})",
                      tuple(product_ids))
    ok = {pid for pid, s in rows if size is None or s.lower() == size.lower()}
    return [pid for pid in product_ids if pid in ok]


def build_assistant(db_url: str, catalog: Catalog, parse: Callable[[str], Parse], *, timeout_rate: float = 0.0,
                    seed: int = 0, pause_before_charge_s: float = 0.0,
                    views: tuple[str, ...] = ("accented", "folded")) -> Assistant:
    """An assistant over the store at ``db_url`` (which already holds ``catalog``) that searches
    ``views``; first it reconciles payments a killed worker left half-done
    (:func:`~fieldnotes.shop.payments.reconcile`)."""
    store = Store(db_url)
    provider = MockProvider(store, timeout_rate=timeout_rate, seed=seed)
    reconcile(store, provider)
    catalog = with_stock(catalog, store)
    index = build_index(catalog)
    def live_search(text: str, filters) -> list[str]:  # the index's stock is as of start-up: recheck it
        return in_stock_now(store, search(index, text, filters=filters, k=4 * SHOWN, views=views),
                            filters.size)[:SHOWN]

    shop = Shop(catalog, live_search, lambda pid: units_left(store, pid))
    return Assistant(store, shop, parse, provider, pause_before_charge_s)


def create_app(make_assistant: Callable[[], Assistant]):
    """The FastAPI app: the assistant is built at start-up (in each worker) and injected per request."""
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.assistant = make_assistant()
        yield
        app.state.assistant.store.close()

    app = FastAPI(title="fieldnotes shop assistant", lifespan=lifespan)

    @app.post("/sessions", response_model=SessionOut, status_code=201)
    def start_session(assistant: AssistantDep) -> dict:
        return {"session_id": assistant.store.create_session(new_state())}

    @app.post("/chat", response_model=ChatResponse)
    def chat(request: ChatRequest, assistant: AssistantDep) -> dict:
        try:
            return handle_turn(assistant, request.session_id, request.message_id, request.text)
        except TurnError as e:
            raise HTTPException(e.status, e.message) from None

    @app.get("/sessions/{session_id}/orders", response_model=list[OrderOut])
    def orders(session_id: str, assistant: AssistantDep) -> list[dict]:
        return assistant.store.orders_of(session_id)

    @app.get("/health")
    def health(assistant: AssistantDep) -> dict:
        return {"status": "ok", "pid": os.getpid(), "products": len(assistant.shop.catalog.products),
                "settling": SETTLING.now}

    @app.get("/audit")
    def audit(assistant: AssistantDep) -> dict[str, int]:
        return assistant.store.audit()

    @app.post("/reconcile")
    def reconcile_payments(assistant: AssistantDep) -> dict[str, int]:
        return reconcile(assistant.store, assistant.provider)

    @app.get("/", response_class=HTMLResponse)
    def page() -> str:
        return resources.files("fieldnotes.shop").joinpath("chat.html").read_text(encoding="utf-8")

    return app


ENV = {"db": "FIELDNOTES_SHOP_DB", "products": "FIELDNOTES_SHOP_PRODUCTS", "seed": "FIELDNOTES_SHOP_SEED",
       "nlu": "FIELDNOTES_SHOP_NLU", "timeout_rate": "FIELDNOTES_SHOP_TIMEOUT_RATE"}
"""Environment variables through which ``serve`` configures every uvicorn worker."""
PAUSE_ENV = "FIELDNOTES_SHOP_PAUSE_BEFORE_CHARGE_S"
VIEWS_ENV = "FIELDNOTES_SHOP_VIEWS"
"""The search views a worker searches, comma-separated (``serve --views``; default both)."""
"""Optional test hook (s): each worker holds every payment this long between recording it as
pending and charging, so a kill test's SIGKILL lands inside the commit-to-charge window."""


def app_from_env():
    """The app as a uvicorn worker builds it (``--factory``), configured by the ``ENV`` variables."""
    missing = [name for name in ENV.values() if name not in os.environ]
    if missing:
        raise ValueError(f"environment variables {missing} are not set; start the app with "
                         "`python -m fieldnotes.shop serve`")

    def make() -> Assistant:
        catalog = make_catalog(int(os.environ[ENV["products"]]), seed=int(os.environ[ENV["seed"]]))
        model = load_nlu(os.environ[ENV["nlu"]])
        return build_assistant(os.environ[ENV["db"]], catalog, model.parse,
                               timeout_rate=float(os.environ[ENV["timeout_rate"]]), seed=int(os.environ[ENV["seed"]]),
                               pause_before_charge_s=float(os.environ.get(PAUSE_ENV, "0")),
                               views=tuple(os.environ.get(VIEWS_ENV, "accented,folded").split(",")))

    return create_app(make)
