"""An open-loop load test: virtual shoppers arrive on a seeded random schedule and each runs a whole
purchase; latency counts from the *scheduled* send time, so a slow server (or a starved client)
cannot hide its queueing. After the run the invariants are checked against the server's database.

A shopper's next message is due the moment the previous reply arrives (no think time). Failed
requests (a worker killed mid-request, a refused connection) are retried with the same
``message_id``, which the service answers from its stored reply: that is the point of the test.
Some shoppers send one message twice and compare the two replies; some cancel after paying.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fieldnotes.shop.utterances import FAMILY, GIVEN, MIDDLE, STREETS

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


def _script(rng: np.random.Generator) -> list[str]:
    """The messages of one purchase (the size one is filled in from the reply)."""
    pick = lambda seq: seq[int(rng.integers(len(seq)))]  # noqa: E731
    name = f"{pick(FAMILY)} {pick(MIDDLE)} {pick(GIVEN)}"
    phone = "09" + "".join(str(int(d)) for d in rng.integers(0, 10, 8))
    address = f"{int(rng.integers(1, 300))} {pick(STREETS)} Quận {int(rng.integers(1, 12))} TP HCM"
    return ["chào shop", pick(SEARCHES), f"chọn số {int(rng.integers(1, 4))}", "{size}",
            f"thêm {int(rng.integers(1, 3))} cái", "thanh toán", f"tên mình là {name} sđt {phone} địa chỉ {address}",
            "xác nhận"]


class InFlight:
    """How many requests are sent and not yet answered, across every shopper (thread-safe)."""

    def __init__(self):
        self.lock, self.now = threading.Lock(), 0

    def add(self, n: int) -> None:
        with self.lock:
            self.now += n


IN_FLIGHT = InFlight()


def _post(client, path: str, body: dict, record: Shopper, deadline: float) -> dict | None:
    """POST, resending on connection errors and 5xx until ``deadline``; None if it never succeeded."""
    import httpx

    while True:
        record.requests += 1
        IN_FLIGHT.add(1)
        try:
            r = client.post(path, json=body)
            if r.status_code < 400:
                return r.json()
            if r.status_code < 500:  # refused (409, 422...): resending would not help
                record.errors += 1
                return None
        except httpx.HTTPError:
            pass
        finally:
            IN_FLIGHT.add(-1)
        if time.monotonic() > deadline:
            record.errors += 1
            return None
        record.retries += 1
        time.sleep(RETRY_S)


def _shop(client, record: Shopper, due: float, seed: int) -> None:
    """Run one shopper's purchase, its first message due at ``due`` (monotonic s)."""
    rng = np.random.default_rng([seed, 5007, record.index])
    replay_at = int(rng.integers(2, 8)) if rng.random() < REPLAY_RATE else -1
    cancel = rng.random() < CANCEL_RATE
    time.sleep(max(0.0, due - time.monotonic()))
    session = _post(client, "/sessions", {}, record, due + RETRY_FOR_S)
    if session is None:
        return
    record.session_id = session["session_id"]
    reply = None
    messages = _script(rng) + (["hủy đơn"] if cancel else [])
    for message_id, text in enumerate(messages, 1):
        if text == "{size}":
            sizes = reply["products"][0]["sizes"] if reply and reply["products"] else []
            text = f"size {sizes[0]}" if sizes and reply["state"] == "variant" else "ok"
        body = {"session_id": record.session_id, "message_id": message_id, "text": text}
        sent = time.monotonic()
        reply = _post(client, "/chat", body, record, sent + RETRY_FOR_S)
        record.turns.append((due, sent, time.monotonic()))
        if reply is None:
            return
        if message_id == replay_at:
            again = _post(client, "/chat", body, record, time.monotonic() + RETRY_FOR_S)
            if again is None or (again["reply"], again["state"]) != (reply["reply"], reply["state"]):
                record.replay_mismatches += 1
        if text == "xác nhận" and reply["order"]:
            record.confirmed_order = reply["order"]["order_id"]
        if text == "hủy đơn":
            record.cancelled = True
        due = time.monotonic()


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


def _kill_one_worker(url: str, after_s: float, killed: list[tuple[int, int]]) -> None:
    """After ``after_s`` seconds, SIGKILL the worker that answers /health (never the supervisor);
    records (pid, requests in flight to any worker at that moment)."""
    import httpx

    time.sleep(after_s)
    with httpx.Client(base_url=url, timeout=10) as c:
        health = c.get("/health").json()
    in_flight = IN_FLIGHT.now
    os.kill(health["pid"], signal.SIGKILL)
    killed.append((health["pid"], in_flight))


def percentiles_ms(seconds: list[float]) -> dict[str, float]:
    """p50, p95 and p99 of durations given in seconds, in milliseconds."""
    if not seconds:
        return {"p50": float("nan"), "p95": float("nan"), "p99": float("nan")}
    q = np.percentile(np.asarray(seconds) * 1000.0, [50, 95, 99])
    return {"p50": float(q[0]), "p95": float(q[1]), "p99": float(q[2])}


