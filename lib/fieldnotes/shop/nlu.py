"""Understanding a shopper's message: intent and slots, learned (CRF + linear classifier) or by rules.

Both parsers return a :class:`Parse`: the normalised tokens, a BIO tag per token, the intent, and
the slot values resolved against the shop's vocabulary (product type, colour, gender and brand
keys; size; a VND price range; quantity; which listed item; name, phone, address). The learned
model is trained here from generated messages (``fieldnotes.shop.utterances``, train split):
a linear classifier over character n-grams of the folded text for the intent, and a CRF
(python-crfsuite via sklearn-crfsuite) for the slots, with lexicon and price-phrase features.
"""

from __future__ import annotations

import functools
import pickle
import re
from dataclasses import dataclass, field
from pathlib import Path

from fieldnotes.shop.catalog import PRODUCT_TYPES, lexicon
from fieldnotes.shop.text import PriceRange, expand, find_price, fold, has_diacritics, tokenize
from fieldnotes.shop.utterances import NUMBER_WORDS, Utterance, make_utterances

PHONE = re.compile(r"^(?:\+?84|0)[35789]\d{8}$")
"""A Vietnamese mobile number: 0 (or +84) then 9 digits starting 3, 5, 7, 8 or 9."""
ALL_SIZES = sorted({s for t in PRODUCT_TYPES.values() for s in t.sizes if s}, key=len, reverse=True)
_FOLDED_SIZES = {fold(s): s for s in ALL_SIZES}
MAX_QUANTITY = 20
"""Most units of one variant a single order may hold."""


@dataclass
class Parse:
    """What a message means: intent, slot values and the token-level tags they came from."""

    intent: str
    tokens: tuple[str, ...]
    tags: tuple[str, ...]
    slots: dict[str, object] = field(default_factory=dict)


def phone_number(text: str) -> str | None:
    """A Vietnamese mobile number in the 0XXXXXXXXX form, or None if ``text`` is not one."""
    digits = re.sub(r"[\s.\-]", "", text)
    if not PHONE.match(digits):
        return None
    return "0" + digits[-9:]


def _number(tokens: list[str]) -> int | None:
    """The first integer in tokens: digits or a number word ("hai" = 2, "first" = 1)."""
    for tok in tokens:
        if tok.isdecimal():
            return int(tok)
        if tok in NUMBER_WORDS or fold(tok) in {fold(w) for w in NUMBER_WORDS}:
            return NUMBER_WORDS.get(tok) or next(v for w, v in NUMBER_WORDS.items() if fold(w) == fold(tok))
    return None


def _lookup(slot: str, phrase: str) -> str | None:
    """Resolve a phrase to the shop's key for ``slot``: exact folded match, else a close fuzzy one."""
    from rapidfuzz import fuzz, process

    table = _LEXICON[slot]
    key = fold(phrase)
    if key in table:
        return table[key]
    if len(key) < 3:
        return None
    hit = process.extractOne(key, list(table), scorer=fuzz.ratio, score_cutoff=80)
    return table[hit[0]] if hit else None


_LEXICON = lexicon()


def slots_from_tags(tokens: tuple[str, ...], tags: tuple[str, ...]) -> dict[str, object]:
    """Slot values from BIO-tagged tokens; a span that does not resolve is left out."""
    spans: list[tuple[str, list[str]]] = []
    for tok, tag in zip(tokens, tags, strict=True):
        if tag.startswith("B-") or (tag.startswith("I-") and (not spans or spans[-1][0] != tag[2:])):
            spans.append((tag[2:], [tok]))
        elif tag.startswith("I-"):
            spans[-1][1].append(tok)
    slots: dict[str, object] = {}
    for slot, words in spans:
        phrase = " ".join(words)
        if slot in ("ptype", "colour", "gender", "brand"):
            value = _lookup(slot, phrase)
        elif slot == "size":
            value = _FOLDED_SIZES.get(fold(phrase).replace(" ", ""))
        elif slot == "price":
            span = find_price(phrase)
            value = span.range if span else None
        elif slot in ("quantity", "item"):
            value = _number(words)
        elif slot == "phone":
            value = phone_number(phrase)
        elif slot == "name":
            value = phrase.title()
        else:
            value = phrase
        if value is not None and slot not in slots:
            slots[slot] = value
    return slots


# ------------------------------------------------------------------ rules (the baseline)

