"""Scoring the assistant: understanding, search and whole tasks, per noise channel, beside the rules.

* Understanding: intent accuracy and slot F1 (seqeval) on held-out test templates and synonyms.
* Search: nDCG@10 with the ESCI gains (exact 1, substitute 0.1, complement 0.01, irrelevant 0),
  recall@10 and MRR of exact products, for held-out search messages graded from the generator's
  truth (what the message was generated to ask for); plus the ablation of lexical search alone
  over the accented view, the folded view and both; the views the assistant searches, chosen on
  validation messages of their own; and a filter-only baseline (no BM25), which shows how much of
  these grades is exact attribute matching (the grades come from the same attributes the slots fill).
* Tasks: simulated shoppers pursue held-out goals through the real turn handler and database; a
  dialogue succeeds when the database ends exactly as the goal requires and nothing else was
  written (:func:`judge`); pass^k over simulator seeds; failures split into simulator faults
  and assistant faults.

:func:`run_evaluation` writes everything to ``metrics.json``.
"""

from __future__ import annotations

import json
import math
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fieldnotes.shop.catalog import COMPLEMENTS, ESCI_GAINS, Catalog, make_catalog
from fieldnotes.shop.dialog import new_state
from fieldnotes.shop.nlu import Parse, rule_parse, trained_nlu
from fieldnotes.shop.payments import payment_key
from fieldnotes.shop.search import Filters, SearchIndex, build_index, search
from fieldnotes.shop.simulator import Goal, make_goals, pass_hat_k, price_phrase, simulate
from fieldnotes.shop.store import Store
from fieldnotes.shop.text import find_price, fold, normalize
from fieldnotes.shop.utterances import CHANNELS, Utterance, make_utterances, utter

K = 10
"""Rank cut-off of nDCG and recall (results per query)."""


@dataclass(frozen=True)
class EvalSize:
    """How big an evaluation is: catalog, messages, queries, goals and simulator runs per goal."""

    products: int
    train_messages: int
    test_messages: int
    queries: int
    goals: int
    runs: int


SIZES = {"ci": EvalSize(240, 1500, 480, 120, 20, 2), "book": EvalSize(1000, 3000, 1200, 400, 50, 3)}


def by_channel(values: list[float], channels: list[str]) -> dict[str, float]:
    """Mean of ``values`` overall ("all") and per noise channel."""
    out = {"all": float(np.mean(values))}
    for ch in CHANNELS:
        picked = [v for v, c in zip(values, channels, strict=True) if c == ch]
        if picked:
            out[ch] = float(np.mean(picked))
    return out


# ------------------------------------------------------------------ understanding

def understanding(parse: Callable[[str], Parse], test: list[Utterance]) -> dict[str, dict[str, float]]:
    """Intent accuracy and slot F1 (seqeval, entity level), overall and per channel."""
    from seqeval.metrics import f1_score

    parses = [parse(u.text) for u in test]
    channels = [u.channel for u in test]
    f1 = {"all": float(f1_score([list(u.tags) for u in test], [list(p.tags) for p in parses]))}
    for ch in CHANNELS:
        pairs = [(u, p) for u, p in zip(test, parses, strict=True) if u.channel == ch]
        if pairs:
            f1[ch] = float(f1_score([list(u.tags) for u, _ in pairs], [list(p.tags) for _, p in pairs]))
    acc = by_channel([float(p.intent == u.intent) for u, p in zip(test, parses, strict=True)], channels)
    return {"intent_accuracy": acc, "slot_f1": f1}


# ------------------------------------------------------------------ search

@dataclass(frozen=True)
class Query:
    """A held-out search message and what it was generated to ask for (the judge's truth)."""

    text: str
    channel: str
    wants: dict  # ptype, and any of colour, brand, gender (keys), price (PriceRange)


