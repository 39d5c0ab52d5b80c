"""Generated shopper messages with intent and slot labels, from templates split into train and test.

Each template is a message with slot holes ("cho mình xem {ptype} {colour}" = "show me a
{ptype} in {colour}"). The *test* templates, and one synonym of every product type and colour,
never appear in training, so a held-out score measures phrasing the model has not seen. Four
noise channels: ``accented`` (as typed with accents), ``no_diacritics`` (accents stripped, the
common way of typing), ``typos`` (one or two words mistyped) and ``english`` (English templates
and words, code-switching included).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from fieldnotes.shop.catalog import COLOURS, GENDERS, PRODUCT_TYPES
from fieldnotes.shop.text import expand, fold, tokenize

INTENTS = ("search", "refine", "pick", "add_to_cart", "view_cart", "checkout", "give_details",
           "confirm", "cancel", "order_status", "greet", "other")
SLOTS = ("ptype", "colour", "size", "gender", "brand", "price", "quantity", "item", "name", "phone",
         "address")
CHANNELS = ("accented", "no_diacritics", "typos", "english")
SPLITS = ("train", "test")

# intent -> split -> language -> templates. Test templates are new phrasings (new word orders and
# combinations) of words the train templates use; one synonym per type and colour is test-only.
TEMPLATES: dict[str, dict[str, dict[str, tuple[str, ...]]]] = {
    "search": {
        "train": {"vi": ("cho mình xem {ptype} {colour}", "shop có {ptype} {gender} không", "tìm {ptype} {brand} {price}",
                         "mình muốn mua {ptype} màu {colour} {price}", "có {ptype} {gender} {colour} {price} ko shop",
                         "{ptype} {brand}", "em cần {ptype} {price}", "bán {ptype} {colour} sz {size} không",
                         "mk cần mua {ptype} {gender}", "{ptype} {gender} {colour}", "tìm giúp em {ptype} màu {colour}",
                         "có {ptype} nào {price} không", "xem {ptype} {brand} {price}", "{ptype} {colour} {price}"),
                  "en": ("show me {ptype} {colour}", "do you have {gender} {ptype} {price}", "looking for {brand} {ptype}",
                         "i need {ptype} {price}", "{colour} {ptype}", "cho mình xem {ptype} {colour} {price}")},
        "test": {"vi": ("tìm giúp mình {ptype} {gender} {price}", "có {ptype} {colour} nào {price} không",
                        "mình đang cần {ptype} {brand}", "xem {ptype} {gender} màu {colour}", "cần mua {ptype} {colour} {price}"),
                 "en": ("need {colour} {ptype} {price}", "show {brand} {ptype}", "do you have {ptype} {colour}")},
    },
    "refine": {
        "train": {"vi": ("còn màu {colour} không", "{price} thôi", "loại {gender} ấy", "rẻ hơn {price} nhé", "lấy {colour}",
                         "đổi sang màu {colour}", "có hàng {brand} không", "màu {colour} {price}", "chỉ lấy {colour}",
                         "hàng {brand} thôi", "lọc {price}"),
                  "en": ("any in {colour}", "{price} please", "only {brand}", "cheaper {price}", "in {colour}")},
        "test": {"vi": ("còn {colour} không", "chỉ {brand} thôi", "màu {colour} thôi", "{price} được không"),
                 "en": ("only {colour}", "{price} only")},
    },
    "pick": {
        "train": {"vi": ("lấy cái thứ {item}", "mình chọn mẫu số {item}", "cái {item} size {size}", "size {size}",
                         "lấy size {size} nha", "à không size {size}", "mẫu số {item}", "chọn số {item}",
                         "đổi size {size}", "cỡ {size}"),
                  "en": ("the {item} one", "i'll take number {item} in size {size}", "size {size} please", "number {item}")},
        "test": {"vi": ("chọn cái số {item}", "lấy mẫu thứ {item}", "mẫu {item} size {size}", "đổi sang size {size}",
                        "à không lấy sz {size}"),
                 "en": ("number {item} please", "size {size} instead")},
    },
    "add_to_cart": {
        "train": {"vi": ("thêm {quantity} vào giỏ", "cho vào giỏ hàng {quantity}", "lấy {quantity}",
                         "bỏ giỏ giúp mình", "thêm vào giỏ", "mua {quantity}", "thêm {quantity}"),
                  "en": ("add {quantity} to cart", "put it in my cart", "add {quantity}")},
        "test": {"vi": ("thêm {quantity} giúp mình", "cho {quantity} vào giỏ", "mua {quantity} nhé"),
                 "en": ("add {quantity} please", "put {quantity} in the cart")},
    },
    "view_cart": {
        "train": {"vi": ("xem giỏ hàng", "giỏ hàng của mình có gì", "cho xem giỏ", "kiểm tra giỏ hàng"),
                  "en": ("show my cart", "what's in my cart")},
        "test": {"vi": ("giỏ hàng có gì", "xem giỏ của mình"), "en": ("show cart", "my cart")},
    },
    "checkout": {
        "train": {"vi": ("thanh toán", "đặt hàng luôn", "mình muốn thanh toán", "chốt đơn", "tính tiền giúp mình"),
                  "en": ("checkout", "i want to pay")},
        "test": {"vi": ("mình muốn đặt hàng", "thanh toán luôn", "chốt đơn giúp mình"),
                 "en": ("i want to checkout", "pay please")},
    },
    "give_details": {
        "train": {"vi": ("tên mình là {name}", "{name} {phone}", "sđt {phone}", "địa chỉ {address}", "giao tới {address}",
                         "tên {name} sđt {phone} địa chỉ {address}", "số điện thoại của mình là {phone}",
                         "à đổi địa chỉ thành {address}", "người nhận {name}"),
                  "en": ("my name is {name}", "ship to {address}", "phone {phone}", "address {address}")},
        "test": {"vi": ("tên {name} nhé", "giao đến {address}", "số điện thoại {phone}", "đổi địa chỉ sang {address}",
                        "mình tên {name} sđt {phone}"),
                 "en": ("my phone is {phone}", "change address to {address}", "name {name}")},
    },
    "confirm": {
        "train": {"vi": ("xác nhận", "ok đặt đi", "đúng rồi", "đồng ý", "ok chốt"), "en": ("confirm", "yes please")},
        "test": {"vi": ("ok xác nhận", "đúng rồi đặt đi", "đồng ý nhé"), "en": ("yes", "confirm please")},
    },
    "cancel": {
        "train": {"vi": ("hủy đơn", "thôi không mua nữa", "huỷ giúp mình", "bỏ đơn đi"), "en": ("cancel", "cancel my order")},
        "test": {"vi": ("hủy đơn giúp mình", "mình không mua nữa"), "en": ("cancel it",)},
    },
    "order_status": {
        "train": {"vi": ("đơn hàng của mình tới đâu rồi", "kiểm tra đơn", "bao giờ giao", "tình trạng đơn hàng"),
                  "en": ("where is my order", "order status")},
        "test": {"vi": ("đơn hàng của mình sao rồi", "bao giờ giao hàng"), "en": ("status of my order",)},
    },
    "greet": {
        "train": {"vi": ("chào shop", "hi shop", "alo", "xin chào", "shop ơi"), "en": ("hello", "hi there")},
        "test": {"vi": ("chào bạn", "xin chào shop"), "en": ("hi",)},
    },
    "other": {
        "train": {"vi": ("cảm ơn", "shop ở đâu", "có freeship không", "mấy giờ shop đóng cửa", "haha"),
                  "en": ("thanks", "who are you")},
        "test": {"vi": ("cảm ơn nhé", "shop mở cửa mấy giờ"), "en": ("thank you",)},
    },
}
OPENERS = {"train": ("", "", "shop ơi", "cho em hỏi", "bạn ơi"), "test": ("", "ad ơi", "shop ơi cho mình hỏi")}
CLOSERS = {"train": ("", "", "nhé", "ạ", "với", "nha"), "test": ("", "được không", "ạ")}
"""Polite openers and closers around task messages (not greetings, thanks or yes/no)."""
_WRAPPED = ("search", "refine", "pick", "add_to_cart", "view_cart", "checkout", "order_status")

PRICE_FORMS = {
    "train": ("dưới {a}k", "tầm {m}tr{d}", "từ {a} đến {b} nghìn", "khoảng {a}k", "trên {m} triệu", "{a}-{b}k",
              "dưới {m} củ", "under {a}k"),
    "test": ("không quá {a}k", "tối đa {m}tr{d}", "{a}k trở lên", "from {a}k to {b}k"),
}
QUANTITY_FORMS = {"train": ("{n} cái", "{n}", "số lượng {n}", "{w} cái"), "test": ("{n} chiếc", "{w}", "sl {n}")}
ITEM_FORMS = {"train": ("{n}", "{w}"), "test": ("{n}",)}
NUMBER_WORDS = {"một": 1, "hai": 2, "ba": 3, "bốn": 4, "năm": 5, "sáu": 6, "bảy": 7, "tám": 8, "chín": 9, "mười": 10,
                "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "first": 1, "second": 2, "third": 3}
NAME_PARTS = {  # split -> (family names, middle names, given names): test shoppers are people training never met
    "train": (("Nguyễn", "Trần", "Lê", "Phạm", "Hoàng"), ("Văn", "Thị", "Minh"), ("An", "Bình", "Hương", "Lan", "Tuấn")),
    "test": (("Võ", "Đặng", "Bùi", "Đỗ", "Huỳnh"), ("Ngọc", "Quốc", "Thu", "Hữu"),
             ("Dũng", "Trang", "Phương", "Hải", "Linh", "Khoa")),
}
ADDRESS_PARTS = {  # split -> (streets, districts, cities)
    "train": (("Lê Lợi", "Nguyễn Huệ", "Trần Hưng Đạo"), ("Quận 1", "Quận 3", "Ba Đình"), ("TP HCM", "Hà Nội")),
    "test": (("Hai Bà Trưng", "Lý Thường Kiệt", "Điện Biên Phủ", "Pasteur", "Võ Văn Tần"),
             ("Hoàn Kiếm", "Hải Châu", "Ninh Kiều", "Quận 7"), ("Đà Nẵng", "Cần Thơ", "Huế")),
}
NAME_LENGTHS = ((3, 0.6), (2, 0.2), (1, 0.2))
"""How many words a name has, with their shares: "Trần Thị Lan", "Trần Lan", "Lan"."""


def make_name(rng: np.random.Generator, split: str) -> str:
    """A Vietnamese person's name of one to three words from ``split``'s lists."""
    words = int(rng.choice([n for n, _ in NAME_LENGTHS], p=[w for _, w in NAME_LENGTHS]))
    family, middle, given = (seq[int(rng.integers(len(seq)))] for seq in NAME_PARTS[split])
    return {3: f"{family} {middle} {given}", 2: f"{family} {given}", 1: given}[words]


def make_address(rng: np.random.Generator, split: str) -> str:
    """A delivery address (house number, street, district, city) from ``split``'s lists."""
    streets, districts, cities = ADDRESS_PARTS[split]
    pick = lambda seq: seq[int(rng.integers(len(seq)))]  # noqa: E731
    return f"{int(rng.integers(1, 300))} {pick(streets)} {pick(districts)} {pick(cities)}"