_RULES = [  # (intent, pattern over the folded message); the first that matches wins
    ("cancel", r"\bhuy\b|\bcancel\b|khong (?:mua|lay) nua|\bbo don\b"),
    ("confirm", r"xac nhan|dong y|dung roi|\bconfirm\b|^(?:ok|yes|chot)\b(?! don)"),
    ("checkout", r"thanh toan|dat hang|chot don|\bcheckout\b|\bpay\b|tinh tien|len don"),
    ("view_cart", r"(?:xem|kiem tra|co gi|show).*(?:gio|cart)|(?:gio|cart).*(?:co gi|sao roi)"),
    ("add_to_cart", r"vao gio|\bthem\b|\badd\b|\bmua \d|\blay \d|bo gio"),
    ("order_status", r"don hang|\bdon\b.*(?:dau|sao)|bao gio giao|khi nao|\border\b|\btrack\b"),
    ("give_details", r"\bten\b|dia chi|\bsdt\b|so dien thoai|giao (?:toi|den|ve)|ship to|my name|nguoi nhan"),
    ("pick", r"(?:thu|so|mau|cai|number|option) \d|\bsize\b|\bco \w+$|\bsz\b|\bthe \w+ one\b"),
    ("greet", r"^(?:chao|xin chao|hi|hello|alo|shop oi)\b"),
]


def rule_tags(tokens: tuple[str, ...]) -> tuple[str, ...]:
    """BIO tags by longest lexicon match (folded), price phrases, sizes, phones and numbers."""
    folded = [fold(t) for t in tokens]
    tags = ["O"] * len(tokens)
    joined = " ".join(folded)
    price = find_price(joined)
    if price is not None and not any(phone_number(t) for t in joined[price.start:price.end].split()):
        start = joined[: price.start].count(" ") if price.start else 0
        end = joined[: price.end].count(" ") + 1
        for i in range(start, min(end, len(tokens))):
            tags[i] = ("B-" if i == start else "I-") + "price"
    i = 0
    while i < len(tokens):
        if tags[i] != "O":
            i += 1
            continue
        for width in range(min(3, len(tokens) - i), 0, -1):
            phrase = " ".join(folded[i:i + width])
            slot = next((s for s, table in _LEXICON.items() if phrase in table), None)
            if slot and all(t == "O" for t in tags[i:i + width]):
                tags[i:i + width] = [f"B-{slot}"] + [f"I-{slot}"] * (width - 1)
                i += width - 1
                break
        else:
            prev = folded[i - 1] if i else ""
            if phone_number(tokens[i]):
                tags[i] = "B-phone"
            elif prev in ("size", "co", "sz") and folded[i] in _FOLDED_SIZES:
                tags[i] = "B-size"
            elif prev in ("thu", "so", "mau", "number", "option") and _number([tokens[i]]):
                tags[i] = "B-item"
            elif _number([tokens[i]]) and (prev in ("them", "lay", "mua", "add", "luong", "sl", "gio") or
                                           (i + 1 < len(tokens) and folded[i + 1] in ("cai", "chiec", "doi"))):
                tags[i] = "B-quantity"
        i += 1
    return _detail_tags(folded, tags)


_FILLERS = {"la", "is", "sang", "thanh", "to", "cua", "minh", "my"}
"""Words between a cue and the value it announces ("tên mình là ...", "đổi địa chỉ sang ...")."""
_CLOSERS = {"nhe", "nha", "a", "voi", "please"}
_CUE_STARTS = {"dia", "nguoi", "so", "dien", "giao", "ship"}


def _detail_cue(folded: list[str], i: int) -> str | None:
    """Which detail token ``i`` announces: "name" (tên, name, người nhận), "address" (địa chỉ,
    giao đến/tới/về, ship to, address), "phone" (số điện thoại, phone), or None."""
    f, prev = folded[i], folded[i - 1] if i else ""
    if f in ("ten", "name") or (f == "nhan" and prev == "nguoi"):
        return "name"
    if (f == "chi" and prev == "dia") or (f in ("den", "toi", "ve") and prev == "giao") or f == "address" or (
            f == "to" and prev == "ship"):
        return "address"
    if (f == "thoai" and prev == "dien") or f == "phone":
        return "phone"
    return None


