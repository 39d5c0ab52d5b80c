"""fieldnotes.shop.catalog: the generated Vietnamese shop and the ESCI loader."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fieldnotes.shop.catalog import (
    COLOURS,
    ESCI_GAINS,
    PRODUCT_TYPES,
    lexicon,
    load_esci,
    make_catalog,
)
from fieldnotes.shop.text import fold, has_diacritics

DATA = Path(__file__).parent / "data" / "shop"
PRODUCTS = DATA / "shopping_queries_dataset_products.parquet"
EXAMPLES = DATA / "shopping_queries_dataset_examples.parquet"


def test_deterministic_per_seed():
    a, b, c = make_catalog(60, seed=1), make_catalog(60, seed=1), make_catalog(60, seed=2)
    assert a.products == b.products and a.variants == b.variants
    assert a.products != c.products


def test_a_real_marketplace_assortment():
    cat = make_catalog(1200, seed=0)
    assert len(PRODUCT_TYPES) >= 10 and {p.ptype for p in cat.products} == set(PRODUCT_TYPES)
    assert {p.colour for p in cat.products} == set(COLOURS)
    languages = pd.Series([p.language for p in cat.products]).value_counts(normalize=True)
    assert 0.10 <= languages.get("en", 0) + languages.get("mixed", 0) <= 0.20
    vi = [p.title for p in cat.products if p.language == "vi"]
    assert all(has_diacritics(t) for t in vi)
    # prices: per-type medians within a factor 1.5 of the type's, phones far dearer than T-shirts
    for key, t in PRODUCT_TYPES.items():
        med = np.median([p.price_vnd for p in cat.products if p.ptype == key])
        assert t.median_vnd / 1.5 < med < t.median_vnd * 1.5, key
    assert all(p.price_vnd % 1000 == 0 and p.price_vnd > 0 for p in cat.products)
    dresses = [p for p in cat.products if p.ptype == "vay_dam"]
    assert {p.gender for p in dresses} == {"nữ"}


def test_variants_have_the_type_sizes_and_stock():
    cat = make_catalog(120, seed=3)
    for p in cat.products:
        sizes = tuple(v.size for v in cat.variants_of(p.product_id))
        assert sizes == PRODUCT_TYPES[p.ptype].sizes
    stock = np.array([v.stock for v in cat.variants])
    assert stock.min() == 0 and stock.max() <= 30 and 0.03 < (stock == 0).mean() < 0.2
    assert len({v.sku for v in cat.variants}) == len(cat.variants)


def test_the_colour_in_a_vietnamese_title_is_the_products():
    cat = make_catalog(200, seed=4)
    for p in cat.products:
        if p.language == "vi":
            assert fold(p.title).endswith("mau " + fold(COLOURS[p.colour][0])), p.title


def test_lexicon_resolves_every_name_folded():
    lex = lexicon()
    assert lex["ptype"]["ao phong"] == "ao_thun" and lex["ptype"]["quan bo"] == "quan_jean"
    assert lex["colour"]["xanh duong"] == "xanh_duong" and lex["colour"]["black"] == "den"
    assert lex["gender"]["nu"] == "nữ" and lex["brand"]["biti's"] == "Biti's"


def test_bad_sizes_are_refused():
    with pytest.raises(ValueError, match="n_products"):
        make_catalog(3, seed=0)
    with pytest.raises(TypeError, match="n_products"):
        make_catalog(12.5, seed=0)


def test_esci_loader_filters_and_reports():
    data = load_esci(PRODUCTS, EXAMPLES, locale="us")
    assert sorted(data.products.product_id) == ["B01", "B02", "B03", "B05"]
    assert data.dropped == {"products in another locale": 1, "judgments in another locale": 1,
                            "judgments of unknown products": 1}
    gains = dict(zip(zip(data.judgments.query_id, data.judgments.product_id, strict=True), data.judgments.gain, strict=True))
    assert gains[(10, "B01")] == ESCI_GAINS["E"] == 1.0 and gains[(10, "B02")] == 0.1
    assert gains[(11, "B05")] == 0.01 and gains[(10, "B03")] == 0.0
    small = load_esci(PRODUCTS, EXAMPLES, locale="us", small_version=True)
    assert small.dropped["judgments outside the small version"] == 1


def test_esci_loader_names_file_and_missing_column(tmp_path):
    broken = tmp_path / "examples.parquet"
    pd.read_parquet(EXAMPLES).drop(columns="esci_label").to_parquet(broken)
    with pytest.raises(ValueError, match=r"examples\.parquet.*'esci_label'"):
        load_esci(PRODUCTS, broken)
    with pytest.raises(ValueError, match="does not exist"):
        load_esci(tmp_path / "nope.parquet", EXAMPLES)
    bad = tmp_path / "bad.parquet"
    pd.read_parquet(EXAMPLES).assign(esci_label="X").to_parquet(bad)
    with pytest.raises(ValueError, match="esci_label values"):
        load_esci(PRODUCTS, bad)
