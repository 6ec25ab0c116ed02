"""Campaigns from the API: made (by a merchant for its own payments, or by the admin
across the merchants it lists), read, and ended early.

A campaign's id carries a shard drawn for it, not its merchant's: an admin campaign
spans merchants, and a busy campaign's counters then load a slot of their own.
"""

from __future__ import annotations

import asyncio
import secrets
from typing import final

from router.api.schemas_campaigns import CampaignCreate
from router.clock import Clock
from router.errors import not_found, validation_error
from router.merchants import Merchant, MerchantDirectory
from router.payments.replies import Reply
from router.promotions.campaign_cache import LiveCampaigns
from router.promotions.campaign_input import campaign_from
from router.promotions.campaigns import Campaign, Figures
from router.rails.client import RailClient
from router.routing import Router
from router.store import keys
from router.store.campaigns import CampaignStore


@final
class CampaignDesk:
    __slots__ = ("clock", "live", "merchants", "rails", "router", "shards", "store")

    def __init__(self, store: CampaignStore, live: LiveCampaigns, merchants: MerchantDirectory,
                 rails: RailClient, router: Router, shards: int, clock: Clock) -> None:
        self.store = store
        self.live = live
        self.merchants = merchants
        self.rails = rails
        self.router = router
        self.shards = shards
        self.clock = clock

    async def create(self, body: CampaignCreate, maker: Merchant | None) -> Reply:
        """`maker`: the merchant making it for its own payments; None: the admin."""
        now = self.clock.now_ms()
        campaign_id = keys.new_id(self.clock, "cmp", secrets.randbelow(self.shards))
        campaign = campaign_from(body, campaign_id, maker, self._methods(), now)
        if maker is None:
            await self._merchants_exist(campaign)
        await self.store.create(campaign)
        self.live.add(campaign)
        return Reply.json(201, campaign.to_json(Figures(), now))

    async def get(self, campaign_id: str, viewer: Merchant | None) -> Reply:
        campaign, figures = await self._visible(campaign_id, viewer)
        return Reply.json(200, campaign.to_json(figures, self.clock.now_ms()))

    async def end(self, campaign_id: str, viewer: Merchant | None) -> Reply:
        """No payment reserves from it any more; rewards held run their course."""
        await self._visible(campaign_id, viewer)
        ended = await self.store.end(campaign_id, self.clock.now_ms())
        if ended is None:
            raise not_found("campaign")
        self.live.drop(campaign_id)
        return await self.get(campaign_id, viewer)

    async def _visible(self, campaign_id: str, viewer: Merchant | None
                       ) -> tuple[Campaign, Figures]:
        """The campaign, if `viewer` may see it: the admin sees every campaign, a merchant
        those it made (in its own scope)."""
        found = await self.store.load(campaign_id)
        if found is None:
            raise not_found("campaign")
        campaign, _ = found
        if viewer is not None and (campaign.owner != viewer.id or campaign.scope != viewer.scope):
            raise not_found("campaign")
        return found

    def _methods(self) -> set[str]:
        names = self.rails.names()
        return {*names, *(self.router.kind(r) for r in names)}

    async def _merchants_exist(self, campaign: Campaign) -> None:
        listed = sorted(campaign.merchants)
        found = await asyncio.gather(*(self.merchants.get(mid) for mid in listed))
        for mid, merchant in zip(listed, found, strict=True):
            if merchant is None:
                raise validation_error("conditions.merchants", f"No merchant {mid}.")
