"""The chapter's worked pieces: a whole purchase as a transcript with English glosses, and the
table of what the post claimed beside what the run measured."""

from __future__ import annotations

import operator
import re

from fieldnotes.shop.service import Assistant, handle_turn

PURCHASE = (
    ("chào shop", "hello, shop"),
    ("tìm áo thun nam màu đen dưới 400k", "looking for a men's T-shirt, black, under 400k đồng"),
    ("lấy mẫu số 1", "I'll take number one"),
    ("size {first}", "size {first}"),
    ("thêm 2 cái vào giỏ", "put two in the cart"),
    ("thanh toán", "check out"),
    ("tên mình là Trần Văn An sđt 0912345678", "my name is Trần Văn An, phone number ..."),
    ("giao đến 12 Lê Lợi Quận 1 TP HCM", "deliver to 12 Lê Lợi street, District 1, Ho Chi Minh City"),
    ("à không, size {second}", "oh no, size {second} (a correction)"),
    ("xác nhận", "confirm"),
    ("đơn hàng của mình sao rồi", "how is my order doing?"),
)
"""A scripted purchase: (message, English gloss). ``{first}`` and ``{second}`` are the first two sizes
the assistant lists as in stock, as a shopper would read them off the reply."""

STAGE_GLOSS = {
    "browse": "lists matching products, or answers without moving on",
    "variant": "asks for the size, then how many",
    "cart": "has put it in the cart; offers to check out",
    "details": "asks for what is missing of name, phone and address",
    "confirm": "shows the order summary and waits for an explicit confirmation",
    "placed": "has placed the order (payment follows the commit)",
    "handoff": "hands the shopper over to a person",
}
"""What the assistant is doing in each dialogue stage, in English."""


def transcript(assistant: Assistant, session_id: str, messages=PURCHASE):
    """Send each (message, gloss) through the turn handler; one row per turn (pandas DataFrame)."""
    import pandas as pd

    rows, sizes = [], {}
    for n, (template, gloss) in enumerate(messages, 1):
        text, gloss = template.format(**sizes), gloss.format(**sizes)
        r = handle_turn(assistant, session_id, n, text)
        listed = re.search(r"Còn: ([^.]+)\.", r["reply"])
        if listed and not sizes:
            names = listed.group(1).split(", ")
            sizes = {"first": names[0], "second": names[1 % len(names)]}
        rows.append({"shopper": text, "meaning": gloss, "assistant": r["reply"], "stage": r["state"],
                     "the assistant": STAGE_GLOSS[r["state"]],
                     "order": f"{r['order']['order_id']} {r['order']['status']}" if r["order"] else ""})
    return pd.DataFrame(rows)


def verdicts(metrics: dict, knee_row: dict | None, runs: list[dict], kill: dict, target_ms: float):
    """The post's three claims beside what this run measured, each target met or not (DataFrame);
    ``runs`` are the sweep's rows (each summing the violations of its repeats)."""
    import pandas as pd

    m = metrics
    gain = m["search_ablation"]["both_views"]["no_diacritics"] - m["search_ablation"]["accented_only"]["no_diacritics"]
    ge, le, eq = operator.ge, operator.le, operator.eq
    rows = [
        ("find products", "intent accuracy, held-out messages", m["intent_accuracy"]["model"]["all"], ge, 0.95),
        ("find products", "slot F1, held-out messages", m["slot_f1"]["model"]["all"], ge, 0.90),
        ("find products", "intent accuracy, typed without diacritics", m["intent_accuracy"]["model"]["no_diacritics"],
         ge, 0.90),
        ("find products", "slot F1, typed without diacritics", m["slot_f1"]["model"]["no_diacritics"], ge, 0.85),
        ("find products", "nDCG@10 gain of both views over accented-only BM25, no diacritics", gain, ge, 0.05),
        ("place orders, purchase", "task success of simulated shoppers", m["task_success"]["model"]["all"], ge, 0.90),
        ("scalable", "invariant violations: every load run, the kill, the simulated shoppers' databases",
         sum(kill["invariants"].values()) + sum(sum(r["invariants"].values()) for r in runs)
         + sum(sum(v.values()) for v in m["invariants"].values()), eq, 0),
        ("scalable", "median p99 turn latency at the knee (ms)",
         knee_row["latency_ms"]["p99"] if knee_row else float("nan"), le, target_ms),
    ]
    signs = {ge: ">=", le: "<=", eq: "=="}
    return pd.DataFrame([{"claim": c, "measured": what, "value": v, "target": f"{signs[op]} {t:g}", "met": bool(op(v, t))}
                         for c, what, v, op, t in rows])


def _count(n: int, one: str, many: str) -> str:
    """``n`` with its noun, singular or plural ("1 request", "3 requests")."""
    return f"{n} {one if n == 1 else many}"


def kill_facts(kill: dict) -> str:
    """What the kill run did, in a sentence ending with a full stop (from its load.json fields)."""
    committed = kill["confirms_committed_unanswered"]
    repaired = kill["reconciled"]["paid"] + kill["reconciled"]["refunded"]
    workers = kill["server_workers"]
    return (f"one worker was SIGKILLed with {_count(kill['in_flight_at_kill'], 'request', 'requests')} in flight "
            f"from the client and {_count(kill['payments_settling_on_killed_worker'], 'payment', 'payments')} "
            f"under way on that worker; the shoppers resent failed requests with the same ids "
            f"({_count(kill['retries'], 'resend', 'resends')}), "
            f"{_count(committed, 'confirmation', 'confirmations')} that the killed worker had committed but "
            f"not answered {'was' if committed == 1 else 'were'} answered on the resend from the stored reply, "
            f"before the reconciliation {_count(kill['reconciled']['unpaid_before'], 'confirmed order was', 'confirmed orders were')} "
            f"unpaid and it had {_count(repaired, 'payment', 'payments')} left to finish, and "
            + (f"uvicorn started {_count(workers['started'], 'new worker', 'new workers')} "
               f"({workers['after']} server processes at the end, {workers['before']} at the start)."
               if workers["started"] else
               f"no new server process had started by the end ({workers['after']} of {workers['before']} left)."))


NODELAY_STALL_MS = 20.0
"""A /health median this much (ms) above the one with TCP_NODELAY on both sides counts as a stall."""


def nodelay_verdict(health_ms: dict[tuple[bool, bool], float]) -> str:
    """Which sides must set TCP_NODELAY for the stall to go, from the median /health latency (ms)
    keyed by (server sets it, client sets it); a sentence ending with a full stop."""
    if set(health_ms) != {(s, c) for s in (False, True) for c in (False, True)}:
        raise ValueError(f"health_ms needs the four (server, client) combinations, got {sorted(health_ms)}")
    both = health_ms[(True, True)]
    stalled = [k for k, v in health_ms.items() if k != (True, True) and v - both > NODELAY_STALL_MS]
    if len(stalled) == 3:
        return "Only with both sides setting it does the stall go; with either side alone it stays."
    if not stalled:
        return (f"In this run no combination is more than {NODELAY_STALL_MS:.0f} ms slower than both sides "
                "setting it, so the stall did not show here.")
    names = {(False, False): "neither side", (False, True): "only the client", (True, False): "only the server"}
    return ("The stall shows with " + " and with ".join(names[k] for k in sorted(stalled)) + " setting it.")
