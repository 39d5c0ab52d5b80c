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
from dataclasses import dataclass, field

from fieldnotes.shop.store import Store, Tx, request_hash


class ProviderTimeout(Exception):
    """The provider did not answer in time (it may or may not have charged)."""


class IdempotencyConflict(ValueError):
    """An idempotency key was reused with a different request body."""


@dataclass
class MockProvider:
    """A payment provider whose ledger lives in ``store``; a share of first calls time out after charging.

    ``timeout_rate`` is the fraction of keys whose first call charges and then times out; which keys
    is fixed by ``seed``, so every worker process agrees.
    """

    store: Store
    timeout_rate: float = 0.0
    seed: int = 0
    _calls: dict[str, int] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if not 0.0 <= self.timeout_rate <= 1.0:
            raise ValueError(f"timeout_rate must be in [0, 1], got {self.timeout_rate}")

    def _times_out(self, key: str) -> bool:
        """Whether this call of ``key`` times out: only a first call, for a seeded share of keys."""
        self._calls[key] = self._calls.get(key, 0) + 1
        digest = hashlib.sha256(f"{self.seed}:{key}".encode()).digest()
        return self._calls[key] == 1 and int.from_bytes(digest[:4], "big") < self.timeout_rate * 2**32

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
            tx.execute("INSERT INTO provider_ledger VALUES (?, ?, ?, ?, 'captured', ?) ON CONFLICT DO NOTHING",
                       (key, body_hash, fresh["charge_id"], amount_vnd, json.dumps(fresh)))
            first_hash, first = tx.one(
                "SELECT request_hash, response FROM provider_ledger WHERE idempotency_key = ?", (key,))
        if first_hash != body_hash:
            raise IdempotencyConflict(f"idempotency key {key!r} was first used with a different body")
        response = json.loads(first)
        if self._times_out(key):
            raise ProviderTimeout(f"provider timed out on {key!r} (after charging)")
        return response

    def refund(self, key: str) -> None:
        """Refund the charge made under ``key`` (once)."""
        with self.store.transaction() as tx:
            tx.execute("UPDATE provider_ledger SET status = 'refunded' WHERE idempotency_key = ?", (key,))


def payment_key(order_id: str) -> str:
    """The idempotency key of an order's payment: one order, one key, whichever worker pays."""
    return f"pay:{order_id}"


def pay_order(store: Store, provider: MockProvider, order_id: str, *, attempts: int = 3) -> str:
    """Pay a placed order; returns the order's status afterwards ('paid', or 'placed' if every
    attempt timed out: a later call with the same key completes it).
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
    for _ in range(attempts):
        try:
            response = provider.charge(key, order["total_vnd"], order_id)
        except ProviderTimeout:
            continue
        with store.transaction() as tx:
            tx.execute("UPDATE payments SET status = 'captured', charge_id = ?, response = ? "
                       "WHERE idempotency_key = ? AND status = 'pending'",
                       (response["charge_id"], json.dumps(response), key))
            tx.execute("UPDATE orders SET status = 'paid' WHERE order_id = ? AND status = 'placed'", (order_id,))
        return "paid"
    return "placed"


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