def make_queries(catalog: Catalog, n: int, *, seed: int) -> list[Query]:
    """``n`` search messages from the test templates, channels in turn, for products the shop has."""
    rng = np.random.default_rng([seed, 5005])
    out = []
    for i in range(n):
        p = catalog.products[int(rng.integers(len(catalog.products)))]
        goal = {"ptype": p.ptype, "colour": p.colour, "brand": p.brand}
        if p.gender != "unisex":
            goal["gender"] = p.gender
        step = 100_000 if p.price_vnd < 2_000_000 else 1_000_000
        top = (p.price_vnd // step + 1 + int(rng.integers(0, 3))) * step
        goal["price"] = price_phrase(top)  # a held-out price form ("không quá 300k", "tối đa 2 triệu")
        channel = CHANNELS[i % len(CHANNELS)]
        u = utter("search", rng, channel=channel, goal=goal)
        carried = {t[2:] for t in u.tags if t != "O"}
        wants = {k: v for k, v in goal.items() if k in carried and k != "price"}
        if "price" in carried:
            wants["price"] = find_price(goal["price"]).range
        out.append(Query(u.text, channel, wants))
    return out


def grade(catalog: Catalog, wants: dict) -> dict[str, str]:
    """ESCI label of every product for a query: E meets everything asked, S is the right type but
    misses something, C is a type bought with it, I the rest."""
    labels = {}
    for p in catalog.products:
        if p.ptype == wants["ptype"]:
            ok = all(getattr(p, k) == wants[k] for k in ("colour", "brand") if k in wants)
            ok &= "gender" not in wants or p.gender in (wants["gender"], "unisex")
            ok &= "price" not in wants or wants["price"].contains(p.price_vnd)
            labels[p.product_id] = "E" if ok else "S"
        else:
            labels[p.product_id] = "C" if p.ptype in COMPLEMENTS.get(wants["ptype"], ()) else "I"
    return labels


def ndcg_at_k(ranked: list[str], labels: dict[str, str], k: int = K) -> float:
    """nDCG@k with ESCI gains and log2 discounts; the ideal ranking is over every graded product."""
    gains = [ESCI_GAINS[labels[i]] for i in ranked[:k]]
    dcg = sum(g / math.log2(r + 2) for r, g in enumerate(gains))
    ideal = sorted((ESCI_GAINS[v] for v in labels.values()), reverse=True)[:k]
    idcg = sum(g / math.log2(r + 2) for r, g in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def recall_at_k(ranked: list[str], labels: dict[str, str], k: int = K) -> float:
    """Share of the exact (E) products that are in the top k (0 when there are none)."""
    exact = {i for i, v in labels.items() if v == "E"}
    return len(exact & set(ranked[:k])) / len(exact) if exact else 0.0


def reciprocal_rank(ranked: list[str], labels: dict[str, str]) -> float:
    """1 / rank of the first exact product (0 if none is ranked)."""
    return next((1 / r for r, i in enumerate(ranked, 1) if labels[i] == "E"), 0.0)


def search_scores(index: SearchIndex, queries: list[Query], rank: Callable[[Query], list[str]]) -> dict:
    """nDCG@10, recall@10 and MRR of a ranking function, overall and per channel."""
    rows = []
    for q in queries:
        labels = grade(index.catalog, q.wants)
        ranked = rank(q)
        rows.append((ndcg_at_k(ranked, labels), recall_at_k(ranked, labels), reciprocal_rank(ranked, labels)))
    channels = [q.channel for q in queries]
    return {name: by_channel([r[j] for r in rows], channels)
            for j, name in enumerate(("ndcg_at_10", "recall_at_10", "mrr"))}


def slot_search(index: SearchIndex, parse: Callable[[str], Parse],
                views: tuple[str, ...] = ("accented", "folded")) -> Callable[[Query], list[str]]:
    """The assistant's search: BM25 over ``views``, filtered and re-ranked by the parsed slots."""
    return lambda q: search(index, q.text, filters=Filters.from_slots(parse(q.text).slots), k=K, views=views)


def lexical_search(index: SearchIndex, views: tuple[str, ...]) -> Callable[[Query], list[str]]:
    """BM25 alone over ``views`` (no slots, no filters, no re-ranking): the ablation."""
    return lambda q: search(index, q.text, k=K, views=views, rerank=False)


def filter_only_search(index: SearchIndex, parse: Callable[[str], Parse]) -> Callable[[Query], list[str]]:
    """No BM25 at all: the products whose type, colour, brand, gender and price equal the parsed
    slots (the assistant's filters made exact), in catalog order. The baseline that shows how much
    of the graded relevance is exact attribute matching, which the generated grades reward."""
    def rank(q: Query) -> list[str]:
        f = Filters.from_slots(parse(q.text).slots)
        out = []
        for p in index.catalog.products:
            if all(getattr(f, a) is None or getattr(f, a) == getattr(p, a) for a in ("ptype", "colour", "brand")) and (
                    f.gender is None or p.gender in (f.gender, "unisex")) and (
                    f.price is None or f.price.contains(p.price_vnd)):
                out.append(p.product_id)
                if len(out) == K:
                    break
        return out
    return rank


ABLATION_VIEWS = {"accented_only": ("accented",), "folded_only": ("folded",), "both_views": ("accented", "folded")}
"""The lexical ablation: BM25 over each view alone and over both (fused)."""


# ------------------------------------------------------------------ tasks

def _same(a: str, b: str) -> bool:
    """Whether two strings are the same words, ignoring case, accents and spacing."""
    return fold(" ".join(normalize(a))) == fold(" ".join(normalize(b)))


def snapshot(store: Store) -> tuple[dict[str, int], dict[str, str]]:
    """(stock by SKU, provider ledger status by idempotency key): what judge compares against."""
    with store.transaction(write=False) as tx:
        return dict(tx.all("SELECT sku, stock FROM variants")), dict(
            tx.all("SELECT idempotency_key, status FROM provider_ledger"))


def judge(store: Store, session_id: str, goal: Goal, before: tuple[dict, dict]) -> str | None:
    """None if the database ends as ``goal`` requires with nothing else written, else what is wrong.

    Reads only the database: the session's orders, their lines (joined to the product's type,
    colour and price and the variant's size), stock moved since ``before``, and the provider's ledger.
    """
    orders = store.orders_of(session_id)
    if len(orders) != 1:
        return f"{len(orders)} orders"
    o = orders[0]
    want_status = "cancelled" if goal.kind == "cancel" else "paid"
    if o["status"] != want_status:
        return f"order is {o['status']}, not {want_status}"
    if len(o["lines"]) != 1:
        return f"{len(o['lines'])} order lines"
    sku, qty, _ = o["lines"][0]
    with store.transaction(write=False) as tx:
        ptype, colour, price, size = tx.one(
            "SELECT p.ptype, p.colour, p.price_vnd, v.size FROM variants v JOIN products p USING (product_id) "
            "WHERE v.sku = ?", (sku,))
        payments = tx.all("SELECT status FROM payments WHERE order_id = ?", (o["order_id"],))
    problems = [name for name, ok in [
        ("type", ptype == goal.ptype), ("colour", colour == goal.colour), ("price", price <= goal.max_vnd),
        ("size", goal.size is None or size == goal.size), ("quantity", qty == goal.quantity),
        ("name", _same(o["name"], goal.name)), ("phone", o["phone"] == goal.phone),
        ("address", _same(o["address"], goal.final_address))] if not ok]
    stock, ledger = snapshot(store)
    moved = {s: before[0][s] - n for s, n in stock.items() if n != before[0][s]}
    if moved != ({} if goal.kind == "cancel" else {sku: qty}):
        problems.append(f"stock moved {moved}")
    new_keys = {k: v for k, v in ledger.items() if before[1].get(k) != v}
    if new_keys != {payment_key(o["order_id"]): "refunded" if goal.kind == "cancel" else "captured"}:
        problems.append(f"ledger {new_keys}")
    if payments != [("refunded" if goal.kind == "cancel" else "captured",)]:
        problems.append(f"payments {payments}")
    return ", ".join(problems) or None


def bootstrap_interval(values: list[float], *, seed: int, draws: int = 2000, level: float = 0.95) -> list[float]:
    """A percentile bootstrap interval [low, high] of the mean of ``values`` (one per goal: a
    goal's success rate, or the model's minus the rules' for a paired interval), resampling goals."""
    if not values:
        raise ValueError("values must hold at least one goal")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    rng = np.random.default_rng([seed, 5009])
    data = np.asarray(values, dtype=float)
    means = data[rng.integers(0, len(data), size=(draws, len(data)))].mean(axis=1)
    return [float(np.quantile(means, (1 - level) / 2)), float(np.quantile(means, (1 + level) / 2))]


def run_seed(seed: int, goal_index: int, run: int) -> int:
    """The simulator seed of one run of one goal (derived, so runs are independent)."""
    return int(np.random.SeedSequence([seed, 5006, goal_index, run]).generate_state(1)[0])


def tasks(catalog: Catalog, parse: Callable[[str], Parse], goals: list[Goal], *, runs: int, seed: int,
          views: tuple[str, ...] = ("accented", "folded")) -> dict:
    """Run every goal ``runs`` times through the real turn handler on a fresh SQLite database."""
    from fieldnotes.shop.server import prepare_database
    from fieldnotes.shop.service import build_assistant, handle_turn

    with tempfile.TemporaryDirectory(prefix="fieldnotes-eval-") as tmp:
        url = f"sqlite:///{tmp}/shop.db"
        prepare_database(url, catalog)
        assistant = build_assistant(url, catalog, parse, views=views)
        results, channels, turns, faults, failures = [], [], [], {"simulator": 0, "assistant": 0}, []
        for i, goal in enumerate(goals):
            channel = CHANNELS[i % len(CHANNELS)]
            runs_ok = []
            for r in range(runs):
                sid = assistant.store.create_session(new_state())
                before = snapshot(assistant.store)
                counter = iter(range(1, 10_000))
                log = simulate(goal, lambda text: handle_turn(assistant, sid, next(counter), text),  # noqa: B023
                               channel=channel, seed=run_seed(seed, i, r))
                problem = judge(assistant.store, sid, goal, before)
                runs_ok.append(problem is None)
                turns.append(len(log.turns))
                if problem is not None:
                    kind = "simulator" if log.simulator_faults else "assistant"
                    faults[kind] += 1
                    failures.append({"goal": goal.kind, "channel": channel, "fault": kind, "problem": problem,
                                     "outcome": log.outcome})
            results.append(runs_ok)
            channels.append(channel)
        invariants = assistant.store.audit()
        assistant.store.close()
    success = [float(np.mean(r)) for r in results]
    return {"task_success": by_channel(success, channels),
            "pass_hat_k": {str(k): pass_hat_k(results, k) for k in range(1, runs + 1)},
            "turns_per_dialogue": float(np.mean(turns)), "faults": faults, "failures": failures,
            "goal_success": success,
            "invariants": invariants}


# ------------------------------------------------------------------ everything

def evaluate(*, seed: int, size: str = "ci") -> dict:
    """Every metric at one size ("ci" or "book"); deterministic for a seed (except ``seconds``)."""
    if size not in SIZES:
        raise ValueError(f"size must be one of {sorted(SIZES)}, got {size!r}")
    s = SIZES[size]
    start = time.perf_counter()
    catalog = make_catalog(s.products, seed=seed)
    model = trained_nlu(s.train_messages, seed)
    test = make_utterances(s.test_messages, seed=seed, split="test")
    index = build_index(catalog)
    queries = make_queries(catalog, s.queries, seed=seed)
    goals = make_goals(catalog, s.goals, seed=seed)
    systems = {"model": model.parse, "rules": rule_parse}
    out: dict = {"seed": seed, "size": size, "sizes": s.__dict__, "channels": list(CHANNELS)}
    # which views the assistant searches: chosen on validation messages of their own, reported on the test ones
    validation = make_queries(catalog, s.queries // 2, seed=seed + 7919)
    on_validation = {name: search_scores(index, validation, slot_search(index, model.parse, views))["ndcg_at_10"]["all"]
                     for name, views in ABLATION_VIEWS.items()}
    chosen = max(on_validation, key=lambda name: (on_validation[name], name == "both_views"))
    views = ABLATION_VIEWS[chosen]
    out["search_views"] = {"validation_ndcg_at_10": on_validation, "chosen": chosen, "test_ndcg_at_10": {
        name: search_scores(index, queries, slot_search(index, model.parse, v))["ndcg_at_10"]
        for name, v in ABLATION_VIEWS.items()}}
    per_system = {}
    for name, parse in systems.items():
        per_system[name] = (understanding(parse, test) | search_scores(index, queries, slot_search(index, parse, views))
                            | tasks(catalog, parse, goals, runs=s.runs, seed=seed, views=views))
    for metric in ("intent_accuracy", "slot_f1", "ndcg_at_10", "recall_at_10", "mrr", "task_success",
                   "pass_hat_k", "turns_per_dialogue", "faults", "failures", "invariants", "goal_success"):
        out[metric] = {name: per_system[name][metric] for name in systems}
    out["search_ablation"] = {name: search_scores(index, queries, lexical_search(index, v))["ndcg_at_10"]
                              for name, v in ABLATION_VIEWS.items()}
    out["filter_only_ndcg_at_10"] = search_scores(index, queries, filter_only_search(index, model.parse))["ndcg_at_10"]
    out["seconds"] = time.perf_counter() - start
    return out


def run_evaluation(*, seed: int, out: str | Path, size: str = "ci") -> Path:
    """Evaluate and write ``out/metrics.json``; returns its path."""
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "metrics.json"
    path.write_text(json.dumps(evaluate(seed=seed, size=size), indent=2, ensure_ascii=False) + "\n")
    return path

