"""fieldnotes.shop.text: NFC, folding, teen-code and every price form the shop understands."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fieldnotes.shop.text import (
    PriceRange,
    clean,
    expand,
    find_price,
    fold,
    format_vnd,
    has_diacritics,
    nfc,
    normalize,
    parse_price,
    tokenize,
)


def test_nfc_makes_two_spellings_equal():
    decomposed = "e\u0302\u0301"  # e + circumflex + acute, typed as three code points
    assert decomposed != "ế" and nfc(decomposed) == "ế"


def test_fold_strips_every_accent_and_d_bar():
    assert fold("Áo thun nam màu ĐEN") == "ao thun nam mau den"
    assert fold("Nồi cơm điện Sunhouse") == "noi com dien sunhouse"
    assert fold("hủy") == fold("huỷ") == "huy"
    assert has_diacritics("áo") and not has_diacritics("ao thun")


@given(st.text(alphabet="aăâbcdđeêghiklmnoôơpqrstuưvxyáàảãạấầẩẫậắằẳẵặéèẻẽẹếềểễệíìỉĩịóòỏõọốồổỗộớờởỡợúùủũụứừửữựýỳỷỹỵ ",
               max_size=40))
def test_fold_is_idempotent_ascii_and_keeps_length(s):
    f = fold(s)
    assert f == fold(f) and f.isascii() and len(f) == len(s)


def test_clean_removes_control_characters():
    assert clean("áo\x00 thun\t\x1b[31m đen\n") == "áo thun [31m đen"


def test_tokens_keep_units_and_hyphens():
    assert tokenize("Giày size 40, giá <500k; 1.8L 128GB t-shirt 1tr2") == [
        "giày", "size", "40", "giá", "<", "500k", "1.8l", "128gb", "t-shirt", "1tr2"]


def test_teen_code_is_expanded():
    assert normalize("ko có sz L à, đt mk 0912345678") == [
        "không", "có", "size", "l", "à", "điện", "thoại", "mình", "0912345678"]
    assert expand(["300", "k"]) == ["300", "k"]  # 'k' after a number is thousands
    assert expand(["k", "có"]) == ["không", "có"]


@pytest.mark.parametrize(
    "phrase, lo, hi",
    [
        ("dưới 300k", 0, 300_000),
        ("duoi 300k", 0, 300_000),
        ("under 300k", 0, 300_000),
        ("không quá 450 nghìn", 0, 450_000),
        ("tối đa 1tr2", 0, 1_200_000),
        ("tầm 1tr2", 960_000, 1_440_000),
        ("tam 1tr2", 960_000, 1_440_000),
        ("khoảng 1,5tr", 1_200_000, 1_800_000),
        ("từ 200 đến 500 nghìn", 200_000, 500_000),
        ("tu 200k den 1tr", 200_000, 1_000_000),
        ("200-500k", 200_000, 500_000),
        ("from 800k to 1200k", 800_000, 1_200_000),
        ("trên 1 triệu", 1_000_000, None),
        ("300k trở lên", 300_000, None),
        ("dưới 2 củ", 0, 2_000_000),
        ("giá 350.000đ", 280_000, 420_000),
        ("1tr250", 1_000_000, 1_500_000),
        ("ao thun nam mau den duoi 300k nha", 0, 300_000),
    ],
)
def test_price_forms(phrase, lo, hi):
    assert parse_price(phrase) == PriceRange(lo, hi)


@pytest.mark.parametrize("text", ["áo size 40", "sạc 10000mAh", "iphone15", "lấy 2 cái", "quần 1.8L", ""])
def test_sizes_quantities_and_model_numbers_are_not_prices(text):
    assert find_price(text) is None


def test_price_span_offsets_point_at_the_phrase():
    text = "ao thun duoi 300k nhe"
    span = find_price(text)
    assert text[span.start:span.end] == "duoi 300k"


def test_bad_price_input_is_refused():
    with pytest.raises(ValueError, match="phrase"):
        parse_price("áo thun đen")
    with pytest.raises(ValueError, match="max_vnd"):
        PriceRange(500, 100)
    with pytest.raises(TypeError, match="text"):
        fold(None)


def test_range_contains_and_vnd_format():
    assert PriceRange(0, 300_000).contains(300_000) and not PriceRange(0, 300_000).contains(300_001)
    assert PriceRange(1_000_000, None).contains(10**9)
    assert format_vnd(1_250_000) == "1.250.000đ"


def test_compatibility_digits_become_plain_digits():
    from fieldnotes.shop.text import tokenize

    assert tokenize("thêm ² cái, size ３, mẫu ①") == tokenize("thêm 2 cái, size 3, mẫu 1")


@pytest.mark.parametrize("text", ["dưới -300k", "-300k", "khoảng (-2tr)", "dưới 99999999999999999999k",
                                  "từ 2000000000 đến 3000000000đ"])
def test_negative_and_absurd_prices_are_refused(text):
    assert find_price(text) is None


@pytest.mark.parametrize("text", ["tu 500k den 200k", "từ 500 đến 200 nghìn", "200-500k", "200 -500k"])
def test_a_reversed_range_is_swapped_and_a_dash_between_numbers_is_a_range(text):
    assert parse_price(text) == PriceRange(200_000, 500_000)