@dataclass(frozen=True)
class Utterance:
    """One labelled message: raw text, its normalised tokens and BIO tags, intent and channel."""

    text: str
    tokens: tuple[str, ...]
    tags: tuple[str, ...]
    intent: str
    channel: str


def held_out_synonym(names: tuple[str, ...], name_en: str) -> str | None:
    """The one name of a type or colour that training never sees: its last synonym that is not
    its English name (English messages use that), if it has more than two names."""
    others = [n for n in names[1:] if n != name_en]
    return others[-1] if len(names) > 2 and others else None


def _names(split: str, english: bool, names_vi: tuple[str, ...], name_en: str) -> tuple[str, ...]:
    """The names a split may use: test always uses the held-out synonym when there is one."""
    if english:
        return (name_en,)
    held = held_out_synonym(names_vi, name_en)
    if split == "test" and held is not None:
        return (held, *names_vi[:1])
    return tuple(n for n in names_vi if n != held and n != name_en) or names_vi[:1]


def _slot_value(slot: str, rng: np.random.Generator, split: str, english: bool, goal: dict | None) -> str:
    """A surface form for one slot, from the goal's value when a goal is given, else random."""
    goal = goal or {}

    def pick(seq):
        return seq[int(rng.integers(len(seq)))]

    if slot == "ptype":
        t = PRODUCT_TYPES[goal.get("ptype") or pick(list(PRODUCT_TYPES))]
        return pick(_names(split, english, (t.name_vi, *t.synonyms), t.name_en))
    if slot == "colour":
        vi, en, other = COLOURS[goal.get("colour") or pick(list(COLOURS))]
        return pick(_names(split, english, (vi, *other), en))
    if slot == "gender":
        vi, en, other = GENDERS[goal.get("gender") or pick(["nam", "nữ"])]
        return en.removesuffix("'s") if english else pick((vi, *other[:1]))
    if slot == "brand":
        if goal.get("brand"):
            return goal["brand"]
        return pick(PRODUCT_TYPES[pick(list(PRODUCT_TYPES))].brands)
    if slot == "size":
        return goal.get("size") or pick(pick(list(PRODUCT_TYPES.values())).sizes[:1] + ("S", "M", "L", "XL", "40", "42"))
    if slot == "price":
        if goal.get("price"):
            return goal["price"]
        form = pick(PRICE_FORMS[split])
        a = int(rng.integers(1, 10)) * 100
        return form.format(a=a, b=a + 100 * int(rng.integers(1, 5)), m=int(rng.integers(1, 5)), d=int(rng.integers(1, 10)))
    if slot in ("quantity", "item"):
        n = goal.get(slot) or int(rng.integers(1, 5))
        forms = QUANTITY_FORMS if slot == "quantity" else ITEM_FORMS
        words = [w for w, v in NUMBER_WORDS.items() if v == n and (w.isascii() == english)]
        form = pick(forms[split])
        return form.format(n=n, w=words[0] if words else n)
    if slot == "name":
        return goal.get("name") or make_name(rng, split)
    if slot == "phone":
        return goal.get("phone") or "0" + pick("35789") + "".join(str(int(d)) for d in rng.integers(0, 10, 8))
    if slot == "address":
        return goal.get("address") or make_address(rng, split)
    raise ValueError(f"slot {slot!r} is unknown; expected one of {SLOTS}")


