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
    shipped = m["search_views"]["chosen"]
    gain = m["search_ablation"][shipped]["no_diacritics"] - m["search_ablation"]["accented_only"]["no_diacritics"]
    ge, le, eq = operator.ge, operator.le, operator.eq
    own = "the book's own bar, set before measuring (the post states none)"
    rows = [
        ("find products", "intent accuracy, held-out messages", m["intent_accuracy"]["model"]["all"], ge, 0.95, own),
        ("find products", "slot F1, held-out messages", m["slot_f1"]["model"]["all"], ge, 0.90, own),
        ("find products", "intent accuracy, typed without diacritics", m["intent_accuracy"]["model"]["no_diacritics"],
         ge, 0.90, own),
        ("find products", "slot F1, typed without diacritics", m["slot_f1"]["model"]["no_diacritics"], ge, 0.85, own),
        ("find products", f"nDCG@10 gain of the shipped BM25 views ({shipped}) over accented-only, no diacritics",
         gain, ge, 0.05, own),
        ("place orders, purchase", "task success of simulated shoppers", m["task_success"]["model"]["all"], ge, 0.90,
         own),
        ("scalable", "invariant violations: every load run, the kill, the simulated shoppers' databases",
         sum(kill["invariants"].values()) + sum(sum(r["invariants"].values()) for r in runs)
         + sum(sum(v.values()) for v in m["invariants"].values()), eq, 0,
         "correctness: any violation is a bug"),
        ("scalable", "median p99 turn latency at the knee (ms)",
         knee_row["latency_ms"]["p99"] if knee_row else float("nan"), le, target_ms,
         "the book's own bar for a chat turn that feels immediate"),
    ]
    signs = {ge: ">=", le: "<=", eq: "=="}
    return pd.DataFrame([{"claim": c, "measured": what, "value": v, "target": f"{signs[op]} {t:g}",
                          "target from": src, "met": bool(op(v, t))} for c, what, v, op, t, src in rows])


def claims_summary(claims) -> str:
    """Each of the post's claims and whether every target under it is met, from :func:`verdicts`'s
    table: a sentence ending with a full stop."""
    parts = []
    for claim, rows in claims.groupby("claim", sort=False):
        missed = rows[~rows["met"]]
        parts.append(f'"{claim}" meets all its targets' if missed.empty else
                     f'"{claim}" misses {len(missed)} of {len(rows)} ('
                     + "; ".join(f"{r.measured}: {r.value:.3g}, target {r.target}" for r in missed.itertuples()) + ")")
    return "In this run " + ", ".join(parts) + "."


def relation(a: float, b: float, *, tie: float = 0.0) -> str:
    """How ``a`` stands to ``b`` in words: "above", "below" or "level with" (within ``tie``)."""
    return "level with" if abs(a - b) <= tie else ("above" if a > b else "below")


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
            + (f"uvicorn started {_count(workers['started'], 'new worker', 'new workers')}"
               + (f" {workers['replaced_after_s']:.1f} s after the kill" if workers.get("replaced_after_s") else "")
               + f" ({workers['after']} server processes at the end, {workers['before']} at the start)."
               if workers["started"] else
               f"no new server process had started by the end ({workers['after']} of {workers['before']} left"
               + (f", after waiting {workers['waited_up_to_s']:.0f} s" if workers.get("waited_up_to_s") else "")
               + ")."))


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


INTERVAL_LEVEL = 0.95
"""Coverage of the bootstrap intervals the page shows."""


def success_figures(metrics: dict, *, seed: int, runs: int) -> dict[str, float | int | str]:
    """The simulated shoppers' figures the page quotes, by glue name: success of the model and the
    rules (shares of dialogues), an ``INTERVAL_LEVEL`` bootstrap interval over goals for the model's success and a
    paired one for model minus rules, goals per way of typing, pass^runs, turns, and faults."""
    from fieldnotes.shop.evaluate import bootstrap_interval

    model, rules = metrics["goal_success"]["model"], metrics["goal_success"]["rules"]
    low, high = bootstrap_interval(model, seed=seed, level=INTERVAL_LEVEL)
    gap_low, gap_high = bootstrap_interval([a - b for a, b in zip(model, rules, strict=True)], seed=seed,
                                           level=INTERVAL_LEVEL)
    return {"task_success": metrics["task_success"]["model"]["all"],
            "task_success_rules": metrics["task_success"]["rules"]["all"],
            "interval_level": INTERVAL_LEVEL, "task_success_low": low, "task_success_high": high, "gap_low": gap_low, "gap_high": gap_high,
            "model_vs_rules": relation(sum(model), sum(rules)),
            "gap_verdict": ("the interval holds zero, so on this many goals the two cannot be told apart"
                            if gap_low <= 0 <= gap_high else "the interval excludes zero"),
            "goals": len(model), "goals_per_channel": len(model) // len(metrics["channels"]), "runs": runs,
            "pass_hat_last": metrics["pass_hat_k"]["model"][str(runs)],
            "turns_per_dialogue": metrics["turns_per_dialogue"]["model"],
            "faults_assistant": metrics["faults"]["model"]["assistant"],
            "faults_simulator": metrics["faults"]["model"]["simulator"]}


def knee_comparison(bench: dict) -> str:
    """Whether the knee moves from SQLite to PostgreSQL in a committed ``benchmarks/shop_load.py``
    result (its JSON: ``{"sqlite": {"knee": ..., "runs": [...]}, "postgresql": ...}``); a sentence."""
    def where(db: str) -> tuple[float, str]:
        if db not in bench:
            raise ValueError(f"the benchmark result has no {db!r} run; run benchmarks/shop_load.py --db both")
        knee_row, rates = bench[db]["knee"], [r["rate"] for r in bench[db]["runs"]]
        if knee_row:
            return knee_row["rate"], f"a rate of {knee_row['rate']:g} shoppers per second"
        return 0.0, f"below its lowest rate (a rate of {min(rates):g} shoppers per second already missed the target)"
    (s_rate, s_text), (p_rate, p_text) = where("sqlite"), where("postgresql")
    move = ("does not move" if s_rate == p_rate else
            "moves down with PostgreSQL" if p_rate < s_rate else "moves up with PostgreSQL")
    return (f"In the committed benchmark the knee is at {s_text} on SQLite and {p_text} on PostgreSQL: "
            f"on that machine and its load it {move}.")


def latency_gap(open_p99_ms: float, service_p99_ms: float, *, tie_share: float = 0.1) -> str:
    """What the p99 from the scheduled send time against the p99 from the actual send says (ms):
    a gap within ``tie_share`` of the service p99 counts as none; a sentence ending with a full stop."""
    tie_ms = tie_share * service_p99_ms
    if open_p99_ms - service_p99_ms > tie_ms:
        return (f"The scheduled-time p99 is {open_p99_ms - service_p99_ms:.0f} ms higher: that is the waiting a "
                "closed-loop client, which sends only after each reply, never sees, since a message whose time "
                "passed while the previous reply was late counts that lateness.")
    return (f"Here the two are within {tie_share:.0%} of each other: at this rate the replies came back before the next "
            "message was due, so hardly any message waited for its slot; the gap opens only once arrivals "
            "outpace the server.")
