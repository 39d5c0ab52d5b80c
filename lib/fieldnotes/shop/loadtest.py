"""An open-loop load test: virtual shoppers arrive on a seeded random schedule and each runs a whole
purchase; latency counts from the *scheduled* send time, so a slow server (or a starved client)
cannot hide its queueing. After the run the server reconciles half-done payments and the
invariants are checked against its database.

Open loop within a session too: a shopper's k-th message is due ``TURN_INTERVAL_S`` x k after it
arrived, whatever the server did; a message whose slot passed while the previous reply was late
is sent at once, and its latency still counts from its slot. Failed requests (a worker killed
mid-request, a refused connection) are retried with the same ``message_id``, which the service
answers from its stored reply: that is the point of the test. Some shoppers send one message
twice and compare the two replies; some cancel after paying. The client's connections set
TCP_NODELAY, as the server's do (see :class:`fieldnotes.shop.server.NoDelayHTTPProtocol`).
"""

from __future__ import annotations

import functools
import json
import os
import signal
import socket
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fieldnotes.shop.text import fold
from fieldnotes.shop.utterances import make_address, make_name

SEARCHES = ("tìm áo thun", "tìm balo", "tìm tai nghe", "tìm quần jean", "tìm giày thể thao", "tìm sạc dự phòng",
            "tìm túi xách", "tìm nồi cơm điện", "tìm điện thoại", "tìm váy đầm")
REPLAY_RATE = 0.2
"""Share of shoppers that send one of their messages twice."""
CANCEL_RATE = 0.1
"""Share of shoppers that cancel after paying."""
RETRY_S = 0.2
"""Pause before resending a request that failed (s)."""
RETRY_FOR_S = 30.0
"""How long a shopper keeps resending one message before counting it an error (s)."""
TURN_INTERVAL_S = 0.25
"""Time between a shopper's scheduled messages (s): the k-th is due this x k after arrival."""
REPEATS = 3
"""Load runs per rate in a sweep (each with its own arrival schedule)."""
P99_TARGET_MS = 100.0
"""The p99 turn latency a rate must stay within to count as sustained (ms). Latency counts from the
scheduled send time, so a server that falls behind its arrivals shows it here."""


@dataclass
class Shopper:
    """One virtual shopper's record: its session, turns (scheduled, sent, received in s), outcome."""

    index: int
    session_id: str | None = None
    turns: list[tuple[float, float, float]] = field(default_factory=list)
    requests: int = 0
    retries: int = 0
    errors: int = 0
    confirmed_order: str | None = None
    cancelled: bool = False
    replay_mismatches: int = 0
    committed_unanswered: int = 0
    """Confirmations (of an order or of a cancel) whose first attempt failed and whose resend was
    answered from the stored reply: the worker committed the turn and died before answering, i.e.
    in the window between the commit and the payment's (or refund's) end."""


def _script(rng: np.random.Generator) -> list[str]:
    """The messages of one purchase (the size one is filled in from the reply)."""
    pick = lambda seq: seq[int(rng.integers(len(seq)))]  # noqa: E731
    name, address = make_name(rng, "test"), make_address(rng, "test")
    phone = "09" + "".join(str(int(d)) for d in rng.integers(0, 10, 8))
    return ["chào shop", pick(SEARCHES), f"chọn số {int(rng.integers(1, 4))}", "{size}",
            f"thêm {int(rng.integers(1, 3))} cái", "thanh toán", f"tên mình là {name} sđt {phone} địa chỉ {address}",
            CONFIRM]


CONFIRM = "xác nhận"


class InFlight:
    """How many requests (and how many of them confirmations) are sent and not yet answered,
    across every shopper (thread-safe)."""

    def __init__(self):
        self.lock, self.now, self.confirms = threading.Lock(), 0, 0

    def add(self, n: int, *, confirm: bool = False) -> None:
        """Count ``n`` (+1 sent, -1 answered) requests, ``confirm`` if they are confirmations."""
        with self.lock:
            self.now += n
            self.confirms += n if confirm else 0


IN_FLIGHT = InFlight()