_KEYBOARD = "qwertyuiopasdfghjklzxcvbnm"


def typo(word: str, rng: np.random.Generator) -> str:
    """One keyboard slip in ``word``: a letter dropped, doubled, swapped with its neighbour or replaced."""
    if len(word) < 3 or not word.isalpha():
        return word
    i = int(rng.integers(1, len(word) - 1))
    kind = int(rng.integers(4))
    if kind == 0:
        return word[:i] + word[i + 1:]
    if kind == 1:
        return word[:i] + word[i] + word[i:]
    if kind == 2:
        return word[:i - 1] + word[i] + word[i - 1] + word[i + 1:]
    return word[:i] + _KEYBOARD[int(rng.integers(len(_KEYBOARD)))] + word[i + 1:]


def _noisy(segment: str, channel: str, rng: np.random.Generator, typo_rate: float) -> str:
    """A segment as the shopper types it in ``channel``."""
    if channel == "no_diacritics":
        return fold(segment)
    if channel == "typos":
        return " ".join(typo(w, rng) if rng.random() < typo_rate else w for w in segment.split())
    return segment


def realise(template: str, intent: str, channel: str, rng: np.random.Generator, *, split: str,
            goal: dict | None = None, typo_rate: float = 0.3) -> Utterance:
    """Fill ``template``'s slot holes and type it in ``channel``; tags follow the normalised tokens."""
    if channel not in CHANNELS:
        raise ValueError(f"channel {channel!r} is unknown; expected one of {CHANNELS}")
    english = channel == "english"
    text_parts, tokens, tags = [], [], []
    for piece in re.split(r"(\{\w+\})", template):
        if not piece.strip():
            continue
        slot = piece[1:-1] if piece.startswith("{") else None
        raw = _slot_value(slot, rng, split, english, goal) if slot else piece
        raw = _noisy(raw, channel, rng, typo_rate if slot is None or slot in ("ptype", "colour") else 0.0)
        toks = expand(tokenize(raw))
        if not toks:
            continue
        text_parts.append(raw.strip())
        tokens.extend(toks)
        if slot in ("quantity", "item"):  # only the number carries the tag ("2" in "2 cái")
            tags.extend(f"B-{slot}" if t.isdigit() or t in NUMBER_WORDS else "O" for t in toks)
        else:
            tags.extend(["O"] * len(toks) if slot is None else [f"B-{slot}"] + [f"I-{slot}"] * (len(toks) - 1))
    return Utterance(" ".join(text_parts), tuple(tokens), tuple(tags), intent, channel)


