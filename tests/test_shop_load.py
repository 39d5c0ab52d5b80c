"""The load command against a real server with two uvicorn workers, one SIGKILLed mid-run inside a
payment, on SQLite and on PostgreSQL: every invariant holds (zero violations), the killed turns were
resent and none is lost; the knee rule; TCP_NODELAY on the server's sockets."""

import json
import os
import socket
import subprocess
import sys
import uuid

import httpx
import pytest

from fieldnotes.shop.__main__ import main
from fieldnotes.shop.loadtest import _await_replacement, _live_children, percentiles_ms
from fieldnotes.shop.nlu import save_nlu, trained_nlu
from fieldnotes.shop.server import NoDelayHTTPProtocol, running_server
from fieldnotes.shop.service import PAUSE_ENV
from fieldnotes.shop.store import temporary_postgres


@pytest.fixture(scope="module")
def nlu_file(tmp_path_factory):
    return save_nlu(trained_nlu(1500, 1), tmp_path_factory.mktemp("nlu") / "nlu.pkl")


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'shop.db'}"
        return
    import psycopg

    with temporary_postgres() as server:
        name = "t" + uuid.uuid4().hex[:12]
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {name}")
        yield server.rsplit("/", 1)[0] + "/" + name


def test_percentiles_are_in_milliseconds():
    assert percentiles_ms([0.001 * i for i in range(1, 101)]) == pytest.approx({"p50": 50.5, "p95": 95.05,
                                                                                "p99": 99.01})


def test_a_killed_worker_not_yet_reaped_is_not_counted_alive_and_a_new_one_is_awaited():
    import psutil

    me = psutil.Process(os.getpid())
    dead = subprocess.Popen([sys.executable, "-c", "pass"])  # exits; nobody reaps it yet: a zombie
    psutil.wait_procs([psutil.Process(dead.pid)], timeout=0)  # (does not reap: only polls status)
    while psutil.Process(dead.pid).status() != psutil.STATUS_ZOMBIE:
        pass
    try:
        before = _live_children(me)
        assert dead.pid not in before
        assert _await_replacement(me, before, 0.2) == (before, None)
        late = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(5)"])
        live, seen = _await_replacement(me, before, 5.0)
        assert late.pid in live and seen is not None
        late.kill()
        late.wait()
    finally:
        dead.wait()


def test_the_load_command_refuses_a_remote_url(tmp_path):
    with pytest.raises(ValueError, match="url"):
        main(["load", "--url", "http://example.com:80", "--rate", "1", "--seconds", "1", "--out", str(tmp_path)])


@pytest.mark.slow
def test_killing_a_worker_inside_a_payment_breaks_no_invariant(db_url, nlu_file, tmp_path):
    # every payment waits 0.8 s between its pending record and the charge, so the kill lands there
    with running_server(db_url, workers=2, products=240, seed=1, nlu_path=nlu_file, timeout_rate=0.2,
                        env={PAUSE_ENV: "0.8"}) as server:
        main(["load", "--url", server.url, "--rate", "6", "--seconds", "3", "--out", str(tmp_path),
              "--kill-worker-after", "1"])
        result = json.loads((tmp_path / "load.json").read_text())
        assert httpx.get(server.url + "/health", timeout=10).json()["pid"] != result["killed_worker"]
    assert result["killed_worker"] and result["payments_settling_on_killed_worker"] >= 1
    assert result["in_flight_at_kill"] >= 2 and result["retries"] > 0
    assert result["confirms_committed_unanswered"] >= 1  # a confirmation committed, its worker died, the resend paid
    assert result["invariants"] == dict.fromkeys(result["invariants"], 0) and len(result["invariants"]) == 10
    assert result["errors"] == 0 and result["orders"] >= 1 and result["products"] == 240
    assert result["turns"] >= 5 * result["shoppers"] and result["latency_ms"]["p99"] >= result["latency_ms"]["p50"]
    assert len(result["load_average"]["start"]) == 3 and len(result["load_average"]["end"]) == 3
    assert result["server_workers"]["before"] >= 2 and result["server_workers"]["started"] >= 1  # uvicorn replaced it
    assert 0 < result["server_workers"]["replaced_after_s"] <= result["server_workers"]["waited_up_to_s"] + 1
    assert 0 <= result["reconciled"]["unpaid_before"] <= result["orders"]


def test_the_knee_is_the_last_rate_before_the_first_failure():
    from fieldnotes.shop.loadtest import knee

    rows = [{"rate": r, "latency_ms": {"p99": p}, "errors": e} for r, p, e in [(1, 40, 0), (2, 90, 0), (4, 80, 2),
                                                                            (8, 60, 0)]]
    assert knee(rows)["rate"] == 2  # 8 passes after 4 failed: a lucky run, not sustained
    assert knee(list(reversed(rows)))["rate"] == 2 and knee(rows, target_ms=30) is None
    rows[2]["errors"] = 0
    assert knee(rows)["rate"] == 8


def test_server_connections_set_tcp_nodelay_even_on_a_socket_made_without_a_protocol_number(monkeypatch):
    listener = socket.socket(socket.AF_INET)  # what uvicorn binds with --workers >= 2 (proto 0)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    client = socket.create_connection(listener.getsockname())
    conn, _ = listener.accept()

    class Transport:
        def get_extra_info(self, name, default=None):
            return conn if name == "socket" else default

    assert conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 0
    monkeypatch.setattr(NoDelayHTTPProtocol.__mro__[1], "connection_made", lambda self, transport: None)
    NoDelayHTTPProtocol.__new__(NoDelayHTTPProtocol).connection_made(Transport())  # only our part runs
    assert conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
    for s in (client, conn, listener):
        s.close()
