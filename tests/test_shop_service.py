"""fieldnotes.shop.service: one turn per transaction, replays, ordering, bad input; on both databases."""

import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fieldnotes.shop.catalog import make_catalog
from fieldnotes.shop.nlu import trained_nlu
from fieldnotes.shop.server import prepare_database
from fieldnotes.shop.service import TurnError, build_assistant, create_app, handle_turn
from fieldnotes.shop.store import temporary_postgres

CATALOG = make_catalog(240, seed=1)
PURCHASE = ["tìm balo", "chọn số 1", "thêm 1 cái", "thanh toán",
            "tên mình là Trần Văn An sđt 0912345678 địa chỉ 12 Lê Lợi Quận 1 TP HCM", "xác nhận"]


@pytest.fixture(scope="module")
def postgres_server():
    with temporary_postgres() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def assistant(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'shop.db'}"
    else:
        import psycopg

        server = request.getfixturevalue("postgres_server")
        name = "t" + uuid.uuid4().hex[:12]
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {name}")
        url = server.rsplit("/", 1)[0] + "/" + name
    prepare_database(url, CATALOG)
    a = build_assistant(url, CATALOG, trained_nlu(1500, 1).parse, timeout_rate=0.5)
    yield a
    a.store.close()


def written(a, sid):
    """Everything a session has written: its version and last message, messages, orders, stock."""
    with a.store.transaction(write=False) as tx:
        return (a.store.load_session(tx, sid, lock=False)[:2],
                tx.all("SELECT message_id, reply FROM messages WHERE session_id = ? ORDER BY message_id", (sid,)),
                tx.all("SELECT order_id, status FROM orders ORDER BY order_id"), sorted(a.store.stock().items()))


def chat(a, sid, messages, first=1):
    return [handle_turn(a, sid, i, text) for i, text in enumerate(messages, first)]


def new_session(a):
    from fieldnotes.shop.dialog import new_state

    return a.store.create_session(new_state())


def test_a_purchase_ends_paid_even_when_the_provider_times_out(assistant):
    sid = new_session(assistant)
    replies = chat(assistant, sid, PURCHASE)
    assert [r["state"] for r in replies] == ["browse", "variant", "cart", "details", "confirm", "placed"]
    assert replies[0]["products"] and all(p["title"] and p["price_vnd"] > 0 for p in replies[0]["products"])
    order = replies[-1]["order"]
    assert order["status"] == "paid" and order["name"] == "Trần Văn An" and order["phone"] == "0912345678"
    assert len(order["lines"]) == 1 and order["lines"][0][1] == 1
    assert assistant.store.audit() == dict.fromkeys(assistant.store.audit(), 0)


def test_a_replay_returns_the_first_response_exactly_even_after_the_order_moved(assistant):
    sid = new_session(assistant)
    replies = chat(assistant, sid, PURCHASE)
    assert replies[-1]["order"]["status"] == "paid"
    chat(assistant, sid, ["hủy đơn", "xác nhận"], first=len(PURCHASE) + 1)
    assert assistant.store.orders_of(sid)[0]["status"] == "cancelled"
    again = handle_turn(assistant, sid, len(PURCHASE), PURCHASE[-1])
    assert again == replies[-1] | {"replayed": True}  # the first response, not the order as it is now


def test_a_replayed_message_returns_the_stored_reply_and_does_not_move(assistant):
    sid = new_session(assistant)
    replies = chat(assistant, sid, PURCHASE)
    before = written(assistant, sid)
    again = handle_turn(assistant, sid, len(PURCHASE), PURCHASE[-1])
    assert again["replayed"] and again["reply"] == replies[-1]["reply"] and again["order"] == replies[-1]["order"]
    assert written(assistant, sid) == before
    with pytest.raises(TurnError, match="different text") as e:
        handle_turn(assistant, sid, 2, "chọn số 2")
    assert e.value.status == 409 and written(assistant, sid) == before