def make_utterances(n: int, *, seed: int, split: str, channels: tuple[str, ...] = CHANNELS) -> list[Utterance]:
    """``n`` labelled messages from ``split``'s templates, intents and channels in turn, seeded.

    The English channel uses the English templates; the others the Vietnamese ones.
    """
    if split not in SPLITS:
        raise ValueError(f"split {split!r} is unknown; expected one of {SPLITS}")
    if n <= 0:
        raise ValueError(f"n must be > 0, got {n}")
    rng = np.random.default_rng([seed, 5002, SPLITS.index(split)])
    out = []
    for i in range(n):
        intent = INTENTS[i % len(INTENTS)]
        channel = channels[(i // len(INTENTS)) % len(channels)]
        pool = TEMPLATES[intent][split]["en" if channel == "english" else "vi"]
        template = pool[int(rng.integers(len(pool)))]
        if intent in _WRAPPED and channel != "english":
            opener, closer = (seq[int(rng.integers(len(seq)))] for seq in (OPENERS[split], CLOSERS[split]))
            template = f"{opener} {template} {closer}".strip()
        out.append(realise(template, intent, channel, rng, split=split))
    return out


def say(intent: str, rng: np.random.Generator, *, channel: str, goal: dict, split: str = "test") -> str:
    """A message with ``intent`` expressing ``goal``'s values, using only templates whose holes it fills."""
    return utter(intent, rng, channel=channel, goal=goal, split=split).text


def utter(intent: str, rng: np.random.Generator, *, channel: str, goal: dict, split: str = "test") -> Utterance:
    """:func:`say`, with the labels: what the message was meant to carry (a simulated shopper's own record)."""
    pool = TEMPLATES[intent][split]["en" if channel == "english" else "vi"]
    usable = [t for t in pool if all(s in goal for s in re.findall(r"\{(\w+)\}", t))] or [
        t for t in pool if "{" not in t]
    if not usable:
        raise ValueError(f"goal {sorted(goal)} fills no {intent!r} template; add the slots it needs")
    template = usable[int(rng.integers(len(usable)))]
    return realise(template, intent, channel, rng, split=split, goal=goal)
