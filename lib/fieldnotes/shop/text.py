"""Vietnamese shop text: Unicode NFC, a diacritic-folded view, teen-code, and price phrases in VND.

Vietnamese shoppers often type without accents ("ao thun nam mau den" for "áo thun nam màu đen",
"a T-shirt for men, black"), in chat abbreviations ("ko" = không "no/not", "sz" = size, "đt" =
điện thoại "phone") and with prices in shorthand: "300k" = 300,000 đồng, "1tr2" = 1.2 triệu
(million) = 1,200,000 đồng, "2 củ" = 2 million (slang). Everything here is plain functions on
strings; nothing depends on the shop.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

MAX_MESSAGE_CHARS = 2000
"""Longest message the assistant reads (characters); longer ones get a polite refusal."""

ABBREVIATIONS = {
    "ko": "không", "k0": "không", "hok": "không", "hem": "không", "khg": "không", "kh": "không",
    "hông": "không", "sz": "size", "đt": "điện thoại", "dt": "điện thoại", "đth": "điện thoại",
    "sđt": "số điện thoại", "sdt": "số điện thoại", "dc": "được", "đc": "được", "dk": "được",
    "mk": "mình", "mik": "mình", "mh": "mình", "j": "gì", "gi": "gì", "bn": "bao nhiêu",
    "vs": "với", "r": "rồi", "oki": "ok", "oke": "ok", "okie": "ok", "okay": "ok", "sp": "sản phẩm",
    "tks": "cảm ơn", "thks": "cảm ơn", "ak": "ạ", "ah": "ạ", "e": "em", "nhe": "nhé", "nka": "nha",
    "ns": "nói", "add": "thêm", "ck": "chuyển khoản", "đchi": "địa chỉ", "dchi": "địa chỉ",
}
"""Chat abbreviations and teen-code (lower-case, as typed) -> the word they stand for."""

_TOKEN = re.compile(r"\d+(?:[.,]\d+)*[^\W\d_]*\d*|[^\W_]+(?:[-'][^\W_]+)*|[<>~+\-–]", re.UNICODE)


def nfc(text: str) -> str:
    """Unicode NFC: one code point per accented letter, so "ế" typed two ways compares equal."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    return unicodedata.normalize("NFC", text)


def fold(text: str) -> str:
    """The diacritic-folded, lower-case view: "Áo thun ĐEN" -> "ao thun den" (đ -> d)."""
    decomposed = unicodedata.normalize("NFD", nfc(text).lower().replace("đ", "d"))
    return "".join(c for c in decomposed if unicodedata.category(c) != "Mn")


def has_diacritics(text: str) -> bool:
    """Whether ``text`` carries any Vietnamese accent or the letter đ."""
    return fold(text) != nfc(text).lower()


def clean(text: str) -> str:
    """NFKC, control characters replaced by spaces, whitespace collapsed.

    NFKC composes Vietnamese letters as NFC does and also maps compatibility forms to plain ones:
    superscript, circled and full-width digits ("²", "①", "３") become "2", "1", "3", so every
    token that looks like a number is one ``int`` can read.
    """
    text = unicodedata.normalize("NFKC", nfc(text))
    text = "".join(" " if unicodedata.category(c)[0] == "C" else c for c in text)
    return " ".join(text.split())


def tokenize(text: str) -> list[str]:
    """Lower-case NFC tokens; numbers keep their unit ("300k", "1tr2", "1.8l", "128gb")."""
    return _TOKEN.findall(clean(text).lower())


def expand(tokens: list[str]) -> list[str]:
    """Replace chat abbreviations by their words ("ko" -> "không"); "k" after a number stays "k"."""
    out: list[str] = []
    for i, tok in enumerate(tokens):
        if tok == "k" and not (i and tokens[i - 1][:1].isdigit()):
            out.extend(["không"])
        else:
            out.extend(ABBREVIATIONS.get(tok, tok).split())
    return out


def normalize(text: str) -> list[str]:
    """The tokens the assistant reads: cleaned, lower-case, abbreviations expanded (accents kept)."""
    return expand(tokenize(text))


# ------------------------------------------------------------------ prices

@dataclass(frozen=True)
class PriceRange:
    """A price range in VND, both ends inclusive; ``max_vnd`` None means no upper bound."""

    min_vnd: int
    max_vnd: int | None

    def __post_init__(self) -> None:
        if self.min_vnd < 0:
            raise ValueError(f"min_vnd must be >= 0, got {self.min_vnd}")
        if self.max_vnd is not None and self.max_vnd < self.min_vnd:
            raise ValueError(f"max_vnd {self.max_vnd} is below min_vnd {self.min_vnd}")

    def contains(self, price_vnd: int) -> bool:
        """Whether a price (VND) is inside the range."""
        return price_vnd >= self.min_vnd and (self.max_vnd is None or price_vnd <= self.max_vnd)


MAX_PRICE_VND = 1_000_000_000
"""The largest amount read as a price (1 tỷ = one billion VND); a larger one is refused."""
_NEGATIVE = re.compile(r"(?:^|(?<![\d\s])\s|(?<=[^\w\s-]))-\s*\d")
"""A minus sign before a number that does not follow another number ("dưới -300k", not "200-500k")."""