def _detail_tags(folded: list[str], tags: list[str]) -> tuple[str, ...]:
    """Tag the words after a name or address cue as that detail, up to the next cue (rules)."""
    spans: list[tuple[str, list[int]]] = []
    for i in range(len(folded)):
        cue = _detail_cue(folded, i)
        if cue is not None:
            tags[i] = "O"  # "đến" in "giao đến" is not the colour "đen"
            while spans and spans[-1][1] and folded[spans[-1][1][-1]] in _CUE_STARTS:
                tags[spans[-1][1].pop()] = "O"  # "số điện" of "số điện thoại" ends no name
            if i and folded[i - 1] in _CUE_STARTS:
                tags[i - 1] = "O"
            spans.append((cue, []))
        elif spans and tags[i] != "B-phone" and (spans[-1][1] or folded[i] not in _FILLERS):
            spans[-1][1].append(i)
    for slot, idx in spans:
        while idx and folded[idx[-1]] in _CLOSERS:
            idx.pop()
        if slot in ("name", "address") and idx:
            for n, j in enumerate(idx):
                tags[j] = ("B-" if n == 0 else "I-") + slot
    return tuple(tags)


def rule_parse(text: str) -> Parse:
    """The rule-based baseline: keyword rules for the intent, lexicon matching for the slots."""
    tokens = tuple(expand(tokenize(text)))
    tags = rule_tags(tokens)
    slots = slots_from_tags(tokens, tags)
    folded = " ".join(fold(t) for t in tokens)
    intent = next((name for name, pattern in _RULES if re.search(pattern, folded)), None)
    if intent is None:
        if "ptype" in slots:
            intent = "search"
        elif slots.keys() & {"colour", "price", "brand", "gender"}:
            intent = "refine"
        elif slots.keys() & {"phone", "address", "name"}:
            intent = "give_details"
        else:
            intent = "other"
    return Parse(intent, tokens, tags, slots)


# ------------------------------------------------------------------ the learned model

def token_features(tokens: tuple[str, ...], i: int, lex_tags: tuple[str, ...]) -> dict[str, object]:
    """CRF features of token ``i``: its folded form, shape, affixes, lexicon tag and neighbours."""
    tok = tokens[i]
    f = fold(tok)
    feats: dict[str, object] = {
        "bias": 1.0, "w": f, "pre3": f[:3], "suf3": f[-3:], "accent": has_diacritics(tok),
        "digit": tok.isdigit(), "alnum_digit": any(c.isdigit() for c in tok), "len": min(len(tok), 8),
        "lex": lex_tags[i], "phone": phone_number(tok) is not None, "size": f in _FOLDED_SIZES,
    }
    for d in (-2, -1, 1, 2):
        j = i + d
        if 0 <= j < len(tokens):
            feats[f"w{d}"] = fold(tokens[j])
            feats[f"lex{d}"] = lex_tags[j]
        else:
            feats[f"w{d}"] = "<s>" if j < 0 else "</s>"
    return feats


def _fuzzy_lex_tags(tokens: tuple[str, ...]) -> tuple[str, ...]:
    """Lexicon tags with a fuzzy fallback, so a mistyped colour or type still lights its feature."""
    tags = list(rule_tags(tokens))
    for i, tok in enumerate(tokens):
        if tags[i] == "O" and len(tok) >= 4 and tok.isalpha():
            for slot in ("ptype", "colour"):
                if _lookup(slot, tok):
                    tags[i] = f"B-{slot}"
                    break
    return tuple(tags)


class SlotTagger:
    """A trained slot CRF held in memory: the crfsuite model's bytes and a tagger opened on them.

    sklearn-crfsuite keeps its model in a temporary file that it deletes only when the object is
    garbage-collected — never in a server worker that is killed, nor in most processes at exit —
    so every load of a pickled CRF used to leave a ``/tmp/model*.crfsuite`` behind. This keeps the
    bytes instead (they are what is pickled) and tags through ``pycrfsuite.Tagger.open_inmemory``.
    """

    def __init__(self, model_bytes: bytes):
        if not model_bytes:
            raise ValueError("model_bytes is empty; expected a trained crfsuite model")
        self.model_bytes = bytes(model_bytes)
        self._tagger = None

    @classmethod
    def from_crf(cls, crf) -> SlotTagger:
        """Take a fitted ``sklearn_crfsuite.CRF``'s model and delete its temporary file."""
        path = Path(crf.modelfile.name)
        tagger = cls(path.read_bytes())
        crf.modelfile.cleanup()
        return tagger

    def tag(self, features: list[dict]) -> tuple[str, ...]:
        """The CRF's tags for one sequence of token feature dicts (as ``CRF.predict_single``)."""
        if self._tagger is None:
            import pycrfsuite

            self._tagger = pycrfsuite.Tagger()
            self._tagger.open_inmemory(self.model_bytes)
        return tuple(self._tagger.tag(features))

    def __getstate__(self) -> dict:
        return {"model_bytes": self.model_bytes}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["model_bytes"])


