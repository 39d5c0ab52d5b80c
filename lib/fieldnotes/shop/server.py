"""Running the service: ``serve`` (prepare the database, train or load the parser, start uvicorn)
and :func:`running_server`, which starts ``serve`` in a child process on 127.0.0.1 and always stops it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from uvicorn.protocols.http.auto import AutoHTTPProtocol

from fieldnotes.lifetime import starter_environment
from fieldnotes.ports import free_port
from fieldnotes.shop.catalog import Catalog, make_catalog
from fieldnotes.shop.search import VIEWS
from fieldnotes.shop.store import open_store

TRAIN_MESSAGES = 3000
"""Generated messages the parser is trained on when ``serve`` trains it."""


class NoDelayHTTPProtocol(AutoHTTPProtocol):
    """uvicorn's HTTP protocol with TCP_NODELAY set on every accepted connection.

    With ``--workers`` >= 2 uvicorn binds the listening socket itself as ``socket.socket(AF_INET)``
    (protocol number 0), and asyncio sets TCP_NODELAY only on sockets whose protocol number is
    IPPROTO_TCP, so the workers' connections keep Nagle's algorithm: a response written in two
    pieces (headers, then body) waits for the client's delayed ACK, about 40 ms on Linux. One worker
    binds through ``create_server(host, port)`` and never had the stall.
    """

    def connection_made(self, transport) -> None:  # noqa: D102 (asyncio.Protocol)
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().connection_made(transport)


def prepare_database(db_url: str, catalog: Catalog) -> None:
    """Create the schema and load ``catalog`` into an empty database; a database that already holds
    a shop must hold this one (same product ids and titles)."""
    store = open_store(db_url)
    try:
        with store.transaction(write=False) as tx:
            held = tx.all("SELECT product_id, title FROM products ORDER BY product_id")
        if not held:
            store.add_catalog(catalog)
        elif held != [(p.product_id, p.title) for p in catalog.products]:
            raise ValueError(f"db {db_url} already holds another shop ({len(held)} products); use an empty "
                             "database or the --products/--seed it was made with")
    finally:
        store.close()


def ensure_nlu(path: str | Path, *, messages: int, seed: int) -> Path:
    """The parser at ``path``: trained on ``messages`` generated training messages and written
    there if the file does not exist yet (seconds), else left as it is."""
    from fieldnotes.shop.nlu import save_nlu, trained_nlu

    path = Path(path)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        save_nlu(trained_nlu(messages, seed), path)
    return path


def serve(db_url: str, port: int, *, workers: int = 1, products: int = 500, seed: int = 0,
          nlu_path: str | None = None, train_messages: int = TRAIN_MESSAGES, timeout_rate: float = 0.0,
          host: str = "127.0.0.1", tcp_nodelay: bool = True, views: tuple[str, ...] = VIEWS) -> None:
    """Serve the shop on ``host:port`` with ``workers`` uvicorn processes until interrupted;
    ``tcp_nodelay=False`` keeps uvicorn's own sockets (see :class:`NoDelayHTTPProtocol`);
    ``views`` are the search views the workers search (the evaluation's choice)."""
    import uvicorn

    from fieldnotes.shop.service import ENV, VIEWS_ENV

    if not views or set(views) - set(VIEWS):
        raise ValueError(f"views must be a non-empty subset of {VIEWS}, got {views}")

    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    if not 0 < port < 65536:
        raise ValueError(f"port must be in 1..65535, got {port}")
    prepare_database(db_url, make_catalog(products, seed=seed))
    # a parser trained here lives in a folder of its own for the server's lifetime; one given as
    # nlu_path needs none (a folder made anyway is left behind whenever serve is SIGKILLed)
    with (contextlib.nullcontext(None) if nlu_path else tempfile.TemporaryDirectory(prefix="fieldnotes-shop-")) as tmp:
        model = ensure_nlu(nlu_path or Path(tmp) / "nlu.pkl", messages=train_messages, seed=seed)
        os.environ.update({ENV["db"]: db_url, ENV["products"]: str(products), ENV["seed"]: str(seed),
                           ENV["nlu"]: str(model), ENV["timeout_rate"]: str(timeout_rate),
                           VIEWS_ENV: ",".join(views)})
        http = "fieldnotes.shop.server:NoDelayHTTPProtocol" if tcp_nodelay else "auto"
        uvicorn.run("fieldnotes.shop.service:app_from_env", factory=True, host=host, port=port, workers=workers,
                    http=http, log_level="warning", access_log=False)


@dataclass(frozen=True)
class Server:
    """A running ``serve`` child process and its base URL."""

    url: str
    process: subprocess.Popen


@contextlib.contextmanager
def running_server(db_url: str, *, workers: int = 1, products: int = 200, seed: int = 0,
                   nlu_path: str | Path | None = None, timeout_rate: float = 0.0, tcp_nodelay: bool = True,
                   env: dict[str, str] | None = None, start_timeout_s: float = 180.0,
                   views: tuple[str, ...] = VIEWS) -> Iterator[Server]:
    """Start ``python -m fieldnotes.shop serve`` on 127.0.0.1 and a free port; yield it; stop it
    (the whole process group: supervisor and workers) however the block ends; it searches
    ``views``. ``env`` adds
    environment variables for the server (e.g. :data:`fieldnotes.shop.service.PAUSE_ENV`)."""
    import httpx

    port = free_port()
    cmd = [sys.executable, "-m", "fieldnotes.shop", "serve", "--db", db_url, "--port", str(port),
           "--workers", str(workers), "--products", str(products), "--seed", str(seed),
           "--timeout-rate", str(timeout_rate), "--views", *views]
    if nlu_path is not None:
        cmd += ["--nlu", str(nlu_path)]
    if not tcp_nodelay:
        cmd += ["--no-tcp-nodelay"]
    log = tempfile.TemporaryFile()
    process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                               env=os.environ | starter_environment() | (env or {}))
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + start_timeout_s
        while True:
            if process.poll() is not None:
                log.seek(0)
                raise RuntimeError(f"serve exited with {process.returncode}: {log.read().decode()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url + "/health", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"serve did not answer on {url} within {start_timeout_s} s")
            time.sleep(0.2)
        yield Server(url, process)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            pass
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # workers that outlived their supervisor
        process.wait()
        log.close()
