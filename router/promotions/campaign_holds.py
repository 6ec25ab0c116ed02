"""Campaign rewards reserved while a payment is created (payments/create.py calls in).

A payment that meets no live campaign, or has no payer identity, costs nothing here:
matching is in memory (campaign_cache.py). One that meets campaigns reserves each
reward with one script in the campaign's slot (at most one discount and one cashback,
reserved together: one more round trip), then is written carrying them. The
reservation is keyed by the payment id, so a retried create holds the same one; a
request that does not create the payment gives its hold up (`let_go`), and the reward
is freed once no request holds it. A request that dies in between leaves a due entry
that the sweeper works after a lease (campaign_keeper.py).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Final, final

from router.domain import Payment
from router.merchants import Merchant
from router.promotions.applied import AppliedReward
from router.promotions.campaign_cache import LiveCampaigns
from router.promotions.campaigns import Campaign
from router.promotions.coupons import CouponHolds
from router.store.campaigns import (
    AlreadyHeld,
    CampaignStore,
    HoldAction,
    Reserved,
    ReserveOutcome,
)
from router.validation import digest

log = logging.getLogger("payrouter.campaigns")

# Who the payer is at creation, strongest first. A payer code's owner, which a rail
# reports only after the charge, is not used: the reward is reserved before it.
_IDENTITIES: Final = (("user", b"u:"), ("openid", b"o:"), ("buyer_id", b"b:"))


def payer_key(payer: Mapping[str, str]) -> str | None:
    """A digest of the payer's identity (limits count it; it is not the identity)."""
    for name, tag in _IDENTITIES:
        if value := payer.get(name):
            return digest(tag + value.encode())
    return None


@final
@dataclass(frozen=True, slots=True)
class Holding:
    """The payment as it will be written (with its rewards), and the campaigns this
    request holds a reservation of."""

    payment: Payment
    campaigns: tuple[str, ...]


@final
class CampaignHolds:
    __slots__ = ("coupons", "lease_ms", "live", "store")

    def __init__(self, live: LiveCampaigns, store: CampaignStore, coupons: CouponHolds,
                 lease_ms: int) -> None:
        self.live = live
        self.store = store
        self.coupons = coupons
        self.lease_ms = lease_ms  # longer than a create takes from reserving to writing

    async def hold(self, merchant: Merchant, payment: Payment,
                   coupons: Sequence[str] = ()) -> Holding | None:
        """Reserve what `payment` earns, and the coupons it names (all, or 409 with none
        kept); None when it gets nothing (no Redis call when no campaign matches and no
        coupon is named)."""
        if coupons:
            used = await self.coupons.hold(merchant, payment, coupons)
            payment = replace(payment, promotions=used)
        coupons_held = Holding(payment, tuple(r.campaign for r in payment.promotions))
        try:
            held = await self._campaigns(merchant, payment)
        except BaseException:
            if payment.promotions:
                await self.let_go(coupons_held)
            raise
        if held is None and not payment.promotions:
            return None
        return held or coupons_held

    async def _campaigns(self, merchant: Merchant, payment: Payment) -> Holding | None:
        """The campaigns' rewards on top of the coupons `payment` carries already."""
        if self.live.empty:
            return None
        if not any(name in payment.payer for name, _ in _IDENTITIES):
            return None
        discount, cashback = self.live.matching(merchant, payment, payment.created_ms)
        if discount is None and cashback is None:
            return None
        payer = payer_key(payment.payer)
        if payer is None:
            return None
        wanted = _wanted(payment.charged_amount, discount, cashback)
        due_ms = payment.created_ms + self.lease_ms
        outcomes = await asyncio.gather(*(
            self.store.reserve(c.id, payment.id, payer, amount, payment.created_ms, due_ms)
            for c, amount in wanted))
        rewards = [*payment.promotions, *(
            AppliedReward(c.id, c.kind, amount)
            for (c, _), o in zip(wanted, outcomes, strict=True) if (amount := _held(o)))]
        if not rewards:
            return None
        return Holding(replace(payment, promotions=tuple(rewards)),
                       tuple(r.campaign for r in rewards))

    async def let_go(self, holding: Holding) -> None:
        """This request did not create the payment: give its holds up. A failure here
        only delays the release to the sweeper's look after the lease."""
        pid = holding.payment.id
        done = await asyncio.gather(*(self.store.settle(cid, pid, HoldAction.DROP)
                                      for cid in holding.campaigns), return_exceptions=True)
        for outcome in done:
            if isinstance(outcome, Exception):
                log.warning("giving up the campaign hold of %s failed (%s); the sweeper "
                            "will", pid, type(outcome).__name__)


def _held(outcome: ReserveOutcome) -> int:
    """The reward the payment holds (0: none). One released already (its payment ended
    unpaid) is not the payment's to carry again."""
    match outcome:
        case Reserved(amount):
            return amount
        case AlreadyHeld(amount, status) if status != "released":
            return amount
        case _:
            return 0


def _wanted(amount: int, discount: Campaign | None,
            cashback: Campaign | None) -> list[tuple[Campaign, int]]:
    """Each matched campaign's reward before its limits: a discount leaves the rail at
    least one minor unit to charge; a cashback never exceeds what the payer can be
    charged after the largest discount the payment could get."""
    wanted = []
    most_off = 0
    if discount is not None:
        most_off = min(discount.reward.most(amount), amount - 1)
        draw = secrets.randbits(48)
        wanted.append((discount, min(discount.reward.wanted(amount, draw), amount - 1)))
    if cashback is not None:
        draw = secrets.randbits(48)
        wanted.append((cashback, min(cashback.reward.wanted(amount, draw), amount - most_off)))
    return [(c, w) for c, w in wanted if w >= 1]
