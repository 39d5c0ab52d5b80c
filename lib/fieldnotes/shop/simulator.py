"""A simulated shopper: an agenda-based user with a held-out goal and its own noise.

Each :class:`Goal` is one of five tasks (find a product of a type and colour under a price, the
same in a size, buy two, change the delivery address before confirming, buy then cancel). The
shopper talks only through the held-out *test* templates and synonyms (``utterances.utter``,
``split="test"``) in one noise channel, and sometimes slips (says a wrong size, then corrects
it). It reads what a person reads, the reply text and the listed products (title, price,
colour, sizes), never the assistant's state field or the catalog's truth (:func:`stage_seen`
judges from the reply text where the conversation stands), and it keeps its own record
of what each message was meant to carry: a message whose labelled values do not resolve to the
goal's (noise that destroyed a word) is a *simulator* fault, kept apart from the assistant's.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from fieldnotes.shop.catalog import Catalog, type_names
from fieldnotes.shop.nlu import slots_from_tags
from fieldnotes.shop.text import PriceRange, fold, format_vnd, normalize
from fieldnotes.shop.utterances import (
    CHANNELS,
    Utterance,
    make_address,
    make_name,
    utter,
)

KINDS = ("under_price", "in_size", "buy_two", "change_address", "cancel")
MAX_TURNS = 30
"""Messages a shopper sends before giving up."""
SLIP_RATE = 0.3
"""Share of sized goals where the shopper first names a wrong size, then corrects it."""


@dataclass(frozen=True)
class Goal:
    """What one shopper wants (price in VND): the database state a dialogue must end in."""

    kind: str
    ptype: str
    colour: str
    max_vnd: int
    price_phrase: str
    size: str | None
    quantity: int
    name: str
    phone: str
    address: str
    new_address: str | None = None

    @property
    def final_address(self) -> str:
        """The address the order must carry."""
        return self.new_address or self.address


def price_phrase(max_vnd: int) -> str:
    """A held-out price form for "at most ``max_vnd``": "không quá 450k" or "tối đa 2tr5"."""
    if max_vnd < 1_000_000:
        return f"không quá {max_vnd // 1000}k"
    millions, rest = divmod(max_vnd, 1_000_000)
    return f"tối đa {millions}tr{rest // 100_000}" if rest else f"tối đa {millions} triệu"


def make_goals(catalog: Catalog, n: int, *, seed: int) -> list[Goal]:
    """``n`` goals, kinds in turn, each satisfiable in ``catalog`` (a variant in stock meets it)."""
    if n <= 0:
        raise ValueError(f"n must be > 0, got {n}")
    rng = np.random.default_rng([seed, 5003])
    stocked = [v for v in catalog.variants if v.stock >= 2]
    goals = []
    for i in range(n):
        kind = KINDS[i % len(KINDS)]
        pool = [v for v in stocked if v.size] if kind == "in_size" else stocked
        v = pool[int(rng.integers(len(pool)))]
        p = catalog.product(v.product_id)
        step = 50_000 if p.price_vnd < 1_000_000 else 500_000
        max_vnd = (p.price_vnd // step + 1 + int(rng.integers(0, 3))) * step
        name = make_name(rng, "test")
        phone = "09" + "".join(str(int(d)) for d in rng.integers(0, 10, 8))
        goals.append(Goal(kind, p.ptype, p.colour, max_vnd, price_phrase(max_vnd), v.size or None,
                          2 if kind == "buy_two" else 1, name, phone, make_address(rng, "test"),
                          make_address(rng, "test") if kind == "change_address" else None))
    return goals


@dataclass
class Dialogue:
    """One simulated conversation: the messages, the replies, and the shopper's own faults."""

    goal: Goal
    channel: str
    turns: list[tuple[str, dict]] = field(default_factory=list)
    simulator_faults: list[str] = field(default_factory=list)
    outcome: str = "running"  # "done", "gave_up" (nothing fitting was listed), "handoff", "out_of_turns"


def _carried(u: Utterance, intended: dict) -> list[str]:
    """Slots whose labelled value in the message does not resolve to the intended one (names and
    addresses compared as folded words, so only a word the noise changed counts)."""
    said = slots_from_tags(u.tokens, u.tags)
    wrong = []
    for slot in ("ptype", "colour", "size", "quantity", "item", "phone", "name", "address"):
        if slot not in intended or slot not in {t[2:] for t in u.tags if t != "O"}:
            continue
        value = said.get(slot)
        if slot in ("name", "address"):
            if not isinstance(value, str) or not _same_text(value, intended[slot]):
                wrong.append(slot)
        elif value != intended[slot]:
            wrong.append(slot)
    if "price" in {t[2:] for t in u.tags if t != "O"} and said.get("price") != intended.get("price_range"):
        wrong.append("price")
    return wrong


