"""fieldnotes.shop.store and .payments on both databases: SQLite (WAL) and a real PostgreSQL server."""

import threading
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fieldnotes.shop.catalog import make_catalog
from fieldnotes.shop.payments import (
    IdempotencyConflict,
    MockProvider,
    ProviderTimeout,
    cancel_and_refund,
    cancel_in,
    pay_order,
    payment_key,
    reconcile,
)
from fieldnotes.shop.store import (
    OutOfStock,
    StaleState,
    Store,
    open_store,
    request_hash,
    temporary_postgres,
)

CATALOG = make_catalog(24, seed=0)
DETAILS = {"name": "Trần Thị Lan", "phone": "0912345678", "address": "12 Lê Lợi Quận 1 TP HCM"}


@pytest.fixture(scope="module")
def postgres_server():
    with temporary_postgres() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    if request.param == "sqlite":
        s = open_store(f"sqlite:///{tmp_path / 'shop.db'}", CATALOG)
        yield s
        s.close()
        return
    import psycopg

    server = request.getfixturevalue("postgres_server")
    name = "t" + uuid.uuid4().hex[:12]
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    s = open_store(server.rsplit("/", 1)[0] + "/" + name, CATALOG)
    yield s
    s.close()
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE {name} WITH (FORCE)")


def in_stock(store, units=1):
    return next(sku for sku, n in sorted(store.stock().items()) if n >= units)


def new_session(store):
    return store.create_session({"stage": "browse"})


def test_order_takes_stock_once_per_confirmation(store):
    sku = in_stock(store, 2)
    before = store.stock()[sku]
    sid = new_session(store)
    with store.transaction() as tx:
        first = store.place_order(tx, sid, f"{sid}:7", [(sku, 2)], DETAILS)
    with store.transaction() as tx:
        again = store.place_order(tx, sid, f"{sid}:7", [(sku, 2)], DETAILS)
    assert first == again and store.stock()[sku] == before - 2
    (order,) = store.orders_of(sid)
    price = next(p.price_vnd for p in CATALOG.products if sku.startswith(p.product_id))
    assert order["status"] == "placed" and order["total_vnd"] == 2 * price and order["lines"] == [[sku, 2, price]]
    assert store.audit() == dict.fromkeys(store.audit(), 0) | {"no_confirmed_order_left_unpaid": 1}


def test_out_of_stock_writes_nothing(store):
    sku = in_stock(store)
    other = next(s for s, n in sorted(store.stock().items()) if n >= 1 and s != sku)
    before = store.stock()
    sid = new_session(store)
    with pytest.raises(OutOfStock), store.transaction() as tx:
        store.place_order(tx, sid, f"{sid}:1", [(other, 1), (sku, before[sku] + 1)], DETAILS)
    assert store.stock() == before and store.orders_of(sid) == []


