"""fieldnotes.shop.dialog: a whole purchase, corrections, bad input, and no order without confirmation."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fieldnotes.shop.catalog import make_catalog
from fieldnotes.shop.dialog import MAX_REASKS, Shop, new_state, step
from fieldnotes.shop.nlu import Parse, trained_nlu
from fieldnotes.shop.search import build_index, search
from fieldnotes.shop.text import fold
from fieldnotes.shop.utterances import INTENTS

CATALOG = make_catalog(240, seed=1)
INDEX = build_index(CATALOG)
SHOP = Shop(CATALOG, lambda text, filters: search(INDEX, text, filters=filters))


def talk(messages, state=None):
    model = trained_nlu(1500, 1)  # trained once per test process, on the first conversation (seconds)
    state = state or new_state()
    effects = []
    for text in messages:
        state, reply, fx = step(state, model.parse(text), SHOP)
        effects.extend(fx)
    return state, reply, effects


def test_a_whole_purchase_needs_the_summary_confirmed():
    state, reply, effects = talk([
        "chào shop", "tìm áo thun nam màu đen dưới 400k", "lấy mẫu số 1", "size L", "thêm 2 cái vào giỏ",
        "thanh toán", "tên mình là Trần Văn An", "sđt 0912345678", "địa chỉ 12 Lê Lợi Quận 1 TP HCM"])
    assert state["stage"] == "confirm" and "xác nhận" in reply and effects == []
    product = CATALOG.product(state["results"][0])
    assert product.ptype == "ao_thun" and product.price_vnd <= 400_000
    (sku, qty), = state["cart"]
    assert qty == 2 and CATALOG.variants_of(product.product_id)[2].sku == sku  # L is the third size
    state, reply, effects = talk(["à không size XL"], state)  # a correction changes the line, re-shows the summary
    assert state["stage"] == "confirm" and state["cart"][0][0].endswith("-3") and effects == []
    state, reply, effects = talk(["xác nhận"], state)
    assert [e.kind for e in effects] == ["place_order"] and effects[0].lines[0][0].endswith("-3")
    assert effects[0].lines[0][1] == 2 and state["cart"] == []  # the lines went into the order
    assert effects[0].details == {"name": "Trần Văn An", "phone": "0912345678", "address": "12 lê lợi quận 1 tp hcm"}


def test_confirmation_without_a_cart_writes_nothing():
    state, reply, effects = talk(["xác nhận"])
    assert effects == [] and "Chưa có đơn" in reply


@pytest.mark.parametrize("qty", ["0", "1000000000"])
def test_absurd_quantities_are_refused(qty):
    state, reply, effects = talk(["tìm balo", "chọn số 1", f"thêm {qty} cái"])
    assert state["cart"] == [] and "Số lượng" in reply


def test_a_phone_number_that_is_not_one_is_refused():
    state, reply, _ = talk(["tìm balo", "chọn số 1", "thêm 1 cái", "thanh toán", "sđt 12345678"])
    assert "không hợp lệ" in reply and "phone" not in state["details"]


def test_a_product_number_that_was_not_listed_is_refused():
    state, reply, _ = talk(["tìm tai nghe", "chọn số 9"])
    assert "Không có mẫu số 9" in reply and state["product"] is None


def test_bounded_reasks_then_a_human():
    state, reply, _ = talk(["blah"] * (MAX_REASKS + 1))
    assert state["stage"] == "handoff" and "nhân viên" in reply


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(INTENTS), st.dictionaries(
    st.sampled_from(["item", "size", "quantity", "name", "phone", "address", "ptype"]),
    st.sampled_from([1, 2, "L", "M", "ao_thun", "0912345678", "An", 3]), max_size=3)), max_size=25))
def test_no_message_sequence_places_an_order_without_confirming_a_shown_summary(turns):
    state = new_state()
    for intent, slots in turns:
        clean = {k: v for k, v in slots.items() if isinstance(v, int) == (k in ("item", "quantity"))}
        before = state["stage"]
        state, _, effects = step(state, Parse(intent, (), (), clean), SHOP)
        for effect in effects:
            if effect.kind == "place_order":
                assert intent == "confirm" and before == "confirm"
                assert effect.lines and all(effect.details.values())


def test_a_correction_to_a_size_with_too_few_units_keeps_the_line():
    model = trained_nlu(1500, 1)
    state = new_state()
    for text in ["tìm áo thun", "lấy mẫu số 1"]:
        state, _, _ = step(state, model.parse(text), SHOP)
    first, short = CATALOG.variants_of(state["product"])[:2]
    units = {v.sku: 1 if v is short else 5 for v in CATALOG.variants_of(state["product"])}
    shop = Shop(CATALOG, SHOP.search, lambda pid: units)  # one unit left of the second size
    for text in [f"size {first.size}", "thêm 2 cái", "thanh toán", "tên Trần Văn An sđt 0912345678",
                 "địa chỉ 12 Lê Lợi Quận 1 TP HCM", f"à không size {short.size}"]:
        state, reply, _ = step(state, model.parse(text), shop)
    assert "chỉ còn 1" in reply and state["cart"] == [[first.sku, 2]] and state["stage"] == "confirm"
    assert state["size"] == first.size


def placed_state():
    state, _, effects = talk(["tìm balo", "chọn số 1", "thêm 1 cái", "thanh toán",
                              "tên Trần An sđt 0912345678 địa chỉ 12 Lê Lợi Quận 1 TP HCM", "xác nhận"])
    assert [e.kind for e in effects] == ["place_order"]
    return state | {"order_id": "O-first"}


def test_cancelling_an_order_asks_to_confirm_and_names_the_order():
    state, reply, effects = talk(["hủy đơn"], placed_state())
    assert effects == [] and "O-first" in reply and "xác nhận" in reply
    _, reply, effects = talk(["xác nhận"], state)
    assert [(e.kind, e.order_id) for e in effects] == [("cancel_order", "O-first")] and "O-first" in reply


def test_anything_but_a_confirmation_keeps_the_order():
    state, _, _ = talk(["hủy đơn"], placed_state())
    state, _, effects = talk(["đơn hàng sao rồi", "xác nhận"], state)
    assert effects == [] and state["cancel_asked"] is None


def test_cancel_with_a_new_cart_drops_the_cart_not_the_earlier_order():
    state, _, _ = talk(["tìm balo", "chọn số 2", "thêm 1 cái"], placed_state())
    assert state["cart"]
    state, reply, effects = talk(["hủy đơn", "xác nhận"], state)
    assert effects == [] and state["cart"] == [] and state["order_id"] == "O-first"


@pytest.mark.parametrize(("text", "name"), [("my name is Lan", "Lan"), ("my name is Khoa", "Khoa"),
                                            ("tên mình là Huỳnh Linh", "Huỳnh Linh")])
def test_a_name_of_any_length_fills_the_name_slot(text, name):
    assert trained_nlu(1500, 1).parse(text).slots["name"] == name


def test_a_detail_that_keeps_failing_hands_off_after_the_bounded_reasks():
    checkout = ["tìm balo", "chọn số 1", "thêm 1 cái", "thanh toán"]
    state, reply, _ = talk(checkout + ["sđt 12345678"] * MAX_REASKS)
    assert state["stage"] == "details" and "không hợp lệ" in reply
    state, reply, _ = talk(["sđt 12345678"], state)
    assert state["stage"] == "handoff" and "nhân viên" in reply


def test_a_search_during_checkout_keeps_the_cart_and_the_stage():
    state, _, _ = talk(["tìm balo", "chọn số 1", "thêm 1 cái", "thanh toán", "tên mình là Trần Văn An"])
    cart = state["cart"]
    state, reply, effects = talk(["tìm áo thun màu đen", "lấy mẫu số 2"], state)
    assert state["stage"] == "details" and state["cart"] == cart and effects == [] and "hủy" in reply


@pytest.mark.parametrize("text", ["name Dũng", "ten do ngoc dung nhe"])
def test_a_name_is_a_detail_even_when_the_intent_reads_as_confirm(text):
    state, reply, effects = talk(["tìm balo", "chọn số 1", "thêm 1 cái", "thanh toán", "sđt 0912345678",
                                  "địa chỉ 12 Lê Lợi Quận 1 TP HCM", text])
    assert state["stage"] == "confirm" and state["details"]["name"] and effects == []
    assert fold(state["details"]["name"]).endswith("dung")