_SEEN = (  # (words in the folded reply, the stage a reader takes it for), first match wins
    (("nhan vien tu van",), "handoff"),
    (("huy don", "xac nhan"), "placed"),  # "do you want to cancel order ...? reply 'xác nhận'"
    (("dat hang thanh cong",), "placed"),
    (("da duoc dat",), "placed"),
    (("da duoc huy",), "browse"),
    (("xac nhan dat hang",), "confirm"),
    (("cho minh xin",), "details"),
    (("size nao",), "variant"),
    (("muon lay may cai",), "variant"),
    (("da them",), "cart"),
    (("shop co:",), "browse"),
    (("bo gio hang",), "browse"),
    (("chua dat duoc",), "browse"),
)


def stage_seen(reply: dict, before: str) -> str:
    """Where the conversation stands as a person reading the reply text would judge it (one of
    ``dialog.STAGES``); a reply that says nothing about it (a re-ask) leaves ``before``."""
    text = fold(reply["reply"])
    return next((stage for words, stage in _SEEN if all(w in text for w in words)), before)


def _fits(goal: Goal, product: dict) -> bool:
    """Whether a listed product is what the shopper wants, judged from what the listing shows."""
    title = fold(product["title"])
    return (any(fold(name) in title for name in type_names(goal.ptype)) and product["colour"] == goal.colour
            and product["price_vnd"] <= goal.max_vnd and (goal.size is None or goal.size in product["sizes"]))


def _same_text(a: str, b: str) -> bool:
    return fold(" ".join(normalize(a))) == fold(" ".join(normalize(b)))