def _post(client, path: str, body: dict, record: Shopper, deadline: float) -> dict | None:
    """POST, resending on connection errors and 5xx until ``deadline``; None if it never succeeded."""
    import httpx

    confirm, failed = body.get("text") == CONFIRM, False
    while True:
        record.requests += 1
        IN_FLIGHT.add(1, confirm=confirm)
        try:
            r = client.post(path, json=body)
            if r.status_code < 400:
                reply = r.json()
                record.committed_unanswered += int(confirm and failed and reply["replayed"])
                return reply
            if r.status_code < 500:  # refused (409, 422...): resending would not help
                record.errors += 1
                return None
        except httpx.HTTPError:
            pass
        finally:
            IN_FLIGHT.add(-1, confirm=confirm)
        if time.monotonic() > deadline:
            record.errors += 1
            return None
        record.retries += 1
        failed = True
        time.sleep(RETRY_S)


def _shop(client, record: Shopper, arrival: float, seed: int) -> None:
    """Run one shopper's purchase: it arrives at ``arrival`` (monotonic s), its k-th message is due
    ``TURN_INTERVAL_S`` x k later."""
    rng = np.random.default_rng([seed, 5007, record.index])
    replay_at = int(rng.integers(2, 8)) if rng.random() < REPLAY_RATE else -1
    cancel = rng.random() < CANCEL_RATE
    time.sleep(max(0.0, arrival - time.monotonic()))
    session = _post(client, "/sessions", {}, record, arrival + RETRY_FOR_S)
    if session is None:
        return
    record.session_id = session["session_id"]
    reply = None
    messages = _script(rng) + (["hủy đơn", CONFIRM] if cancel else [])
    for message_id, text in enumerate(messages, 1):
        if text == "{size}":
            sizes = reply["products"][0]["sizes"] if reply and reply["products"] else []
            text = f"size {sizes[0]}" if sizes and "size nao" in fold(reply["reply"]) else "ok"
        body = {"session_id": record.session_id, "message_id": message_id, "text": text}
        due = arrival + TURN_INTERVAL_S * message_id
        time.sleep(max(0.0, due - time.monotonic()))
        sent = time.monotonic()
        reply = _post(client, "/chat", body, record, sent + RETRY_FOR_S)
        record.turns.append((due, sent, time.monotonic()))
        if reply is None:
            return
        if message_id == replay_at:
            again = _post(client, "/chat", body, record, time.monotonic() + RETRY_FOR_S)
            if again is None or _without_replay_flag(again) != _without_replay_flag(reply):
                record.replay_mismatches += 1
        if text == CONFIRM and reply["order"] and not record.confirmed_order:
            record.confirmed_order = reply["order"]["order_id"]
        elif text == CONFIRM and record.confirmed_order:
            record.cancelled = "da duoc huy" in fold(reply["reply"])  # the reply says the order was cancelled


def _without_replay_flag(reply: dict) -> dict:
    """A reply without its ``replayed`` flag: what a replay must repeat exactly."""
    return {k: v for k, v in reply.items() if k != "replayed"}


def _server_processes(client):
    """The server's processes (the ``serve`` process and its workers), found from /health's pid."""
    import psutil

    worker = psutil.Process(client.get("/health").json()["pid"])
    parent = worker.parent()
    root = parent if parent is not None and "serve" in " ".join(parent.cmdline()) else worker
    return root


class CpuSampler(threading.Thread):
    """Samples the CPU seconds (user + system) of a process tree every ``every_s`` seconds, per pid,
    so that a worker killed mid-run still counts up to its last sample."""

    def __init__(self, root, every_s: float = 0.25):
        super().__init__(daemon=True)
        self.root, self.every_s = root, every_s
        self.first: dict[int, float] = {}
        self.last: dict[int, float] = {}
        self.stop = threading.Event()
        self.sample()

    def sample(self) -> None:
        """Read every live process of the tree once."""
        import psutil

        for p in [self.root, *self.root.children(recursive=True)]:
            try:
                t = p.cpu_times()
            except psutil.NoSuchProcess:
                continue
            self.first.setdefault(p.pid, t.user + t.system)
            self.last[p.pid] = t.user + t.system

    def run(self) -> None:
        while not self.stop.wait(self.every_s):
            self.sample()

    def seconds(self) -> float:
        """CPU seconds the tree used since the first sample."""
        self.sample()
        return sum(self.last[pid] - self.first[pid] for pid in self.last)


KILL_WAIT_S = 8.0
"""How long past ``kill_worker_after`` the killer looks for a worker inside a payment (s)."""
KILL_MIN_IN_FLIGHT = 2
# how long (s) after the run the load test waits for the supervisor to start a replacement worker;
# uvicorn checks its workers about every 0.5 s, but on a loaded machine a spawn takes seconds
REPLACE_WAIT_S = 20.0
"""Requests the client must have in flight before the killer strikes (if it happens in time)."""


