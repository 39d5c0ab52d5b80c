"""Product search: BM25 (bm25s) over the accented and the diacritic-folded view, filters, re-ranking.

A shopper who types "ao thun den" (no accents) shares no token with the title "Áo thun ... màu
đen" in the accented view: only the folded view matches. Each view's BM25 scores are scaled to
[0, 1] and a product keeps its best view's score (the maximum: summing the views counted a word
typed with its accents twice, once in each view, and ranked worse than the folded view alone);
the slots the understanding found (price, size in stock, gender) filter the
candidates, and matching type, colour and brand re-rank them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fieldnotes.shop.catalog import COLOURS, PRODUCT_TYPES, Catalog
from fieldnotes.shop.text import PriceRange, fold, normalize

VIEWS = ("accented", "folded")
BOOSTS = {"ptype": 1.0, "colour": 0.5, "brand": 0.5}
"""Added to the fused BM25 score (which lies in [0, 1]) when a slot matches the product."""


@dataclass(frozen=True)
class Filters:
    """Hard constraints and re-ranking hints from the slots; None means not asked for."""

    ptype: str | None = None
    colour: str | None = None
    brand: str | None = None
    gender: str | None = None
    size: str | None = None
    price: PriceRange | None = None
    in_stock: bool = True

    @classmethod
    def from_slots(cls, slots: dict) -> Filters:
        """The filters a parse's slots ask for; a price may be a PriceRange or [min_vnd, max_vnd]
        (its JSON form in a stored conversation)."""
        keys = ("ptype", "colour", "brand", "gender", "size", "price")
        values = {k: slots[k] for k in keys if k in slots}
        if isinstance(values.get("price"), list | tuple):
            values["price"] = PriceRange(*values["price"])
        return cls(**values)


@dataclass
class SearchIndex:
    """BM25 indexes of every product in both views, with the attributes filters need."""

    catalog: Catalog
    retrievers: dict  # view -> bm25s.BM25

    def ids(self) -> list[str]:
        """Product ids in index order."""
        return [p.product_id for p in self.catalog.products]


def document(catalog: Catalog, i: int) -> str:
    """The searchable text of product ``i``: its title plus its type's and colour's shop names."""
    p = catalog.products[i]
    t = PRODUCT_TYPES[p.ptype]
    return f"{p.title} {t.name_vi} {t.name_en} {COLOURS[p.colour][0]} {p.brand}"


def _view(text: str, view: str) -> str:
    """The text as one view indexes it: normalised tokens, folded for the folded view."""
    joined = " ".join(normalize(text))
    return fold(joined) if view == "folded" else joined


def _tokens(texts: list[str], view: str) -> list[list[str]]:
    """Whitespace tokens of each text in ``view`` (single letters such as sizes kept)."""
    return [_view(t, view).split() for t in texts]


def build_index(catalog: Catalog, *, views: tuple[str, ...] = VIEWS) -> SearchIndex:
    """Index every product of ``catalog`` in each view (BM25, k1=1.2, b=0.75)."""
    import bm25s

    bad = set(views) - set(VIEWS)
    if bad or not views:
        raise ValueError(f"views must be a non-empty subset of {VIEWS}, got {views}")
    docs = [document(catalog, i) for i in range(len(catalog.products))]
    retrievers = {}
    for view in views:
        retriever = bm25s.BM25(k1=1.2, b=0.75)
        retriever.index(_tokens(docs, view), show_progress=False)
        retrievers[view] = retriever
    return SearchIndex(catalog, retrievers)


def bm25_scores(index: SearchIndex, query: str, views: tuple[str, ...]) -> np.ndarray:
    """The fused lexical score of every product: each view's BM25 divided by its maximum, and
    the largest of these over ``views``."""
    total = np.zeros(len(index.catalog.products))
    for view in views:
        if view not in index.retrievers:
            raise ValueError(f"view {view!r} is not indexed; the index has {sorted(index.retrievers)}")
        tokens = _tokens([query], view)[0]
        if not tokens:  # an empty query scores nothing (filters and re-ranking may still rank)
            continue
        scores = index.retrievers[view].get_scores(tokens)
        if scores.max() > 0:
            total = np.maximum(total, scores / scores.max())
    return total


def _allowed(index: SearchIndex, i: int, f: Filters) -> bool:
    """Whether product ``i`` passes the hard filters (price, gender, size in stock, anything in stock)."""
    p = index.catalog.products[i]
    if f.price is not None and not f.price.contains(p.price_vnd):
        return False
    if f.gender is not None and p.gender not in (f.gender, "unisex"):
        return False
    variants = index.catalog.variants_of(p.product_id)
    if f.size is not None:
        variants = tuple(v for v in variants if fold(v.size) == fold(f.size))
    return bool(variants) and (not f.in_stock or any(v.stock > 0 for v in variants))


def search(index: SearchIndex, query: str, *, filters: Filters | None = None, k: int = 10,
           views: tuple[str, ...] = VIEWS, rerank: bool = True) -> list[str]:
    """Ids of the ``k`` best products for ``query``: BM25 over ``views``, filtered, re-ranked by slots."""
    if k <= 0:
        raise ValueError(f"k must be > 0, got {k}")
    f = filters or Filters()
    scores = bm25_scores(index, query, views)
    if rerank:
        for i, p in enumerate(index.catalog.products):
            scores[i] += sum(w for slot, w in BOOSTS.items() if getattr(f, slot) == getattr(p, slot))
    order = np.argsort(-scores, kind="stable")
    out = []
    for i in order:
        if scores[i] <= 0:
            break
        if _allowed(index, int(i), f):
            out.append(index.catalog.products[int(i)].product_id)
            if len(out) == k:
                break
    return out