def test_concurrent_buyers_never_oversell(store):
    sku = in_stock(store, 3)
    units = store.stock()[sku]
    sid = new_session(store)
    outcomes = []

    def buy(i):
        try:
            with store.transaction() as tx:
                store.place_order(tx, sid, f"{sid}:{i}", [(sku, 1)], DETAILS)
            outcomes.append("ok")
        except OutOfStock:
            outcomes.append("out")

    threads = [threading.Thread(target=buy, args=(i,)) for i in range(units + 4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("ok") == units and outcomes.count("out") == 4
    assert store.stock()[sku] == 0 and store.audit()["units_sold_equal_units_ordered"] == 0


def test_session_versions_catch_a_stale_writer(store):
    sid = new_session(store)
    with store.transaction() as tx:
        version, last, state = store.load_session(tx, sid)
        store.save_session(tx, sid, version, 1, state | {"stage": "cart"})
        store.record_reply(tx, sid, 1, "h", {"reply": "ok"})
    with pytest.raises(StaleState), store.transaction() as tx:
        store.save_session(tx, sid, version, 2, state)
    with store.transaction() as tx:
        assert store.load_session(tx, sid) == (1, 1, {"stage": "cart"})
        assert store.recorded_reply(tx, sid, 1) == ("h", {"reply": "ok"})
        assert store.load_session(tx, "nope") is None


def placed_order(store, qty=1):
    sku = in_stock(store, qty)
    sid = new_session(store)
    with store.transaction() as tx:
        return store.place_order(tx, sid, f"{sid}:1", [(sku, qty)], DETAILS)


def ledger(store):
    with store.transaction() as tx:
        return tx.all("SELECT idempotency_key, amount_vnd, status FROM provider_ledger")


def test_a_timeout_after_charging_is_charged_once(store):
    provider = MockProvider(store, timeout_rate=1.0)
    order_id = placed_order(store)
    with store.transaction() as tx:
        total = store.order(tx, order_id)["total_vnd"]
    with pytest.raises(ProviderTimeout):  # the provider books the charge, then times out
        provider.charge(payment_key(order_id), total, order_id)
    assert pay_order(store, provider, order_id) == "paid"
    assert pay_order(store, provider, order_id) == "paid"  # a replay charges nothing more
    (row,) = ledger(store)
    with store.transaction() as tx:
        order = store.order(tx, order_id)
        payments = tx.all("SELECT status FROM payments")
    assert row[0] == payment_key(order_id) and row[2] == "captured" and order["status"] == "paid"
    assert payments == [("captured",)] and store.audit() == dict.fromkeys(store.audit(), 0)


def test_pay_retries_through_a_first_call_timeout(store):
    order_id = placed_order(store, 2)
    provider = MockProvider(store, timeout_rate=1.0)
    assert pay_order(store, provider, order_id) == "paid"
    assert len(ledger(store)) == 1


def test_the_provider_remembers_its_first_call_in_the_ledger_not_in_a_process(store):
    order_id = placed_order(store)
    with store.transaction() as tx:
        total = store.order(tx, order_id)["total_vnd"]
    with pytest.raises(ProviderTimeout):  # worker A books the charge and times out
        MockProvider(store, timeout_rate=1.0).charge(payment_key(order_id), total, order_id)
    # worker B (a new process: a new provider object) retries: the ledger says this is not the first call
    assert MockProvider(store, timeout_rate=1.0).charge(payment_key(order_id), total, order_id)["status"] == "captured"


def test_every_attempt_timing_out_leaves_the_order_placed_and_resumable(store):
    order_id = placed_order(store)
    assert pay_order(store, MockProvider(store, timeout_rate=1.0), order_id, attempts=1) == "placed"
    audit = store.audit()
    assert audit["no_charge_without_payment"] == 1 and audit["no_confirmed_order_left_unpaid"] == 1
    assert audit["every_charge_is_for_a_paid_order_or_refunded"] == 1  # charged, not yet recorded
    assert reconcile(store, MockProvider(store)) == {"paid": 1, "refunded": 0}  # the reconciler finishes it
    assert store.audit() == dict.fromkeys(store.audit(), 0) and len(ledger(store)) == 1


def test_same_key_different_body_is_refused(store):
    provider = MockProvider(store)
    first = provider.charge("k1", 50_000, "O1")
    assert provider.charge("k1", 50_000, "O1") == first
    with pytest.raises(IdempotencyConflict, match="k1"):
        provider.charge("k1", 60_000, "O1")
    with pytest.raises(ValueError, match="amount_vnd"):
        provider.charge("k2", 0, "O1")


def test_cancel_refunds_and_restocks(store):
    start = store.stock()
    provider = MockProvider(store)
    order_id = placed_order(store, 2)
    pay_order(store, provider, order_id)
    assert cancel_and_refund(store, provider, order_id) == "paid"
    assert cancel_and_refund(store, provider, order_id) == "cancelled"
    assert store.stock() == start and ledger(store)[0][2] == "refunded"
    assert store.audit() == dict.fromkeys(store.audit(), 0)
    with pytest.raises(ValueError, match="order_id"):
        pay_order(store, provider, "O-nope")


def test_audit_sees_a_broken_invariant(store):
    sku = in_stock(store)
    with store.transaction() as tx:
        tx.execute("UPDATE variants SET stock = stock - 1 WHERE sku = ?", (sku,))
    assert store.audit()["units_sold_equal_units_ordered"] == 1


def broken(store) -> dict:
    """The invariants the audit reports as violated."""
    return {k: v for k, v in store.audit().items() if v}


def test_a_kill_after_cancel_before_the_refund_is_seen_and_refunded(store):
    provider = MockProvider(store)
    order_id = placed_order(store)
    pay_order(store, provider, order_id)
    with store.transaction() as tx:  # the cancel commits; the worker dies before provider.refund
        cancel_in(tx, order_id)
    assert broken(store) == {"every_charge_is_for_a_paid_order_or_refunded": 1}
    assert reconcile(store, provider) == {"paid": 0, "refunded": 1}
    assert broken(store) == {} and ledger(store)[0][2] == "refunded"
    assert reconcile(store, provider) == {"paid": 0, "refunded": 0}  # nothing left to do


def test_a_cancel_between_the_payment_check_and_the_charge_is_refunded(store):
    order_id = placed_order(store)

    class CancelDuringCharge(MockProvider):
        def charge(self, key, amount_vnd, reference):
            with self.store.transaction() as tx:  # another worker's cancel commits meanwhile
                cancel_in(tx, order_id)
            return super().charge(key, amount_vnd, reference)

    assert pay_order(store, CancelDuringCharge(store), order_id) == "cancelled"
    assert broken(store) == {} and ledger(store)[0][2] == "refunded"


def test_a_worker_killed_in_the_commit_to_charge_window_is_paid_by_the_reconciler(store):
    order_id = placed_order(store)
    with store.transaction() as tx:  # what pay_order records before it calls the provider
        total = store.order(tx, order_id)["total_vnd"]
        tx.execute("INSERT INTO payments VALUES (?, ?, ?, 'pending', NULL, NULL)",
                   (payment_key(order_id), order_id, request_hash({"amount_vnd": total, "reference": order_id})))
    assert broken(store) == {"no_confirmed_order_left_unpaid": 1}
    assert reconcile(store, MockProvider(store)) == {"paid": 1, "refunded": 0}
    assert broken(store) == {} and ledger(store)[0][1] == total


def test_the_audit_sees_a_charge_of_the_wrong_amount(store):
    provider = MockProvider(store)
    order_id = placed_order(store)
    pay_order(store, provider, order_id)
    with store.transaction() as tx:
        tx.execute("UPDATE provider_ledger SET amount_vnd = amount_vnd + 1000")
    assert broken(store) == {"ledger_amount_equals_order_total": 1}


def test_the_audit_sees_a_charge_for_no_order_and_a_dialogue_moved_twice(store):
    MockProvider(store).charge("pay:O-nobody", 50_000, "O-nobody")
    sid = new_session(store)
    with store.transaction() as tx:
        tx.execute("UPDATE sessions SET version = version + 1 WHERE session_id = ?", (sid,))
    assert broken(store) == {"no_charge_without_payment": 1, "every_charge_is_for_a_paid_order_or_refunded": 1,
                             "ledger_amount_equals_order_total": 1, "repeated_messages_did_not_move_dialogue": 1}


def test_the_database_refuses_negative_stock_so_the_audit_need_not_count_it(store):
    sku = in_stock(store)
    with pytest.raises(Exception, match="(?i)check"), store.transaction() as tx:
        tx.execute("UPDATE variants SET stock = -1 WHERE sku = ?", (sku,))
    assert store.stock()[sku] > 0


def test_urls_are_checked():
    with pytest.raises(ValueError, match="url"):
        Store("mysql://x")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(["order", "pay", "cancel"]), st.integers(0, 5), st.integers(1, 40)),
                max_size=15))
def test_any_mix_of_orders_payments_and_cancels_keeps_every_invariant(tmp_path_factory, ops):
    store = open_store(f"sqlite:///{tmp_path_factory.mktemp('h') / 'shop.db'}", CATALOG)
    provider = MockProvider(store, timeout_rate=0.5, seed=3)
    skus = sorted(store.stock())
    orders = []
    sid = new_session(store)
    for i, (op, which, qty) in enumerate(ops):
        if op == "order":
            try:
                with store.transaction() as tx:
                    orders.append(store.place_order(tx, sid, f"{sid}:{i}", [(skus[which], qty)], DETAILS))
            except OutOfStock:
                pass
        elif orders and op == "pay":
            pay_order(store, provider, orders[which % len(orders)])
        elif orders:
            cancel_and_refund(store, provider, orders[which % len(orders)])
    reconcile(store, provider)  # settle: what timed out is completed by a later attempt
    assert all(n >= 0 for n in store.stock().values())
    assert store.audit() == dict.fromkeys(store.audit(), 0)
    store.close()