def test_unknown_session_and_out_of_order_messages_are_refused(assistant):
    sid = new_session(assistant)
    chat(assistant, sid, PURCHASE[:1])
    before = written(assistant, sid)
    with pytest.raises(TurnError, match="expects 2") as e:
        handle_turn(assistant, sid, 5, "chọn số 1")
    assert e.value.status == 409
    with pytest.raises(TurnError, match="does not exist") as e:
        handle_turn(assistant, "nope", 1, "chào shop")
    assert e.value.status == 404 and written(assistant, sid) == before


@pytest.mark.parametrize("text", ["", "   ", "a" * 2001, "tìm\x00balo", "\x1b[31m", "tìm \ud800 balo"])
def test_bad_text_gets_a_polite_reply_and_writes_nothing(assistant, text):
    sid = new_session(assistant)
    before = written(assistant, sid)
    reply = handle_turn(assistant, sid, 1, text)
    assert not reply["accepted"] and reply["reply"] and reply["state"] == "browse"
    assert written(assistant, sid) == before
    assert handle_turn(assistant, sid, 1, "chào shop")["accepted"]  # the id was not used up


def test_an_order_that_sold_out_meanwhile_is_not_placed(assistant):
    sid = new_session(assistant)
    replies = chat(assistant, sid, PURCHASE[:-1])
    with assistant.store.transaction() as tx:  # another shopper buys the last units
        tx.execute("UPDATE variants SET stock = 0, initial_stock = initial_stock - stock WHERE product_id = ?",
                   (replies[1]["products"][0]["id"],))
    before = written(assistant, sid)
    reply = handle_turn(assistant, sid, len(PURCHASE), PURCHASE[-1])
    assert "hết hàng" in reply["reply"] and reply["order"] is None and reply["state"] == "browse"
    after = written(assistant, sid)
    assert after[2] == before[2] and after[3] == before[3]  # no order, no stock moved


@pytest.mark.parametrize("text", ["thêm ² cái", "size ³", "mẫu số ¹", "lấy ３ cái", "chọn ①"])
def test_compatibility_digits_are_read_as_numbers_not_a_crash(assistant, text):
    sid = new_session(assistant)
    chat(assistant, sid, ["tìm balo"])
    assert handle_turn(assistant, sid, 2, text)["reply"]


def test_cancel_asks_which_order_then_refunds_through_the_service(assistant):
    sid = new_session(assistant)
    order_id = chat(assistant, sid, PURCHASE)[-1]["order"]["order_id"]
    ask = handle_turn(assistant, sid, len(PURCHASE) + 1, "hủy đơn giúp mình")
    assert order_id in ask["reply"] and "đã thanh toán" in ask["reply"] and ask["order"]["status"] == "paid"
    reply = handle_turn(assistant, sid, len(PURCHASE) + 2, "xác nhận")
    assert reply["order"]["status"] == "cancelled"
    with assistant.store.transaction(write=False) as tx:
        assert tx.all("SELECT status FROM provider_ledger") == [("refunded",)]
    assert assistant.store.audit() == dict.fromkeys(assistant.store.audit(), 0)