def _kill_one_worker(url: str, after_s: float, killed: list[dict], done: threading.Event) -> None:
    """After ``after_s`` seconds, SIGKILL a worker (never the supervisor): the first one whose
    /health says it is settling a payment (between a turn's commit and the provider's answer)
    while the client has at least ``KILL_MIN_IN_FLIGHT`` requests in flight,
    polled on fresh connections so that every worker gets asked, or after ``KILL_WAIT_S`` the one
    that answers, and at once if every shopper is ``done``. Records the pid, the requests and
    confirmations in flight from the client, and the payments the killed worker was making then."""
    time.sleep(after_s)
    give_up = time.monotonic() + KILL_WAIT_S
    with client_for(url, connections=1) as c:
        while True:
            health = c.get("/health", headers={"Connection": "close"}).json()
            if (health["settling"] > 0 and IN_FLIGHT.now >= KILL_MIN_IN_FLIGHT) or time.monotonic() > give_up \
                    or done.is_set():
                break
            time.sleep(0.002)
    in_flight, confirms = IN_FLIGHT.now, IN_FLIGHT.confirms
    os.kill(health["pid"], signal.SIGKILL)
    killed.append({"pid": health["pid"], "in_flight": in_flight, "confirms": confirms,
                   "settling": health["settling"], "at": time.monotonic()})


def _live_children(root) -> set[int]:
    """Pids of ``root``'s descendants that are running (a killed worker not yet reaped is a zombie,
    which psutil still calls running, so zombies are left out)."""
    import psutil

    live = set()
    for p in root.children(recursive=True):
        try:
            if p.status() != psutil.STATUS_ZOMBIE:
                live.add(p.pid)
        except psutil.NoSuchProcess:
            pass
    return live


def _await_replacement(root, before: set[int], wait_s: float) -> tuple[set[int], float | None]:
    """Poll ``root``'s live descendants for up to ``wait_s`` seconds until one appears that was not
    in ``before``; returns the live pids last seen and the monotonic time the new one was first seen
    (None if none appeared)."""
    give_up = time.monotonic() + wait_s
    while True:
        live = _live_children(root)
        if live - before:
            return live, time.monotonic()
        if time.monotonic() > give_up:
            return live, None
        time.sleep(0.05)


def client_for(url: str, *, tcp_nodelay: bool = True, connections: int = 64):
    """An httpx client for ``url`` whose connections set TCP_NODELAY unless told not to."""
    import httpx

    options = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)] if tcp_nodelay else []
    transport = httpx.HTTPTransport(socket_options=options, limits=httpx.Limits(
        max_connections=connections, max_keepalive_connections=connections))
    return httpx.Client(base_url=url, timeout=httpx.Timeout(30.0), transport=transport)


def idle_latency_ms(url: str, *, turns: int = 40, tcp_nodelay: bool = True) -> dict[str, float]:
    """Median latency (ms) of ``turns`` one-at-a-time requests on a quiet server: a greeting
    turn on a new session (``chat``) and ``/health`` (``health``, no database, no parsing)."""
    chat, health = [], []
    with client_for(url, tcp_nodelay=tcp_nodelay, connections=1) as c:
        for _ in range(turns):
            sid = c.post("/sessions").json()["session_id"]
            t = time.perf_counter()
            c.post("/chat", json={"session_id": sid, "message_id": 1, "text": "chào shop"}).raise_for_status()
            chat.append(time.perf_counter() - t)
            t = time.perf_counter()
            c.get("/health").raise_for_status()
            health.append(time.perf_counter() - t)
    return {"chat": 1000.0 * statistics.median(chat), "health": 1000.0 * statistics.median(health)}


def percentiles_ms(seconds: list[float]) -> dict[str, float]:
    """p50, p95 and p99 of durations given in seconds, in milliseconds."""
    if not seconds:
        return {"p50": float("nan"), "p95": float("nan"), "p99": float("nan")}
    q = np.percentile(np.asarray(seconds) * 1000.0, [50, 95, 99])
    return {"p50": float(q[0]), "p95": float(q[1]), "p99": float(q[2])}


