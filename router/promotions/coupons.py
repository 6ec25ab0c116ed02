"""Coupons: issued to a user from a coupon campaign, used by that user's payment.

A coupon's id carries its campaign's id, so a payment naming it reaches the campaign's
slot with no look-up. Issuing takes nothing from the campaign; reserving a coupon takes
its amount from the campaign's budget in the same script that moves the coupon
(coupon_reserve.lua). The reservation is a campaign hold like a discount's, so the
campaign keeper redeems it when the payment succeeds, frees it when the payment fails
or closes (or its create died), and returns a refund's share to the budget
(campaign_keeper.py, campaign_settle.lua): the coupon itself stays redeemed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any, Final, final

from router.api.schemas_campaigns import CouponIssue
from router.clock import Clock
from router.domain import Payment, iso
from router.errors import RouterError, invalid_state, not_found
from router.merchants import Merchant
from router.payments.replies import Reply
from router.promotions.applied import AppliedReward, RewardKind
from router.promotions.campaigns import Campaign, CampaignStatus
from router.store import keys
from router.store.campaigns import AlreadyHeld, CampaignStore, HoldAction, Reserved
from router.store.coupons import CouponOutcome, CouponStore, Refused

log = logging.getLogger("payrouter.campaigns")

_TOKEN_CHARS: Final = 12
_CAMPAIGN_PART: Final = 2 + keys.ID_RANDOM_CHARS  # a campaign id after "cmp_"
_WHY: Final = {
    "owner": "is not this payer's",
    "reserved": "is held by another payment",
    "redeemed": "was used already",
    "expired": "has expired",
    "scheduled": "cannot be used before its campaign starts",
    "spent": "cannot be used: its campaign's budget is spent",
    "taken": "cannot be used: this payment holds another coupon of its campaign",
}


def coupon_id(campaign_id: str, clock: Clock) -> str:
    return f"cpn_{campaign_id.removeprefix('cmp_')}{clock.token(_TOKEN_CHARS)}"


def campaign_of(coupon: str) -> str | None:
    """The campaign a coupon id was issued from (None: not a coupon id)."""
    rest = coupon.removeprefix("cpn_")
    if rest == coupon or len(rest) != _CAMPAIGN_PART + _TOKEN_CHARS:
        return None
    campaign = "cmp_" + rest[:_CAMPAIGN_PART]
    return campaign if keys.shard_of(campaign) is not None else None


def unavailable(coupon: str, why: str) -> RouterError:
    return RouterError(409, "coupon_unavailable", f"The coupon {coupon} {why}.",
                       param="coupons")


@final
class CouponHolds:
    """Coupons reserved while a payment is created (campaign_holds.py calls in)."""

    __slots__ = ("_definitions", "campaigns", "coupons", "lease_ms")

    def __init__(self, campaigns: CampaignStore, coupons: CouponStore, lease_ms: int) -> None:
        self.campaigns = campaigns
        self.coupons = coupons
        self.lease_ms = lease_ms
        self._definitions: dict[str, Campaign] = {}  # immutable once made

    async def hold(self, merchant: Merchant, payment: Payment,
                   coupons: Sequence[str]) -> tuple[AppliedReward, ...]:
        """Reserve every coupon named, or none (409 coupon_unavailable, nothing kept)."""
        wanted = await self._wanted(merchant, payment, coupons)
        due_ms = payment.created_ms + self.lease_ms
        user = payment.payer["user"]
        outcomes = await asyncio.gather(*(
            self.coupons.reserve(c.id, coupon, payment.id, user, amount, payment.created_ms,
                                 due_ms) for coupon, c, amount in wanted))
        refused = next(((coupon, o) for (coupon, _, _), o in zip(wanted, outcomes, strict=True)
                        if isinstance(o, Refused)), None)
        if refused is not None:
            await self._let_go(payment.id, wanted, outcomes)
            raise unavailable(refused[0], _WHY.get(refused[1].why, "is unknown"))
        return tuple(AppliedReward(c.id, RewardKind.COUPON, held, coupon)
                     for (coupon, c, _), o in zip(wanted, outcomes, strict=True)
                     if (held := _held(o)))

    async def _wanted(self, merchant: Merchant, payment: Payment, coupons: Sequence[str]
                      ) -> list[tuple[str, Campaign, int]]:
        """(coupon, campaign, amount off) for each coupon, every rule that needs no
        Redis write checked first; the amounts leave at least one minor unit charged."""
        ids = [campaign_of(c) for c in coupons]
        for coupon, cid in zip(coupons, ids, strict=True):
            if cid is None:
                raise unavailable(coupon, "is unknown")
        found = await self.definitions([cid for cid in ids if cid is not None])
        if "user" not in payment.payer:
            raise unavailable(coupons[0], "is a user's: the payment names no payer.user")
        wanted, seen, left = [], set(), payment.amount - 1
        for coupon, cid in zip(coupons, ids, strict=True):
            campaign = found.get(cid or "")
            if campaign is None or campaign.kind is not RewardKind.COUPON:
                raise unavailable(coupon, "is unknown")
            if campaign.id in seen:
                raise unavailable(coupon, "cannot be used: one coupon per campaign a payment")
            seen.add(campaign.id)
            if payment.currency == campaign.currency and payment.amount < campaign.min_amount:
                raise unavailable(coupon, f"needs a payment of at least {campaign.min_amount}")
            if not campaign.matches(merchant.id, merchant.scope, payment, payment.created_ms):
                raise unavailable(coupon, "does not apply to this payment (its campaign's "
                                          "merchants, currency, period or conditions)")
            amount = min(campaign.reward.max, left)
            if amount < 1:
                raise unavailable(coupon, "leaves nothing to charge")
            left -= amount
            wanted.append((coupon, campaign, amount))
        return wanted

    async def definitions(self, ids: Sequence[str]) -> dict[str, Campaign]:
        missing = [cid for cid in set(ids) if cid not in self._definitions]
        if missing:
            self._definitions.update(await self.campaigns.definitions(missing))
        return {cid: self._definitions[cid] for cid in ids if cid in self._definitions}

    async def _let_go(self, payment_id: str, wanted: list[tuple[str, Campaign, int]],
                      outcomes: Sequence[CouponOutcome]) -> None:
        """Give up what this request reserved (a failure only delays it to the sweeper)."""
        done = await asyncio.gather(*(
            self.campaigns.settle(c.id, payment_id, HoldAction.DROP)
            for (_, c, _), o in zip(wanted, outcomes, strict=True) if _held(o)),
            return_exceptions=True)
        if any(isinstance(d, Exception) for d in done):
            log.warning("giving up the coupons of %s failed; the sweeper will", payment_id)


def _held(outcome: CouponOutcome) -> int:
    match outcome:
        case Reserved(amount):
            return amount
        case AlreadyHeld(amount, status) if status != "released":
            return amount
        case _:
            return 0


@final
class CouponDesk:
    """`POST /v1/campaigns/{id}/coupons` and `GET /v1/coupons/{id}`."""

    __slots__ = ("campaigns", "clock", "coupons")

    def __init__(self, campaigns: CampaignStore, coupons: CouponStore, clock: Clock) -> None:
        self.campaigns = campaigns
        self.coupons = coupons
        self.clock = clock

    async def issue(self, campaign_id: str, body: CouponIssue, maker: Merchant | None) -> Reply:
        """By the campaign's maker (a merchant, or the admin: None)."""
        found = await self.campaigns.load(campaign_id)
        if found is None:
            raise not_found("campaign")
        campaign, figures = found
        if maker is not None and (campaign.owner != maker.id or campaign.scope != maker.scope):
            raise not_found("campaign")
        if campaign.kind is not RewardKind.COUPON:
            raise invalid_state("Coupons are issued from a campaign of kind coupon.")
        if campaign.status(figures, self.clock.now_ms()) is CampaignStatus.ENDED:
            raise invalid_state("The campaign has ended.")
        coupon = coupon_id(campaign_id, self.clock)
        await self.coupons.issue(campaign_id, coupon, body.user)
        return Reply.json(201, _render(coupon, campaign, "available", body.user, None))

    async def get(self, coupon: str, viewer: Merchant | None) -> Reply:
        """Seen by the admin and by the merchants whose payments may use it."""
        campaign_id = campaign_of(coupon)
        found = await self.campaigns.load(campaign_id) if campaign_id else None
        if found is None or campaign_id is None:
            raise not_found("coupon")
        campaign, figures = found
        if viewer is not None and (viewer.id not in campaign.merchants or (
                campaign.scope is not None and campaign.scope != viewer.scope)):
            raise not_found("coupon")
        state = await self.coupons.state(campaign_id, coupon)
        if state is None:
            raise not_found("coupon")
        status = state.status
        ended = campaign.status(figures, self.clock.now_ms()) is CampaignStatus.ENDED
        if status == "available" and ended:
            status = "expired"
        return Reply.json(200, _render(coupon, campaign, status, state.user, state.payment))


def _render(coupon: str, campaign: Campaign, status: str, user: str,
            payment: str | None) -> dict[str, Any]:
    return {"id": coupon, "object": "coupon", "campaign": campaign.id, "status": status,
            "user": user, "amount": campaign.reward.max, "currency": campaign.currency,
            "min_spend": campaign.min_amount or None, "payment": payment,
            "expires_at": iso(campaign.ends_ms) if campaign.ends_ms else None}