@dataclass
class NluModel:
    """The learned parser: an intent classifier (scikit-learn pipeline) and a slot CRF."""

    intent_model: object
    slots: SlotTagger

    def parse(self, text: str) -> Parse:
        """Intent, tags and resolved slots of one message."""
        tokens = tuple(expand(tokenize(text)))
        intent = str(self.intent_model.predict([" ".join(fold(t) for t in tokens)])[0])
        if not tokens:
            return Parse(intent, tokens, (), {})
        lex = _fuzzy_lex_tags(tokens)
        tags = self.slots.tag([token_features(tokens, i, lex) for i in range(len(tokens))])
        return Parse(intent, tokens, *_with_cued_details(tokens, tags))


def _with_cued_details(tokens: tuple[str, ...], tags: tuple[str, ...]) -> tuple[tuple[str, ...], dict]:
    """The CRF's tags and slots, with a name or address it missed read after its cue word instead
    ("my name is Khoa": a one-word name the CRF never saw), as the rule baseline reads them."""
    slots = slots_from_tags(tokens, tags)
    missing = {"name", "address"} - slots.keys()
    if not missing:
        return tags, slots
    cued = _detail_tags([fold(t) for t in tokens], [t if t.endswith("phone") else "O" for t in tags])
    merged = tuple(c if t == "O" and c[2:] in missing else t for t, c in zip(tags, cued, strict=True))
    return merged, slots_from_tags(tokens, merged)


def train_nlu(utterances: list[Utterance], *, seed: int = 0) -> NluModel:
    """Fit the intent classifier and the slot CRF on labelled messages (seconds for a few thousand)."""
    import sklearn_crfsuite
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import FeatureUnion, make_pipeline
    from sklearn.svm import LinearSVC

    if not utterances:
        raise ValueError("utterances is empty; expected labelled messages from make_utterances")
    texts = [" ".join(fold(t) for t in u.tokens) for u in utterances]
    features = FeatureUnion([
        ("chars", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=2)),
        ("words", TfidfVectorizer(analyzer="word", ngram_range=(1, 2), sublinear_tf=True, token_pattern=r"\S+")),
    ])
    intent_model = make_pipeline(features, LinearSVC(C=0.5, random_state=seed))
    intent_model.fit(texts, [u.intent for u in utterances])
    crf = sklearn_crfsuite.CRF(algorithm="lbfgs", c1=0.05, c2=0.05, max_iterations=150)
    x = []
    for u in utterances:
        lex = _fuzzy_lex_tags(u.tokens)
        x.append([token_features(u.tokens, i, lex) for i in range(len(u.tokens))])
    crf.fit(x, [list(u.tags) for u in utterances])
    return NluModel(intent_model, SlotTagger.from_crf(crf))


@functools.lru_cache(maxsize=4)
def trained_nlu(messages: int, seed: int) -> NluModel:
    """The parser trained on ``messages`` generated training messages of ``seed``, trained once per process."""
    return train_nlu(make_utterances(messages, seed=seed, split="train"), seed=seed)


def save_nlu(model: NluModel, path: str | Path) -> Path:
    """Write a trained model to ``path`` (pickle), so that server workers need not retrain it."""
    path = Path(path)
    path.write_bytes(pickle.dumps(model))
    return path


def load_nlu(path: str | Path) -> NluModel:
    """Read a model that :func:`save_nlu` wrote. Pickle runs code: load only files this program wrote."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"path {path} is not a file; expected a model written by save_nlu")
    model = pickle.loads(path.read_bytes())
    if not isinstance(model, NluModel):
        raise ValueError(f"path {path} holds a {type(model).__name__}, not an NluModel")
    return model


__all__ = ["NluModel", "Parse", "PriceRange", "SlotTagger", "load_nlu", "phone_number", "rule_parse", "save_nlu", "slots_from_tags",
           "train_nlu", "trained_nlu"]