def check_invariants(client, shoppers: list[Shopper]) -> tuple[dict[str, int], dict[str, int]]:
    """Violations of each invariant after a run, and what the server's reconciliation repaired first
    (``{"paid": n, "refunded": n}``): the server's audit of its database plus what the shoppers saw
    (every confirmed checkout is one order, paid unless cancelled; replays answered alike).
    ``repaired`` also holds ``unpaid_before``: confirmed orders still unpaid before the repair."""
    unpaid_before = client.get("/audit").json()["no_confirmed_order_left_unpaid"]
    repaired = client.post("/reconcile").json() | {"unpaid_before": unpaid_before}
    audit = client.get("/audit").json()
    one_order = paid = 0
    for s in shoppers:
        if s.session_id is None:
            continue
        orders = client.get(f"/sessions/{s.session_id}/orders").json()
        if len(orders) != (1 if s.confirmed_order else 0) or (
                s.confirmed_order and orders[0]["order_id"] != s.confirmed_order):
            one_order += 1
        elif s.confirmed_order and orders[0]["status"] != ("cancelled" if s.cancelled else "paid"):
            paid += 1
    return {
        "every_confirmed_checkout_is_exactly_one_order": one_order,
        "every_confirmed_checkout_is_paid_or_cancelled_as_asked": paid,
        "replayed_messages_returned_the_first_reply": sum(s.replay_mismatches for s in shoppers),
    } | audit, repaired


def load(url: str, *, rate: float, seconds: float, kill_worker_after: float | None = None, seed: int = 0,
         max_shoppers: int = 2000) -> dict:
    """Run the load test against ``url`` (127.0.0.1 only) and return the load.json fields."""
    if not url.startswith(("http://127.0.0.1:", "http://localhost:")):
        raise ValueError(f"url must be on this machine (http://127.0.0.1:PORT), got {url!r}")
    if rate <= 0 or seconds <= 0:
        raise ValueError(f"rate and seconds must be > 0, got rate={rate}, seconds={seconds}")
    rng = np.random.default_rng([seed, 5008])
    # a Poisson process given its count: round(rate x seconds) arrival times, uniform and sorted
    arrivals = np.sort(rng.uniform(0.0, seconds, size=min(max_shoppers, max(1, round(rate * seconds)))))
    shoppers = [Shopper(i) for i in range(len(arrivals))]
    load_before = os.getloadavg()
    with client_for(url) as client:
        health = client.get("/health").json()
        root = _server_processes(client)
        if kill_worker_after is not None and root.pid == health["pid"]:
            raise ValueError("kill_worker_after needs a server with --workers >= 2 (it answers from one process)")
        workers_before = _live_children(root)
        server_cpu = CpuSampler(root)
        server_cpu.start()
        client_cpu0 = time.process_time()
        killed: list[dict] = []
        start = time.monotonic() + 0.2
        killer, done = None, threading.Event()
        if kill_worker_after is not None:
            killer = threading.Thread(target=_kill_one_worker, args=(url, 0.2 + kill_worker_after, killed, done))
            killer.start()
        with ThreadPoolExecutor(max_workers=min(256, max(8, len(shoppers)))) as pool:
            for s, at in zip(shoppers, arrivals, strict=True):
                pool.submit(_shop, client, s, start + float(at), seed)
        done.set()
        if killer is not None:
            killer.join()
        elapsed = time.monotonic() - start
        server_cpu_s, client_cpu = server_cpu.seconds(), time.process_time() - client_cpu0
        server_cpu.stop.set()
    with client_for(url) as fresh:  # new connections: a killed worker's kept-alive ones are dead
        invariants, repaired = check_invariants(fresh, shoppers)
    if killed:
        workers_after, seen_at = _await_replacement(root, workers_before, REPLACE_WAIT_S)
    else:
        workers_after, seen_at = _live_children(root), None
    turns = [t for s in shoppers for t in s.turns]
    orders = sum(1 for s in shoppers if s.confirmed_order)
    return {
        "url": url, "rate": rate, "seconds": seconds, "seed": seed, "shoppers": len(shoppers),
        "products": health["products"],
        "turn_interval_s": TURN_INTERVAL_S,
        "requests": sum(s.requests for s in shoppers), "turns": len(turns), "elapsed_s": elapsed,
        "turns_per_s": len(turns) / elapsed, "orders": orders, "orders_per_s": orders / elapsed,
        "latency_ms": percentiles_ms([r - due for due, _, r in turns]),
        "service_ms": percentiles_ms([r - sent for _, sent, r in turns]),
        "latency_note": "latency_ms counts from each message's scheduled time (open loop, arrival + "
                        "turn_interval_s x k); service_ms from when it was actually sent",
        "errors": sum(s.errors for s in shoppers), "retries": sum(s.retries for s in shoppers),
        "killed_worker": killed[0]["pid"] if killed else None,
        "in_flight_at_kill": killed[0]["in_flight"] if killed else None,
        "confirms_in_flight_at_kill": killed[0]["confirms"] if killed else None,
        "payments_settling_on_killed_worker": killed[0]["settling"] if killed else None,
        "confirms_committed_unanswered": sum(s.committed_unanswered for s in shoppers),
        "server_workers": {"before": len(workers_before), "after": len(workers_after),
                           "started": len(workers_after - workers_before),
                           "replaced_after_s": seen_at - killed[0]["at"] if seen_at is not None else None,
                           "waited_up_to_s": REPLACE_WAIT_S if killed else 0.0},
        "reconciled": repaired,
        "client_cpu_cores": client_cpu / elapsed, "server_cpu_cores": server_cpu_s / elapsed,
        "cpu_note": "cores used on average over the run (CPU s / wall s); a killed worker counts up to its "
                    "last 0.25 s sample; client and server share this machine's cores",
        "load_average": {"start": list(load_before), "end": list(os.getloadavg())},
        "invariants": invariants,
    }


