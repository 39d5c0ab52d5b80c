"""The conversation as a deterministic state machine: browse -> variant -> cart -> details ->
confirm -> placed, with cancel and order status.

Cancelling a cart in progress needs no confirmation; cancelling an order does: the assistant
names the order and its status and cancels (and refunds) only on a ``confirm`` that answers that
question. With a cart in progress, "hủy" (*cancel*) drops the cart, never an earlier order.

:func:`step` is pure: it takes the state (a JSON-able dict kept in the database), what the
message means (a :class:`~fieldnotes.shop.nlu.Parse`) and a read-only view of the shop, and
returns the new state, the reply and the effects the caller must apply in its transaction
(placing or cancelling an order). An order is only ever placed by a ``confirm`` message that
answers a summary the assistant showed; anything else the shopper says meanwhile (a correction:
"à không, size L" = "oh no, size L") changes the slot and shows the summary again; a search
or a pick during checkout keeps the cart and the stage and says how to start again ("hủy").
After ``MAX_REASKS`` messages in a row that it cannot act on (at the checkout form: that leave
the form exactly as it was), the assistant hands over to a person.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field

from fieldnotes.shop.catalog import Catalog
from fieldnotes.shop.nlu import MAX_QUANTITY, Parse
from fieldnotes.shop.search import Filters
from fieldnotes.shop.text import format_vnd

STAGES = ("browse", "variant", "cart", "details", "confirm", "placed", "handoff")
MAX_REASKS = 3
"""Messages in a row the assistant may fail to act on before handing over to a person."""
SHOWN = 5
"""Products listed per search reply."""
DETAILS = ("name", "phone", "address")


def new_state() -> dict:
    """The state of a conversation that has not started."""
    return {"stage": "browse", "query": {}, "results": [], "product": None, "size": None, "cart": [],
            "details": {}, "order_id": None, "reasks": 0, "cancel_asked": None}


@dataclass(frozen=True)
class Effect:
    """A change the caller applies to the database in the same transaction as the new state."""

    kind: str  # "place_order" or "cancel_order"
    lines: tuple[tuple[str, int], ...] = ()
    details: dict = field(default_factory=dict)
    order_id: str | None = None


@dataclass(frozen=True)
class Shop:
    """What the dialogue may read: the catalog, a search function, and the units left of each
    variant of a product (``stock``; by default the catalog's stock as loaded, a server reads
    its database)."""

    catalog: Catalog
    search: Callable[[str, Filters], list[str]]
    stock: Callable[[str], dict[str, int]] | None = None

    def units(self, product_id: str) -> dict[str, int]:
        """Units left of each of a product's variants, by SKU."""
        if self.stock is not None:
            return self.stock(product_id)
        return {v.sku: v.stock for v in self.catalog.variants_of(product_id)}


def _summary(state: dict, shop: Shop) -> str:
    """The order summary the shopper confirms: lines, total (VND), name, phone and address."""
    lines, total = [], 0
    for sku, qty in state["cart"]:
        product = shop.catalog.product(sku.rsplit("-", 1)[0])
        total += qty * product.price_vnd
        lines.append(f"{qty} x {product.title} ({sku}) {format_vnd(product.price_vnd)}")
    d = state["details"]
    return ("Đơn hàng: " + "; ".join(lines) + f". Tổng {format_vnd(total)}. Người nhận {d['name']}, "
            f"{d['phone']}, {d['address']}. Bạn xác nhận đặt hàng chứ?")


def _missing_details(state: dict) -> list[str]:
    return [k for k in DETAILS if not state["details"].get(k)]


def _ask_details(state: dict, shop: Shop) -> str:
    """Ask for what is missing, or show the summary (and wait for confirmation) when nothing is."""
    missing = _missing_details(state)
    if missing:
        state["stage"] = "details"
        words = {"name": "tên người nhận", "phone": "số điện thoại", "address": "địa chỉ giao hàng"}
        return "Cho mình xin " + ", ".join(words[k] for k in missing) + " nhé."
    state["stage"] = "confirm"
    return _summary(state, shop)


def _variants(shop: Shop, product_id: str):
    return shop.catalog.variants_of(product_id)


def _sizes_left(shop: Shop, product_id: str) -> str:
    """The sizes of a product that are in stock, as a reply lists them."""
    units = shop.units(product_id)
    return ", ".join(v.size for v in _variants(shop, product_id) if units.get(v.sku, 0) > 0) or "(hết hàng)"


def _choose_size(state: dict, shop: Shop, size: str) -> str | None:
    """Set the size of the chosen product; returns a reply if it cannot be chosen (none, sold out)."""
    variant = next((v for v in _variants(shop, state["product"]) if v.size.lower() == size.lower()), None)
    if variant is None:
        return f"Mẫu này không có size {size}; còn: {_sizes_left(shop, state['product'])}."
    if shop.units(state["product"]).get(variant.sku, 0) <= 0:
        return f"Size {variant.size} của mẫu này hết hàng; còn: {_sizes_left(shop, state['product'])}."
    state["size"] = variant.size
    return None


