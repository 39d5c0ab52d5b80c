"""fieldnotes.shop.search: both views find unaccented queries; filters are hard; slots re-rank."""

import pytest

from fieldnotes.shop.catalog import make_catalog
from fieldnotes.shop.search import Filters, build_index, search
from fieldnotes.shop.text import PriceRange


@pytest.fixture(scope="module")
def shop():
    catalog = make_catalog(600, seed=0)
    return catalog, build_index(catalog)


def exact(catalog, ids, ptype, colour):
    return sum(catalog.product(i).ptype == ptype and catalog.product(i).colour == colour for i in ids)


def test_folded_view_rescues_queries_typed_without_accents(shop):
    catalog, index = shop
    hits_both = hits_accented = 0
    for ptype, colour, query in [("noi_com_dien", "do", "noi com dien mau do"), ("tui_xach", "den", "tui xach mau den"),
                                 ("quat_dien", "trang", "quat dien mau trang"), ("tai_nghe", "hong", "tai nghe mau hong")]:
        hits_both += exact(catalog, search(index, query, rerank=False), ptype, colour)
        hits_accented += exact(catalog, search(index, query, views=("accented",), rerank=False), ptype, colour)
    assert hits_both >= 4 * 2 and hits_both > hits_accented


def test_accented_query_finds_its_products(shop):
    catalog, index = shop
    ids = search(index, "nồi cơm điện màu đỏ", k=5)
    assert ids and all(catalog.product(i).ptype == "noi_com_dien" for i in ids)
    assert catalog.product(ids[0]).colour == "do"


def test_filters_are_hard_constraints(shop):
    catalog, index = shop
    f = Filters(ptype="ao_thun", price=PriceRange(0, 200_000), size="XL", gender="nữ")
    ids = search(index, "áo thun", filters=f, k=20)
    assert ids
    for i in ids:
        p = catalog.product(i)
        assert p.price_vnd <= 200_000 and p.gender in ("nữ", "unisex")
        assert any(v.size == "XL" and v.stock > 0 for v in catalog.variants_of(i))


def test_slots_rerank_towards_the_asked_colour(shop):
    catalog, index = shop
    ids = search(index, "giày thể thao", filters=Filters(ptype="giay_the_thao", colour="trang"), k=5)
    assert all(catalog.product(i).colour == "trang" for i in ids[:3])


def test_no_match_returns_nothing_and_bad_arguments_are_named(shop):
    _, index = shop
    assert search(index, "zzzz qqqq") == [] and search(index, "") == []
    assert search(index, "", filters=Filters(ptype="balo"), k=3)  # the type still ranks
    with pytest.raises(ValueError, match="k must"):
        search(index, "áo", k=0)
    with pytest.raises(ValueError, match="views"):
        build_index(make_catalog(12, seed=0), views=("dense",))
    with pytest.raises(ValueError, match="not indexed"):
        search(build_index(make_catalog(12, seed=0), views=("folded",)), "áo", views=("accented",))
