"""Find the knee of chapter 5's shop: open-loop load at rising rates, on SQLite and PostgreSQL.

Not part of the test suite (timing never decides pass/fail). For each database it starts
``python -m fieldnotes.shop serve`` with ``--workers`` uvicorn workers on 127.0.0.1, runs the
load generator (``fieldnotes.shop.loadtest``) at each rate for ``--seconds`` (dialogues started
per second; each dialogue is about eight turns, one every 0.25 s), ``--repeats`` runs per rate,
then a kill run at the highest rate on a server whose payments wait before the charge. The knee is the last rate, walking up,
before the first whose median p99 turn latency (from the scheduled send time) exceeds the target
or that had errors. First it measures one-at-a-time turn latency on a quiet server with 1 and 2
workers, the server's TCP_NODELAY on and off, the client's on and off (the ~40 ms stall of
Nagle's algorithm against delayed ACKs).

    python benchmarks/shop_load.py                       # both databases, default sweep
    python benchmarks/shop_load.py --db sqlite --rates 1 2 4 --seconds 5 --repeats 3

Writes ``shop_load.json`` and ``shop_load.md`` to ``--out`` (benchmarks/results). The test
PostgreSQL runs with fsync=off and SQLite with synchronous=NORMAL: say so beside any comparison.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import tempfile
import uuid
from pathlib import Path

KILL_PAUSE_S = 0.8
"""Seconds each payment of the kill run's server waits between its pending record and the charge."""


def nodelay_matrix(db_url: str, products: int, nlu: Path) -> list[dict]:
    """Median one-at-a-time latency (ms) of a chat turn and of /health on a quiet server, for 1 and
    2 workers x the server's TCP_NODELAY on/off x the client's on/off."""
    from fieldnotes.shop.loadtest import idle_latency_ms
    from fieldnotes.shop.server import running_server

    rows = []
    for workers in (1, 2):
        for server_nodelay in (False, True):
            with running_server(db_url, workers=workers, products=products, seed=0, nlu_path=nlu,
                                tcp_nodelay=server_nodelay) as server:
                for client_nodelay in (False, True):
                    ms = idle_latency_ms(server.url, tcp_nodelay=client_nodelay)
                    rows.append({"workers": workers, "server_nodelay": server_nodelay,
                                 "client_nodelay": client_nodelay, "chat_ms": ms["chat"], "health_ms": ms["health"]})
                    print(rows[-1], flush=True)
    return rows


def sweep_one(db_url: str, rates: list[float], seconds: float, workers: int, products: int, nlu: Path,
              repeats: int) -> dict:
    """Every rate (``repeats`` runs each) against one server, then a kill run at the highest rate on a fresh server."""
    from fieldnotes.shop.loadtest import knee, load, sweep
    from fieldnotes.shop.server import running_server
    from fieldnotes.shop.service import PAUSE_ENV

    with running_server(db_url, workers=workers, products=products, seed=0, nlu_path=nlu,
                        timeout_rate=0.1) as server:
        rows = sweep(server.url, rates, seconds=seconds, seed=1, repeats=repeats)
        for r in rows:
            print(f"{db_url.split(':')[0]:>10} rate {r['rate']:5.1f}/s  turns/s {r['turns_per_s']:6.1f}  "
                  f"p50 {r['latency_ms']['p50']:7.1f} ms  p99 {r['latency_ms']['p99']:7.1f} ms "
                  f"[{r['p99_range_ms'][0]:.0f}, {r['p99_range_ms'][1]:.0f}]  "
                  f"errors {r['errors']}  violations {sum(r['invariants'].values())}", flush=True)
        best = knee(rows)
    # the kill: a fresh server whose payments wait KILL_PAUSE_S before the charge (a test hook), at the
    # highest rate, so that the SIGKILL lands inside a payment (its latencies include the wait)
    with running_server(db_url, workers=workers, products=products, seed=0, nlu_path=nlu, timeout_rate=0.1,
                        env={PAUSE_ENV: str(KILL_PAUSE_S)}) as server:
        kill = load(server.url, rate=max(rates), seconds=seconds, seed=99, kill_worker_after=seconds / 2)
    return {"runs": rows, "knee": best and {k: best[k] for k in ("rate", "turns_per_s", "orders_per_s",
                                                                   "latency_ms")}, "kill": kill}


def _count(n: int, noun: str) -> str:
    """``n`` and ``noun``, plural unless n is 1."""
    return f"{n} {noun}" + ("" if n == 1 else "s")


