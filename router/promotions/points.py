"""Merchant points (WeChat Pay's "gifts upon payment"; API.md, "Merchant points").

A merchant earns `points_per_payer` points for each distinct payer whose qualifying
payment (by default: `native` or `quickpay`, at least 1.00 CNY) succeeded that day, the
day starting at midnight in `timezone` (Asia/Shanghai). The earn is one script in the
merchant's shard that records the payer for the day and, only when the payer is new,
raises the balance and appends to the ledger: a payment seen twice earns once.

A redemption checks and lowers the balance in one script, so concurrent redemptions can
never take it below zero.

The payer is the payment's `openid`, `buyer_id` or `user`; else its payer code. The
rails do not report whose code it was yet, so each code counts as a payer of its own.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any, Final, final
from zoneinfo import ZoneInfo

import orjson

from router.clock import Clock
from router.domain import Payment, iso
from router.errors import RouterError
from router.ledger.entries import movement
from router.merchants import Merchant
from router.payments.replies import Reply
from router.payments.settle import scene_now
from router.settings import PointsSettings
from router.store import keys
from router.store.points import Earned, InsufficientPoints, PointsStore
from router.validation import digest

_IDENTITIES: Final = ("openid", "buyer_id", "user")


def payer_of(payment: Payment) -> str | None:
    """A digest of who paid (no personal data is stored), or None when nobody is named."""
    payer = payment.rail.current.payer or payment.payer
    for field in _IDENTITIES:
        if value := payer.get(field):
            return digest(field.encode(), value.encode())
    if code := payer.get("auth_code"):
        return digest(b"auth_code", code.encode())
    return None


def insufficient_points(balance: int) -> RouterError:
    return RouterError(409, "insufficient_points",
                       f"Not enough points: the balance is {balance}.", param="points")


@final
class Points:
    __slots__ = ("clock", "idem_ttl_s", "rules", "store", "zone")

    def __init__(self, store: PointsStore, rules: PointsSettings, idem_ttl_s: int,
                 clock: Clock) -> None:
        self.store = store
        self.rules = rules
        self.idem_ttl_s = idem_ttl_s
        self.clock = clock
        self.zone = ZoneInfo(rules.timezone)

    def day_of(self, ms: int) -> str:
        return datetime.fromtimestamp(ms / 1000, tz=UTC).astimezone(self.zone).strftime("%Y%m%d")

    def qualifies(self, payment: Payment) -> bool:
        rules = self.rules
        return (scene_now(payment) in rules.scenes and payment.currency == rules.currency
                and payment.amount >= rules.min_amount)

    async def earn(self, shard: int, payment: Payment, paid_ms: int) -> bool:
        """Earn the merchant its points for a payment that succeeded at `paid_ms`, unless
        it does not qualify or its payer earned them that day already. True if earned."""
        payer = payer_of(payment)
        if payer is None or not self.qualifies(payment):
            return False
        n = self.rules.points_per_payer
        entry = orjson.dumps({"kind": "earn", "points": n, "payment_id": payment.id,
                              "at": iso(paid_ms)})
        journal = movement("points", payment.id, n * self.rules.value_per_point,
                           self.rules.currency, paid_ms, "points", payment.id)
        earned = await self.store.earn(shard, payment.merchant_id, self.day_of(paid_ms), payer,
                                       payment.id, n, entry, journal)
        return isinstance(earned, Earned)

    async def view(self, merchant: Merchant, limit: int) -> dict[str, Any]:
        seen = await self.store.view(merchant.shard, merchant.id,
                                     self.day_of(self.clock.now_ms()), limit)
        return {"object": "points", "balance": seen.balance,
                "earned_today": seen.earned_today,
                "value_per_point": self.rules.value_per_point, "currency": self.rules.currency,
                "entries": [orjson.loads(e) for e in seen.entries]}

    async def redeem(self, merchant: Merchant, points: int, reward: str,
                     idempotency_key: str | None) -> Reply:
        rid = self._redemption_id(merchant, idempotency_key)
        now = self.clock.now_ms()
        body = {"id": rid, "object": "points_redemption", "points": points, "reward": reward,
                "created_at": iso(now)}
        entry = orjson.dumps({"kind": "redemption", "points": -points, "redemption_id": rid,
                              "reward": reward, "at": iso(now)})
        # A redemption moves the points back out: its journal amount is negative.
        journal = movement("points", rid, -points * self.rules.value_per_point,
                           self.rules.currency, now, "points", rid)
        outcome = await self.store.redeem(merchant.shard, merchant.id, rid, points, entry,
                                          orjson.dumps(body), self.idem_ttl_s, journal)
        if isinstance(outcome, InsufficientPoints):
            raise insufficient_points(outcome.balance)
        first = orjson.loads(outcome.earlier) if outcome.earlier else body
        return Reply.json(201, {**first, "balance": outcome.balance})

    def _redemption_id(self, merchant: Merchant, idempotency_key: str | None) -> str:
        """Derived from the Idempotency-Key when there is one, so a retry whose first try
        redeemed (and then lost its answer) finds that redemption instead of a second."""
        if idempotency_key is None:
            return keys.new_id(self.clock, "ptr", merchant.shard)
        token = hashlib.blake2b(f"{merchant.scope}\0{idempotency_key}".encode(),
                                digest_size=10, person=b"payrouter.ptr").hexdigest()
        return f"ptr_{merchant.shard:02x}{token}"