def test_http_layer_maps_every_bad_request_to_a_4xx(tmp_path):
    from fastapi.testclient import TestClient

    url = f"sqlite:///{tmp_path / 'shop.db'}"
    prepare_database(url, CATALOG)
    app = create_app(lambda: build_assistant(url, CATALOG, trained_nlu(1500, 1).parse))
    with TestClient(app) as client:
        sid = client.post("/sessions").json()["session_id"]
        ok = client.post("/chat", json={"session_id": sid, "message_id": 1, "text": "tìm balo"})
        assert ok.status_code == 200 and set(ok.json()) >= {"reply", "state", "products", "order"}
        assert ok.json()["products"][0].keys() >= {"id", "title", "price_vnd"}
        bad = [client.post("/chat", content=b'{"session_id": "x", "message_id": 1, "text": "\xff\xfe"}',
                           headers={"Content-Type": "application/json"}),
               client.post("/chat", json={"session_id": sid, "message_id": 0, "text": "hi"}),
               client.post("/chat", json={"session_id": sid, "message_id": "one", "text": "hi"}),
               client.post("/chat", json={"session_id": sid, "text": "hi"}),
               client.post("/chat", json={"session_id": "nope", "message_id": 1, "text": "hi"}),
               client.post("/chat", json={"session_id": sid, "message_id": 2**63, "text": "hi"}),
               client.post("/chat", json={"session_id": sid, "message_id": 3, "text": "hi"})]
        assert [r.status_code for r in bad] == [400, 422, 422, 422, 404, 422, 409]
        assert "expects 2" in bad[-1].json()["detail"]
        assert client.get("/health").json()["pid"] > 0
        assert client.get("/audit").json() == dict.fromkeys(client.get("/audit").json(), 0)
        page = client.get("/").text
        assert "<form" in page and "http" not in page.replace("http-equiv", "")  # nothing off the machine


def test_the_chapter_transcript_ends_with_a_paid_order(tmp_path):
    from fieldnotes.shop import story
    from fieldnotes.shop.dialog import new_state

    url = f"sqlite:///{tmp_path / 'shop.db'}"
    prepare_database(url, CATALOG)
    a = build_assistant(url, CATALOG, trained_nlu(1500, 1).parse)
    table = story.transcript(a, a.store.create_session(new_state()))
    assert len(table) == len(story.PURCHASE) and table["stage"].iloc[-1] == "placed"
    assert table["order"].iloc[-1].endswith("paid") and set(table["stage"]) <= set(story.STAGE_GLOSS)
    a.store.close()


MESSAGES = ["tìm balo", "tìm áo thun đen", "chọn số 1", "chọn số 7", "size M", "thêm 1 cái", "thêm 0 cái",
            "thanh toán", "tên An sđt 0912345678 địa chỉ 1 Lê Lợi", "xác nhận", "hủy đơn", "đơn hàng sao rồi",
            "", "\x00", "à không size L", "ok"]


@pytest.fixture(scope="module")
def one_shop(tmp_path_factory):
    """One SQLite shop shared by every example of the property below (each example is a new session)."""
    url = f"sqlite:///{tmp_path_factory.mktemp('h') / 'shop.db'}"
    prepare_database(url, CATALOG)
    a = build_assistant(url, CATALOG, trained_nlu(1500, 1).parse, timeout_rate=0.3)
    yield a
    a.store.close()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(MESSAGES), st.booleans()), max_size=14))
def test_no_sequence_writes_an_order_without_a_confirmed_summary_or_a_payment_without_an_order(one_shop, turns):
    from fieldnotes.shop.dialog import new_state

    a = one_shop
    sid, n, stages, sent = a.store.create_session(new_state()), 0, {0: "browse"}, {}
    for text, replay in turns:
        if replay and n:  # resend the last accepted message: the first response exactly, nothing moves
            again = handle_turn(a, sid, n, sent[n][0])
            assert again == sent[n][1] | {"replayed": True}
            continue
        r = handle_turn(a, sid, n + 1, text)
        if r["accepted"]:
            n += 1
            stages[n], sent[n] = r["state"], (text, r)
    with a.store.transaction(write=False) as tx:
        keys = [k for (k,) in tx.all("SELECT confirm_key FROM orders WHERE session_id = ?", (sid,))]
        orphans = tx.one("SELECT COUNT(*) FROM payments p WHERE NOT EXISTS "
                         "(SELECT 1 FROM orders o WHERE o.order_id = p.order_id)")[0]
    for key in keys:  # each order was placed by a message answering a shown summary
        m = int(key.rsplit(":", 1)[1])
        assert stages[m - 1] == "confirm" and stages[m] == "placed"
    assert orphans == 0 and a.store.audit() == dict.fromkeys(a.store.audit(), 0)
