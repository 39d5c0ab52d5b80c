"""Paying for an order through a mock provider that may time out *after* charging, exactly once.

Every payment carries an idempotency key. The provider keeps its own ledger (a table standing
for the provider's books): a repeat of a key returns the first response, and the same key with a
different body is refused. The shop records the payment as pending before it calls the provider
and as captured after, so a timeout, a retry or a worker killed in between never charges twice
and never loses a charge: the next attempt with the same key finds the first charge.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass

from fieldnotes.shop.store import PAYMENT_KEY_PREFIX, Store, Tx, request_hash


class ProviderTimeout(Exception):
    """The provider did not answer in time (it may or may not have charged)."""


class IdempotencyConflict(ValueError):
    """An idempotency key was reused with a different request body."""


@dataclass
class MockProvider:
    """A payment provider whose ledger lives in ``store``; a share of first calls time out after charging.

    ``timeout_rate`` is the fraction of keys whose first call charges and then times out; which keys
    is fixed by ``seed``, and "first" is read from the ledger (the call that booked the charge), so
    every worker process agrees and a restarted worker does not forget.
    """

    store: Store
    timeout_rate: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0.0 <= self.timeout_rate <= 1.0:
            raise ValueError(f"timeout_rate must be in [0, 1], got {self.timeout_rate}")

    def times_out(self, key: str) -> bool:
        """Whether the call that books ``key``'s charge times out (a seeded share of keys)."""
        digest = hashlib.sha256(f"{self.seed}:{key}".encode()).digest()
        return int.from_bytes(digest[:4], "big") < self.timeout_rate * 2**32

    def charge(self, key: str, amount_vnd: int, reference: str) -> dict:
        """Charge ``amount_vnd`` once per key; returns {charge_id, status, amount_vnd}.

        Raises IdempotencyConflict for a known key with another amount or reference, and
        ProviderTimeout (after the charge is booked) for the keys chosen to time out.
        """
        if amount_vnd <= 0:
            raise ValueError(f"amount_vnd must be > 0, got {amount_vnd}")
        body_hash = request_hash({"amount_vnd": amount_vnd, "reference": reference})
        fresh = {"charge_id": "ch_" + body_hash[:16], "status": "captured", "amount_vnd": amount_vnd}
        with self.store.transaction() as tx:  # insert-if-absent, then read: safe under concurrent retries
            booked = tx.execute("INSERT INTO provider_ledger VALUES (?, ?, ?, ?, 'captured', ?) ON CONFLICT DO NOTHING",
                                (key, body_hash, fresh["charge_id"], amount_vnd, json.dumps(fresh))).rowcount == 1
            first_hash, first = tx.one(
                "SELECT request_hash, response FROM provider_ledger WHERE idempotency_key = ?", (key,))
        if first_hash != body_hash:
            raise IdempotencyConflict(f"idempotency key {key!r} was first used with a different body")
        response = json.loads(first)
        if booked and self.times_out(key):
            raise ProviderTimeout(f"provider timed out on {key!r} (after charging)")
        return response

    def refund(self, key: str) -> None:
        """Refund the charge made under ``key`` (once)."""
        with self.store.transaction() as tx:
            tx.execute("UPDATE provider_ledger SET status = 'refunded' WHERE idempotency_key = ?", (key,))


def payment_key(order_id: str) -> str:
    """The idempotency key of an order's payment: one order, one key, whichever worker pays."""
    return PAYMENT_KEY_PREFIX + order_id


def pay_order(store: Store, provider: MockProvider, order_id: str, *, attempts: int = 3,
              pause_before_charge_s: float = 0.0) -> str:
    """Pay a placed order; returns the order's status afterwards ('paid', 'cancelled' if a cancel
    won the race, or 'placed' if every attempt timed out: a later call with the same key completes it).

    The payment is recorded as pending before the provider is called. ``pause_before_charge_s``
    (s) sleeps between that record and the charge, a test hook that holds a turn in the
    commit-to-charge window so a killed worker lands there. A cancel that commits while the charge
    is under way marks the payment refunded; the capture then finds no pending payment and the
    charge is refunded at the provider, so a cancelled order never keeps a charge.
    """
    key = payment_key(order_id)
    with store.transaction() as tx:
        order = store.order(tx, order_id)
        if order is None:
            raise ValueError(f"order_id {order_id!r} does not exist")
        if order["status"] != "placed":
            return order["status"]
        body = {"amount_vnd": order["total_vnd"], "reference": order_id}
        tx.execute("INSERT INTO payments VALUES (?, ?, ?, 'pending', NULL, NULL) ON CONFLICT DO NOTHING",
                   (key, order_id, request_hash(body)))
        row = tx.one("SELECT request_hash FROM payments WHERE idempotency_key = ?", (key,))
        if row[0] != request_hash(body):
            raise IdempotencyConflict(f"idempotency key {key!r} was first used with a different body")
    if pause_before_charge_s > 0:
        time.sleep(pause_before_charge_s)
    for _ in range(attempts):
        try:
            response = provider.charge(key, order["total_vnd"], order_id)
        except ProviderTimeout:
            continue
        with store.transaction() as tx:
            captured = tx.execute("UPDATE payments SET status = 'captured', charge_id = ?, response = ? "
                                  "WHERE idempotency_key = ? AND status = 'pending'",
                                  (response["charge_id"], json.dumps(response), key)).rowcount
            tx.execute("UPDATE orders SET status = 'paid' WHERE order_id = ? AND status = 'placed'", (order_id,))
            status = tx.one("SELECT status FROM orders WHERE order_id = ?", (order_id,))[0]
        if not captured and status == "cancelled":  # cancelled while the charge was under way
            provider.refund(key)
        return status
    return "placed"


def reconcile(store: Store, provider: MockProvider) -> dict[str, int]:
    """Finish what a killed worker or a lost reply left half-done; returns how many orders were
    ``paid`` (placed, i.e. confirmed and not yet paid: the payment is resumed with its key) and ``refunded``
    (cancelled, the provider still holding a captured charge). Safe to run beside live workers:
    it pays through the same idempotent path and refunds only charges of cancelled orders."""
    with store.transaction(write=False) as tx:
        pending = [r[0] for r in tx.all("SELECT order_id FROM orders WHERE status = 'placed' ORDER BY order_id")]
        unrefunded = [r[0] for r in tx.all(
            "SELECT g.idempotency_key FROM provider_ledger g JOIN orders o ON g.idempotency_key = ? || o.order_id "
            "WHERE g.status = 'captured' AND o.status = 'cancelled' ORDER BY g.idempotency_key", (PAYMENT_KEY_PREFIX,))]
    paid = sum(pay_order(store, provider, order_id) == "paid" for order_id in pending)
    for key in unrefunded:
        provider.refund(key)
    return {"paid": paid, "refunded": len(unrefunded)}


def cancel_in(tx: Tx, order_id: str) -> str:
    """Cancel an order inside an open transaction: its units go back and its payment is marked
    refunded; returns the status it had. The provider's refund follows the commit."""
    before = Store.cancel_order(tx, order_id)
    # a pending payment may have been charged by a call that timed out: refund it too
    tx.execute("UPDATE payments SET status = 'refunded' WHERE idempotency_key = ?", (payment_key(order_id),))
    return before


def cancel_and_refund(store: Store, provider: MockProvider, order_id: str) -> str:
    """Cancel an order, put its units back and refund its payment if it was paid; returns the old status."""
    with store.transaction() as tx:
        before = cancel_in(tx, order_id)
    if before != "cancelled":
        provider.refund(payment_key(order_id))
    return before