def _search(state: dict, parse: Parse, shop: Shop) -> str:
    """Run the search the query slots describe and list the first results."""
    query = state["query"]
    if parse.intent == "search" and "ptype" in parse.slots:
        query.clear()
    for slot in ("ptype", "colour", "brand", "gender", "size", "price"):
        if slot in parse.slots:
            value = parse.slots[slot]
            query[slot] = [value.min_vnd, value.max_vnd] if slot == "price" else value  # JSON-able
    text = " ".join(parse.tokens)
    ids = shop.search(text, Filters.from_slots(query))[:SHOWN]
    state.update(results=ids, stage="browse", product=None, size=None)
    if not ids:
        state["reasks"] += 1
        return "Tiếc quá, shop chưa có sản phẩm như vậy. Bạn thử tìm khác nhé?"
    listing = "; ".join(f"{n}. {shop.catalog.product(i).title} {format_vnd(shop.catalog.product(i).price_vnd)}"
                        for n, i in enumerate(ids, 1))
    return f"Shop có: {listing}. Bạn chọn mẫu số mấy?"


def step(state: dict, parse: Parse, shop: Shop) -> tuple[dict, str, list[Effect]]:
    """One turn: the new state, the reply (Vietnamese) and the effects to apply.

    A reply may hold ``{status}``, which the caller fills in with the order's status.
    """
    before = copy.deepcopy(state)
    state = copy.deepcopy(state)
    effects: list[Effect] = []
    reply = _turn(state, parse, shop, effects)
    if reply is None or _stuck_at_checkout(before, state):
        state["reasks"] += 1
        if state["reasks"] > MAX_REASKS:
            state["stage"] = "handoff"
            return state, "Mình chuyển bạn sang nhân viên tư vấn nhé, xin lỗi vì chưa hiểu ý bạn.", effects
        reply = reply or "Xin lỗi, mình chưa hiểu. Bạn muốn tìm sản phẩm, xem giỏ hàng hay thanh toán?"
    elif not reply.startswith("Tiếc quá"):
        state["reasks"] = 0
    return state, reply, effects


def _stuck_at_checkout(before: dict, after: dict) -> bool:
    """Whether a turn at the checkout form (details or confirm) left the conversation exactly as
    it was: asking again for the same missing detail, or showing the same summary, is a re-ask."""
    ignored = ("reasks", "cancel_asked")
    return (before["stage"] in ("details", "confirm") and after["stage"] == before["stage"]
            and {k: v for k, v in before.items() if k not in ignored} == {k: v for k, v in after.items() if k not in ignored})


def _turn(state: dict, parse: Parse, shop: Shop, effects: list[Effect]) -> str | None:
    """Act on one parse; None means the message could not be acted on (a re-ask)."""
    intent, slots = parse.intent, parse.slots
    asked, state["cancel_asked"] = state.get("cancel_asked"), None  # a cancel question lasts one turn
    if state["stage"] == "handoff":
        return "Nhân viên tư vấn sẽ trả lời bạn ngay."
    if intent == "greet":
        return "Chào bạn! Bạn cần tìm sản phẩm gì ạ?"
    if intent == "order_status":  # the caller fills {status} in from the database
        return f"Đơn {state['order_id']}: {{status}}." if state["order_id"] else "Bạn chưa có đơn hàng nào."
    if asked and intent == "confirm":
        effects.append(Effect("cancel_order", order_id=asked))
        state.update(cart=[], stage="browse")
        return f"Đơn {asked} đã được hủy; nếu đã thanh toán, tiền sẽ được hoàn lại."
    if intent == "cancel":
        if state["cart"]:
            state.update(cart=[], stage="browse")
            return "Đã bỏ giỏ hàng."
        if state["order_id"]:
            state["cancel_asked"] = state["order_id"]
            return (f"Bạn muốn hủy đơn {state['order_id']} ({{status}})? Nhắn \"xác nhận\" để hủy, "
                    "hoặc nhắn khác để giữ đơn.")
        return None
    if state["stage"] == "placed" and intent != "search":
        return "Đơn của bạn đã được đặt. Bạn muốn xem tình trạng đơn hay hủy đơn?"
    if intent in ("give_details", "confirm") or (state["stage"] in ("details", "confirm") and slots.keys() & set(DETAILS)
                                                 and "ptype" not in slots):  # a name the classifier took for a search
        return _details_or_confirm(state, parse, shop, effects)
    if state["stage"] in ("details", "confirm") and state["cart"] and (
            intent == "search" or intent in ("refine", "pick") and slots.keys() & {"ptype", "colour", "brand", "price", "item"}):
        return ("Bạn đang thanh toán giỏ hàng này; nhắn \"hủy\" để bỏ giỏ nếu muốn chọn lại. "  # the cart is kept as is
                + _ask_details(state, shop))
    if intent in ("search", "refine") and (slots.keys() & {"ptype", "colour", "brand", "gender", "price"}
                                           or intent == "search"):
        return _search(state, parse, shop)
    if intent in ("pick", "refine") or (intent == "add_to_cart" and ("item" in slots or "size" in slots)):
        reply = _pick(state, slots, shop)
        if intent != "add_to_cart" or reply is not None and not reply.startswith("OK"):
            return reply
    if intent == "add_to_cart":
        numbers = [int(t) for t in parse.tokens if t.isdecimal()]
        if "quantity" not in slots and "item" not in slots and numbers:  # a number the tagger did not expect
            slots = slots | {"quantity": numbers[0]}
        return _add(state, slots, shop)
    if intent == "view_cart":
        if not state["cart"]:
            return "Giỏ hàng đang trống."
        return "Giỏ hàng: " + "; ".join(f"{q} x {sku}" for sku, q in state["cart"])
    if intent == "checkout":
        if not state["cart"]:
            return "Giỏ hàng đang trống, bạn chọn sản phẩm trước nhé."
        return _ask_details(state, shop)
    return None