@dataclass
class _Shopper:
    goal: Goal
    channel: str
    rng: np.random.Generator
    log: Dialogue
    said: set = field(default_factory=set)
    searches: int = 0
    picked: bool = False
    slipped: bool = False
    carried: set = field(default_factory=set)  # slots the last message carried
    size_said: str | None = None  # None, "wrong" (the slip) or "ok"
    listing: list = field(default_factory=list)  # the products last listed
    rejected: set = field(default_factory=set)  # products the assistant said are sold out
    added: bool = False
    address_changed: bool = False
    cancelled: bool = False
    stage: str = "browse"  # where the shopper thinks the conversation stands, from the reply text
    chosen: dict | None = None  # the listed product the shopper picked

    def message(self, intent: str, values: dict) -> str:
        """Type a message carrying ``values`` and note any value the noise destroyed."""
        goal_values = dict(values)
        if "price" in values:
            goal_values["price_range"] = PriceRange(0, self.goal.max_vnd)
        u = utter(intent, self.rng, channel=self.channel, goal=values)
        self.carried = {t[2:] for t in u.tags if t != "O"}
        self.said |= self.carried
        self.log.simulator_faults += [f"turn {len(self.log.turns) + 1}: {s}" for s in _carried(u, goal_values)]
        return u.text

    def next(self, reply: dict | None) -> str | None:
        """The next message given the last reply, or None when the shopper is done."""
        g = self.goal
        stage = self.stage = stage_seen(reply, self.stage) if reply else "browse"
        if stage == "handoff":
            self.log.outcome = "handoff"
            return None
        if (self.cancelled and stage != "placed") or (stage == "placed" and g.kind != "cancel"):
            self.log.outcome = "done"
            return None
        if stage == "placed" and self.cancelled and "xac nhan" in fold(reply["reply"]):
            return self.message("confirm", {})  # the assistant asks to confirm the cancel
        if stage == "placed":  # again if the assistant did not take the first "cancel"
            self.cancelled = True
            return self.message("cancel", {})
        if reply is None:
            return self._search()
        if stage == "browse" and reply["products"]:
            self.listing = reply["products"]
        if "het hang" in fold(reply["reply"]) and self.picked:
            self.rejected.add(reply["products"][0]["id"] if reply["products"] else "")
            self.picked = self.added = False
        if stage == "browse":
            self.picked = self.added = False  # the assistant is listing again: choose again
        if not self.picked:
            return self._pick()
        if g.size and not self.added and stage == "variant":
            if self.size_said is None and self.slipped:  # name a wrong size first, then correct it
                self.size_said = "wrong"
                sizes = reply["products"][0]["sizes"] if reply["products"] else []
                return self.message("pick", {"size": next((s for s in sizes if s != g.size), g.size)})
            if self.size_said != "ok" or "size nao" in fold(reply["reply"]):
                self.size_said = "ok"
                return self.message("pick", {"size": g.size})
        if not self.added or stage == "variant":
            self.added = True
            return self.message("add_to_cart", {"quantity": g.quantity})
        if stage == "details":
            return self._details(reply["reply"])
        if stage == "confirm":
            return self._confirm(reply["reply"])
        return self.message("checkout", {})

    def _search(self) -> str:
        """Ask for the goal's type, colour and price (a template may leave some out)."""
        self.searches += 1
        self.said.clear()
        g = self.goal
        return self.message("search", {"ptype": g.ptype, "colour": g.colour, "price": g.price_phrase})

    def _pick(self) -> str | None:
        """Say what the search left out, else choose the first fitting listed product, else search again."""
        g = self.goal
        missing = [s for s in ("colour", "price") if s not in self.said]
        if missing:
            return self.message("refine", {missing[0]: g.colour if missing[0] == "colour" else g.price_phrase})
        fitting = [i for i, p in enumerate(self.listing, 1) if _fits(g, p) and p["id"] not in self.rejected]
        if fitting:
            self.slipped = bool(g.size) and bool(self.rng.random() < SLIP_RATE)
            values = {"item": fitting[0]}
            self.chosen = self.listing[fitting[0] - 1]
            if g.size and not self.slipped:
                values["size"] = g.size
            text = self.message("pick", values)
            self.picked = "item" in self.carried  # a template may carry only the size
            if "size" in self.carried:
                self.size_said = "ok"
            return text
        if self.searches >= 3:
            self.log.outcome = "gave_up"
            return None
        return self._search()

    def _details(self, reply: str) -> str:
        """Give what the assistant asks for (name, phone, address), one or two at a time."""
        asked = fold(reply)
        wanted = {k: v for k, v, words in (("name", self.goal.name, "ten"), ("phone", self.goal.phone, "so dien thoai"),
                                           ("address", self.goal.address, "dia chi")) if words in asked}
        return self.message("give_details", wanted or {"name": self.goal.name})

    def _confirm(self, summary: str) -> str:
        """Check the whole summary against the goal (one line: the quantity of the chosen product;
        the total; name, phone, address): start the cart again if a line or the total is wrong,
        correct a detail, change the address once, or confirm."""
        g = self.goal
        if g.new_address and not self.address_changed:
            self.address_changed = True
            return self.message("give_details", {"address": g.new_address})
        text = fold(" ".join(normalize(summary)))
        if fold(" ".join(normalize(g.final_address))) not in text:
            return self.message("give_details", {"address": g.final_address})
        if not re.search(rf"nguoi nhan {re.escape(fold(' '.join(normalize(g.name))))} \d", text):
            return self.message("give_details", {"name": g.name})
        if g.phone not in summary:
            return self.message("give_details", {"phone": g.phone})
        if not self._lines_right(summary):
            self.picked = self.added = False  # drop the cart and choose again
            return self.message("cancel", {})
        return self.message("confirm", {})

    def _lines_right(self, summary: str) -> bool:
        """Whether the summary lists exactly one line, the goal's quantity of the chosen product,
        and a total of quantity x its listed price."""
        if self.chosen is None or not summary.startswith("Đơn hàng: "):
            return False
        lines = summary[len("Đơn hàng: "):].split(". Tổng ")[0].split("; ")
        qty, price = self.goal.quantity, self.chosen["price_vnd"]
        return (len(lines) == 1 and lines[0].startswith(f"{qty} x {self.chosen['title']} (")
                and f"Tổng {format_vnd(qty * price)}." in summary)


def simulate(goal: Goal, send: Callable[[str], dict], *, channel: str, seed: int,
             max_turns: int = MAX_TURNS) -> Dialogue:
    """Run one dialogue: the shopper pursues ``goal`` through ``send`` (text -> reply dict)."""
    if channel not in CHANNELS:
        raise ValueError(f"channel {channel!r} is unknown; expected one of {CHANNELS}")
    log = Dialogue(goal, channel)
    shopper = _Shopper(goal, channel, np.random.default_rng([seed, 5004]), log)
    reply = None
    while len(log.turns) < max_turns:
        text = shopper.next(reply)
        if text is None:
            return log
        reply = send(text)
        log.turns.append((text, reply))
    log.outcome = "out_of_turns"
    return log


def pass_hat_k(successes: list[list[bool]], k: int) -> float:
    """pass^k (tau-bench): the chance that k runs of a goal, drawn from its n runs, all succeed,
    averaged over goals: mean of C(c, k) / C(n, k) for c successes in n runs."""
    if not successes or any(len(runs) < k for runs in successes) or k < 1:
        raise ValueError(f"k must be in 1..runs per goal ({min(map(len, successes), default=0)}), got {k}")
    return float(np.mean([math.comb(sum(runs), k) / math.comb(len(runs), k) for runs in successes]))
