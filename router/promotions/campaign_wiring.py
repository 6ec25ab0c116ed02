"""Campaigns wired for one gateway process: the live campaigns' cache, the create
path's reservations, the keeper that settles them, and the API's desk."""

from __future__ import annotations

from dataclasses import dataclass
from typing import final

from router.clock import Clock
from router.merchants import MerchantDirectory
from router.payments import Payments
from router.promotions.campaign_cache import LiveCampaigns
from router.promotions.campaign_desk import CampaignDesk
from router.promotions.campaign_holds import CampaignHolds
from router.promotions.campaign_keeper import CampaignKeeper
from router.promotions.coupons import CouponDesk, CouponHolds
from router.rails.client import RailClient
from router.routing import Router
from router.settings import Settings
from router.social.wiring import Social
from router.store.store import Store


@final
@dataclass(frozen=True, slots=True)
class Campaigns:
    live: LiveCampaigns
    holds: CampaignHolds
    keeper: CampaignKeeper
    desk: CampaignDesk
    coupons: CouponDesk

    @classmethod
    def wire(cls, store: Store, merchants: MerchantDirectory, payments: Payments,
             social: Social, rails: RailClient, router: Router, settings: Settings,
             clock: Clock) -> Campaigns:
        # A reservation whose create died is looked at after this long: the idempotency
        # lease, which outlasts a create from its reservation to its write.
        lease_ms = int(settings.idempotency.lease_s * 1000)
        live = LiveCampaigns(store.campaigns, clock)
        coupon_holds = CouponHolds(store.campaigns, store.coupons, lease_ms)
        holds = CampaignHolds(live, store.campaigns, coupon_holds, lease_ms)
        keeper = CampaignKeeper(store, social.payouts, social.users, rails, router, settings,
                                clock, lease_ms)
        payments.creator.campaigns = holds
        payments.transitions.listeners.append(keeper.payment_settled)
        payments.refunds.campaign_shares = keeper.refund_shares
        payments.refunds.listeners.append(keeper.refund_succeeded)
        social.payouts.listeners.append(keeper.payout_ended)
        desk = CampaignDesk(store.campaigns, live, merchants, rails, router,
                            settings.redis.shards, clock)
        return cls(live=live, holds=holds, keeper=keeper, desk=desk,
                   coupons=CouponDesk(store.campaigns, store.coupons, clock))