def _pick(state: dict, slots: dict, shop: Shop) -> str | None:
    """Choose a listed product (by its number) and/or a size."""
    if "item" in slots:
        n = slots["item"]
        if not 1 <= n <= len(state["results"]):
            return f"Không có mẫu số {n}; bạn chọn từ 1 đến {len(state['results'])} nhé." if state["results"] else None
        state.update(product=state["results"][n - 1], size=None)
    if state["product"] is None:
        return None
    if "size" in slots:
        before = state["size"]
        problem = _choose_size(state, shop, slots["size"])
        if problem:
            return problem
        if state["stage"] in ("details", "confirm") and state["cart"]:  # a correction: change the cart's line
            sku = next(v.sku for v in _variants(shop, state["product"]) if v.size == state["size"])
            qty = state["cart"][0][1]
            left = shop.units(state["product"]).get(sku, 0)
            if left < qty:  # keep the line as it was
                state["size"] = before
                return f"Size {slots['size']} chỉ còn {left} cái; đơn vẫn giữ như cũ. " + _ask_details(state, shop)
            state["cart"] = [[sku, qty]]
            return _ask_details(state, shop)
    sizes = [v.size for v in _variants(shop, state["product"])]
    if sizes != [""] and state["size"] is None:
        state["stage"] = "variant"
        return f"Bạn lấy size nào? Còn: {_sizes_left(shop, state['product'])}."
    state["stage"] = "variant"
    return "OK, bạn muốn lấy mấy cái?"


def _add(state: dict, slots: dict, shop: Shop) -> str | None:
    """Put the chosen variant in the cart (quantity 1 to MAX_QUANTITY)."""
    if state["product"] is None:
        return "Bạn chọn sản phẩm trước nhé." if state["results"] else None
    qty = slots.get("quantity", 1)
    if not 1 <= qty <= MAX_QUANTITY:
        return f"Số lượng phải từ 1 đến {MAX_QUANTITY}."
    sizes = list(_variants(shop, state["product"]))
    variant = next((v for v in sizes if v.size == (state["size"] or "")), None)
    if variant is None:
        return f"Bạn lấy size nào? Còn: {_sizes_left(shop, state['product'])}."
    left = shop.units(state["product"]).get(variant.sku, 0)
    if left < qty:
        return f"Mẫu này chỉ còn {left} cái." if left else "Mẫu này hết hàng rồi; bạn chọn mẫu khác nhé."
    cart = [line for line in state["cart"] if line[0] != variant.sku] + [[variant.sku, qty]]
    state.update(cart=cart, stage="cart")
    return f"Đã thêm {qty} x {shop.catalog.product(state['product']).title} vào giỏ. Thanh toán luôn không?"


def _details_or_confirm(state: dict, parse: Parse, shop: Shop, effects: list[Effect]) -> str | None:
    """Fill the delivery details, show the summary, and place the order on an explicit confirmation."""
    if parse.intent == "confirm" and not parse.slots.keys() & set(DETAILS):  # "name Dũng" tagged confirm gives a name
        if state["stage"] != "confirm":
            return "Chưa có đơn nào để xác nhận." if not state["cart"] else _ask_details(state, shop)
        effects.append(Effect("place_order", tuple((s, q) for s, q in state["cart"]), dict(state["details"])))
        state.update(stage="placed", cart=[])  # the caller stores the order id (or, out of stock, says so)
        return "Đặt hàng thành công!"
    digits = [t for t in parse.tokens if sum(c.isdigit() for c in t) >= 6]
    if digits and "phone" not in parse.slots and "address" not in parse.slots:
        return f"Số điện thoại {digits[0]} không hợp lệ; số di động Việt Nam có 10 chữ số, bắt đầu bằng 0."
    found = {k: parse.slots[k] for k in DETAILS if k in parse.slots}
    if not found:
        return None
    state["details"].update(found)
    if not state["cart"]:
        return "Đã lưu thông tin. Bạn chọn sản phẩm trước nhé."
    return _ask_details(state, shop)
