"""The load command against a real server with two uvicorn workers, one SIGKILLed mid-run, on SQLite
and on PostgreSQL: every invariant holds (zero violations) and no shopper's turn is lost."""

import json
import uuid

import httpx
import pytest

from fieldnotes.shop.__main__ import main
from fieldnotes.shop.loadtest import percentiles_ms
from fieldnotes.shop.nlu import save_nlu, trained_nlu
from fieldnotes.shop.server import running_server
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


def test_the_load_command_refuses_a_remote_url(tmp_path):
    with pytest.raises(ValueError, match="url"):
        main(["load", "--url", "http://example.com:80", "--rate", "1", "--seconds", "1", "--out", str(tmp_path)])


@pytest.mark.slow
def test_killing_a_worker_mid_run_breaks_no_invariant(db_url, nlu_file, tmp_path):
    with running_server(db_url, workers=2, products=240, seed=1, nlu_path=nlu_file, timeout_rate=0.2) as server:
        main(["load", "--url", server.url, "--rate", "6", "--seconds", "3", "--out", str(tmp_path),
              "--kill-worker-after", "1"])
        result = json.loads((tmp_path / "load.json").read_text())
        assert httpx.get(server.url + "/health", timeout=10).json()["pid"] != result["killed_worker"]
    assert result["killed_worker"] and result["invariants"] == dict.fromkeys(result["invariants"], 0)
    assert len(result["invariants"]) == 8 and result["errors"] == 0 and result["orders"] >= 1
    assert result["turns"] >= 5 * result["shoppers"] and result["latency_ms"]["p99"] >= result["latency_ms"]["p50"]


def test_the_knee_is_the_last_rate_within_the_target_without_errors():
    rows = [{"rate": r, "latency_ms": {"p99": p}, "errors": e} for r, p, e in [(1, 40, 0), (2, 90, 0), (4, 80, 2),
                                                                            (8, 400, 0)]]
    from fieldnotes.shop.loadtest import knee

    assert knee(rows)["rate"] == 2 and knee(rows, target_ms=30) is None