AROUND = 0.2
"""'tầm X' / 'khoảng X' / 'around X' means X ± 20 %."""

_UNITS = {"k": 1_000, "nghin": 1_000, "ngan": 1_000, "ng": 1_000, "tr": 1_000_000,
          "trieu": 1_000_000, "cu": 1_000_000, "m": 1_000_000, "d": 1, "vnd": 1, "dong": 1}
_AMOUNT = (r"(?<![\w.,])(?:(?P<{g}big>\d{{1,3}}(?:[.,]\d{{3}})+|\d{{4,}})|(?P<{g}num>\d+(?:[.,]\d+)?))"
           r"\s*(?P<{g}unit>k|nghin|ngan|ng|trieu|tr|cu|m|vnd|dong|d)?(?P<{g}frac>\d{{1,3}})?(?![\w.,])")
_A, _B = _AMOUNT.format(g="a"), _AMOUNT.format(g="b")
_PRICE_RULES = [
    ("between", re.compile(rf"(?:(?:tu|from|between)\s+)?{_A}\s*(?:den|toi|-|–|~|to|and)\s*{_B}")),
    ("under", re.compile(rf"(?:duoi|<=?|toi da|khong qua|under|below|less than|max|it hon|re hon|nho hon)\s*{_B}")),
    ("over", re.compile(rf"(?:tren|>=?|hon|over|above|more than|it nhat|toi thieu|tu|from)\s*{_B}(?:\s*tro len)?")),
    ("over", re.compile(rf"{_B}\s*tro len")),
    ("around", re.compile(rf"(?:(?:tam|khoang|around|about|~|chung|gia|budget|co)\s*)?{_B}")),
]


def _amount(m: re.Match, g: str, unit_hint: str | None = None) -> tuple[int, bool] | None:
    """The VND amount of group ``g`` of a match and whether it carried a unit (None: not a price)."""
    big, num, unit, frac = (m.group(g + k) for k in ("big", "num", "unit", "frac"))
    if big is not None:
        if frac:
            return None
        return int(re.sub(r"[.,]", "", big)) * _UNITS[unit or "d"], True
    unit = unit or unit_hint
    if unit is None:
        return None
    value = float(num.replace(",", "."))
    scale = _UNITS[unit]
    if frac:
        if scale != 1_000_000 or "." in num or "," in num:
            return None
        value += int(frac) / 10 ** len(frac)
    return int(round(value * scale)), m.group(g + "unit") is not None


@dataclass(frozen=True)
class PriceSpan:
    """A price phrase found in folded text: character offsets [start, end) and its range."""

    start: int
    end: int
    range: PriceRange


def find_price(text: str) -> PriceSpan | None:
    """The first price phrase in ``text`` (offsets into ``fold(text)``), or None.

    Forms: "dưới 300k", "under 300k", "tầm 1tr2", "khoảng 500 nghìn", "từ 200 đến 500 nghìn",
    "200-500k", "trên 1 triệu", "2 củ", "350.000đ". A bare number without a unit below 10,000 is
    a size or a quantity, not a price. A reversed range is swapped; a text with a negative amount
    ("dưới -300k") or one above ``MAX_PRICE_VND`` holds no price (the assistant asks again).
    """
    folded = fold(clean(text))
    if _NEGATIVE.search(folded):
        return None
    best: PriceSpan | None = None
    for kind, pattern in _PRICE_RULES:
        for m in pattern.finditer(folded):
            hi = _amount(m, "b")
            if hi is not None and hi[0] > MAX_PRICE_VND:
                return None
            if hi is None or hi[0] < 1_000:
                continue
            if kind == "between":
                lo = _amount(m, "a", unit_hint=m.group("bunit"))
                if lo is None:
                    continue
                if lo[0] > MAX_PRICE_VND:
                    return None
                rng = PriceRange(min(lo[0], hi[0]), max(lo[0], hi[0]))  # "từ 500k đến 200k" means 200k-500k
            elif kind == "under":
                rng = PriceRange(0, hi[0])
            elif kind == "over":
                rng = PriceRange(hi[0], None)
            else:
                rng = PriceRange(int(hi[0] * (1 - AROUND)), int(hi[0] * (1 + AROUND)))
            span = PriceSpan(m.start(), m.end(), rng)
            if best is None or span.start < best.start:
                best = span
            break
        if best is not None:
            return best
    return best


def parse_price(phrase: str) -> PriceRange:
    """The VND range of a price phrase such as "dưới 300k"; ValueError if it holds none."""
    span = find_price(phrase)
    if span is None:
        raise ValueError(f"phrase {phrase!r} holds no price; expected e.g. 'dưới 300k' or 'tầm 1tr2'")
    return span.range


def format_vnd(amount_vnd: int) -> str:
    """A price as a Vietnamese shop writes it: 1250000 -> "1.250.000đ"."""
    return f"{amount_vnd:,}".replace(",", ".") + "đ"