def table(db: str, result: dict) -> str:
    """A markdown table of one database's sweep."""
    lines = [f"### {db}", "", "Median over the runs of each rate; p99 range = min and max of the runs' p99.", "",
             "| dialogues/s | runs | turns/s | orders/s | p50 ms | p95 ms | p99 ms | p99 range ms | errors | "
             "client CPU | server CPU | load avg start → end | violations |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    kill = result["kill"] | {"rate": f"{result['kill']['rate']} (kill, payments held {KILL_PAUSE_S} s)", "runs": 1,
                             "p99_range_ms": [result["kill"]["latency_ms"]["p99"]] * 2}
    for r in result["runs"] + [kill]:
        lat, la = r["latency_ms"], r["load_average"]
        lines.append(f"| {r['rate']} | {r['runs']} | {r['turns_per_s']:.1f} | {r['orders_per_s']:.2f} | "
                     f"{lat['p50']:.1f} | {lat['p95']:.1f} | {lat['p99']:.1f} | {r['p99_range_ms'][0]:.0f}–"
                     f"{r['p99_range_ms'][1]:.0f} | {r['errors']} | {r['client_cpu_cores']:.2f} | "
                     f"{r['server_cpu_cores']:.2f} | {la['start'][0]:.1f} → {la['end'][0]:.1f} | "
                     f"{sum(r['invariants'].values())} |")
    k = result["knee"]
    lines += ["", f"Knee: {k['rate']} dialogues/s ({k['turns_per_s']:.1f} turns/s, median p99 "
                  f"{k['latency_ms']['p99']:.1f} ms)." if k else "Knee: the lowest rate already missed the p99 target.",
              f"Kill: worker killed with {_count(result['kill']['in_flight_at_kill'], 'request')} in flight, "
              f"{_count(result['kill']['payments_settling_on_killed_worker'], 'payment')} under way on it; "
              f"{_count(result['kill']['retries'], 'resend')}.", ""]
    return "\n".join(lines)


def nodelay_table(rows: list[dict]) -> str:
    """A markdown table of the TCP_NODELAY matrix."""
    on = {True: "on", False: "off"}
    lines = ["### One turn at a time on a quiet server (median of 40, ms)", "",
             "| workers | server TCP_NODELAY | client TCP_NODELAY | chat turn ms | /health ms |", "|---|---|---|---|---|"]
    lines += [f"| {r['workers']} | {on[r['server_nodelay']]} | {on[r['client_nodelay']]} | {r['chat_ms']:.1f} | "
              f"{r['health_ms']:.1f} |" for r in rows]
    return "\n".join(lines + [""])


def main() -> None:
    """Parse arguments, sweep each database, write the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--rates", type=float, nargs="+", default=[1, 2, 4, 6, 8, 12])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--repeats", type=int, default=3, help="runs per rate")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--products", type=int, default=2000)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()

    from fieldnotes.shop.nlu import save_nlu, trained_nlu
    from fieldnotes.shop.store import temporary_postgres

    results = {}
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        nlu = save_nlu(trained_nlu(3000, 0), Path(tmp) / "nlu.pkl")
        nodelay = nodelay_matrix(f"sqlite:///{tmp}/idle.db", args.products, nlu)
        if args.db in ("sqlite", "both"):
            results["sqlite"] = sweep_one(f"sqlite:///{tmp}/shop.db", args.rates, args.seconds, args.workers,
                                          args.products, nlu, args.repeats)
        if args.db in ("postgresql", "both"):
            import psycopg

            with temporary_postgres() as server:
                name = "bench" + uuid.uuid4().hex[:8]
                with psycopg.connect(server, autocommit=True) as admin:
                    admin.execute(f"CREATE DATABASE {name}")
                results["postgresql"] = sweep_one(server.rsplit("/", 1)[0] + "/" + name, args.rates, args.seconds,
                                                  args.workers, args.products, nlu, args.repeats)
    machine = {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count(),
               "load_average_before": load_before, "load_average_after": os.getloadavg(), "date": datetime.datetime.now(datetime.UTC).isoformat(),
               "workers": args.workers, "seconds_per_run": args.seconds, "repeats": args.repeats,
               "products": args.products,
               "notes": "PostgreSQL fsync=off (test server), SQLite WAL synchronous=NORMAL; client and server "
                        "share the machine's cores"}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "shop_load.json").write_text(json.dumps({"machine": machine, "nodelay": nodelay, **results},
                                                        indent=2) + "\n")
    md = ["# Chapter 5 shop: latency against offered load", "", f"Machine: {machine['platform']}, "
          f"{machine['cpus']} CPUs, load average before {machine['load_average_before'][0]:.1f}, after "
          f"{machine['load_average_after'][0]:.1f} (1 min), {machine['date']}; {args.products} products, "
          f"{args.workers} uvicorn workers, {args.repeats} runs of {args.seconds} s per rate. {machine['notes']}.", ""]
    md += [nodelay_table(nodelay)] + [table(db, r) for db, r in results.items()]
    (args.out / "shop_load.md").write_text("\n".join(md) + "\n")
    print((args.out / "shop_load.md").read_text())


if __name__ == "__main__":
    main()