def check_invariants(client, shoppers: list[Shopper]) -> dict[str, int]:
    """Violations of each invariant after a run: the server's audit of its database plus what the
    shoppers saw (every confirmed checkout is one order, paid unless cancelled; replays answered alike)."""
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
        "exactly_one_captured_payment_per_paid_order": audit["one_captured_payment_per_paid_order"],
        "no_charge_without_a_recorded_payment": audit["no_charge_without_payment"],
        "no_negative_stock": audit["no_negative_stock"],
        "units_sold_equal_units_ordered": audit["units_sold_equal_units_ordered"],
        "replayed_messages_returned_the_first_reply": sum(s.replay_mismatches for s in shoppers),
        "repeated_messages_did_not_move_a_dialogue": audit["repeated_messages_did_not_move_dialogue"],
    }


def load(url: str, *, rate: float, seconds: float, kill_worker_after: float | None = None, seed: int = 0,
         max_shoppers: int = 2000) -> dict:
    """Run the load test against ``url`` (127.0.0.1 only) and return the load.json fields."""
    import httpx

    if not url.startswith(("http://127.0.0.1:", "http://localhost:")):
        raise ValueError(f"url must be on this machine (http://127.0.0.1:PORT), got {url!r}")
    if rate <= 0 or seconds <= 0:
        raise ValueError(f"rate and seconds must be > 0, got rate={rate}, seconds={seconds}")
    rng = np.random.default_rng([seed, 5008])
    # a Poisson process given its count: round(rate x seconds) arrival times, uniform and sorted
    arrivals = np.sort(rng.uniform(0.0, seconds, size=min(max_shoppers, max(1, round(rate * seconds)))))
    shoppers = [Shopper(i) for i in range(len(arrivals))]
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    with httpx.Client(base_url=url, timeout=httpx.Timeout(30.0), limits=limits) as client:
        root = _server_processes(client)
        if kill_worker_after is not None and root.pid == client.get("/health").json()["pid"]:
            raise ValueError("kill_worker_after needs a server with --workers >= 2 (it answers from one process)")
        server_cpu = CpuSampler(root)
        server_cpu.start()
        client_cpu0 = time.process_time()
        killed: list[tuple[int, int]] = []
        start = time.monotonic() + 0.2
        killer = None
        if kill_worker_after is not None:
            killer = threading.Thread(target=_kill_one_worker, args=(url, 0.2 + kill_worker_after, killed))
            killer.start()
        with ThreadPoolExecutor(max_workers=min(256, max(8, len(shoppers)))) as pool:
            for s, at in zip(shoppers, arrivals, strict=True):
                pool.submit(_shop, client, s, start + float(at), seed)
        if killer is not None:
            killer.join()
        elapsed = time.monotonic() - start
        server_cpu_s, client_cpu = server_cpu.seconds(), time.process_time() - client_cpu0
        server_cpu.stop.set()
        invariants = check_invariants(client, shoppers)
    turns = [t for s in shoppers for t in s.turns]
    orders = sum(1 for s in shoppers if s.confirmed_order)
    return {
        "url": url, "rate": rate, "seconds": seconds, "seed": seed, "shoppers": len(shoppers),
        "requests": sum(s.requests for s in shoppers), "turns": len(turns), "elapsed_s": elapsed, "turns_per_s": len(turns) / elapsed,
        "orders": orders, "orders_per_s": orders / elapsed,
        "latency_ms": percentiles_ms([r - due for due, _, r in turns]),
        "service_ms": percentiles_ms([r - sent for _, sent, r in turns]),
        "errors": sum(s.errors for s in shoppers), "retries": sum(s.retries for s in shoppers),
        "killed_worker": killed[0][0] if killed else None,
        "in_flight_at_kill": killed[0][1] if killed else None,
        "client_cpu_cores": client_cpu / elapsed, "server_cpu_cores": server_cpu_s / elapsed,
        "cpu_note": "cores used on average over the run (CPU s / wall s); a killed worker counts up to its "
                    "last 0.25 s sample; client and server share this machine's cores",
        "invariants": invariants,
    }


def sweep(url: str, rates: list[float], *, seconds: float, seed: int = 0) -> list[dict]:
    """One load run per rate (dialogues started per second), in order; each row also carries the
    offered turns per second (rate x turns per dialogue)."""
    rows = []
    for n, rate in enumerate(rates):
        r = load(url, rate=rate, seconds=seconds, seed=seed * 1000 + n)
        r["offered_turns_per_s"] = r["turns"] / max(r["shoppers"], 1) * rate
        rows.append(r)
    return rows


def knee(rows: list[dict], target_ms: float = P99_TARGET_MS) -> dict | None:
    """The highest-rate run that kept its p99 turn latency within ``target_ms`` with no errors;
    None if none did."""
    ok = [r for r in rows if r["latency_ms"]["p99"] <= target_ms and r["errors"] == 0]
    return max(ok, key=lambda r: r["rate"]) if ok else None


def run_load(url: str, *, rate: float, seconds: float, out: str | Path, kill_worker_after: float | None = None,
             seed: int = 0) -> Path:
    """Run :func:`load` and write ``out/load.json``; returns its path."""
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "load.json"
    result = load(url, rate=rate, seconds=seconds, kill_worker_after=kill_worker_after, seed=seed)
    path.write_text(json.dumps(result, indent=2) + "\n")
    return path