def sweep(url: str, rates: list[float], *, seconds: float, seed: int = 0, repeats: int = REPEATS) -> list[dict]:
    """``repeats`` load runs per rate (dialogues started per second), rates in the order given,
    each run with its own arrival schedule; one row per rate: the median p50/p95/p99 over its
    runs (``latency_ms``), their min and max (``p99_range_ms``), the median turns per run
    (``turns``: the samples behind each run's p99), summed errors and violations,
    the median throughput, and the runs themselves (``repeats``)."""
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    rows = []
    for n, rate in enumerate(rates):
        runs = [load(url, rate=rate, seconds=seconds, seed=seed * 1000 + n * 10 + k) for k in range(repeats)]
        med = functools.partial(_median_over, runs)
        p99s = [r["latency_ms"]["p99"] for r in runs]
        invariants = {k: sum(r["invariants"][k] for r in runs) for k in runs[0]["invariants"]}
        rows.append({
            "rate": rate, "runs": repeats, "seconds": seconds, "products": runs[0]["products"],
            "latency_ms": {q: med(lambda r, q=q: r["latency_ms"][q]) for q in ("p50", "p95", "p99")},
            "service_ms": {q: med(lambda r, q=q: r["service_ms"][q]) for q in ("p50", "p95", "p99")},
            "p99_range_ms": [min(p99s), max(p99s)],
            "turns": med(lambda r: r["turns"]),  # per run: what each run's p99 rests on
            "turns_per_s": med(lambda r: r["turns_per_s"]), "orders_per_s": med(lambda r: r["orders_per_s"]),
            "offered_turns_per_s": float(np.mean([r["turns"] / max(r["shoppers"], 1) for r in runs])) * rate,
            "client_cpu_cores": med(lambda r: r["client_cpu_cores"]),
            "server_cpu_cores": med(lambda r: r["server_cpu_cores"]),
            "errors": sum(r["errors"] for r in runs), "retries": sum(r["retries"] for r in runs),
            "load_average": {"start": runs[0]["load_average"]["start"], "end": runs[-1]["load_average"]["end"]},
            "invariants": invariants, "repeats": runs,
        })
    return rows


def _median_over(runs: list[dict], field_of) -> float:
    """The median of ``field_of(run)`` over ``runs``."""
    return float(statistics.median(field_of(r) for r in runs))


def knee(rows: list[dict], target_ms: float = P99_TARGET_MS) -> dict | None:
    """The knee of a sweep: walking up the rates, the last row before the first one whose median
    p99 turn latency exceeds ``target_ms`` or that had errors (a monotone rule: a lucky higher rate
    after a failure does not count); None if the lowest rate already fails."""
    best = None
    for row in sorted(rows, key=lambda r: r["rate"]):
        if row["latency_ms"]["p99"] > target_ms or row["errors"] > 0:
            break
        best = row
    return best


def run_load(url: str, *, rate: float, seconds: float, out: str | Path, kill_worker_after: float | None = None,
             seed: int = 0) -> Path:
    """Run :func:`load` and write ``out/load.json``; returns its path."""
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "load.json"
    result = load(url, rate=rate, seconds=seconds, kill_worker_after=kill_worker_after, seed=seed)
    path.write_text(json.dumps(result, indent=2) + "\n")
    return path
