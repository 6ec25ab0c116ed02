"""The live campaigns as one gateway process holds them, so that matching a payment
costs no Redis call: definitions (immutable) are read once per campaign, and the
campaigns' spent and ended figures once a second, by a background loop. A campaign
created or ended through this process applies here at once, elsewhere within a second.

The figures also feed the dashboard (`budgets`), and let a process skip a campaign whose
budget is spent: the reservation script would refuse it anyway, this only saves the
round trip. A campaign the cache still thinks live is refused by that script the
moment it ends, so a second's staleness never gives a reward the limits forbid.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any, Final, final

from router.clock import Clock
from router.domain import Payment
from router.merchants import Merchant
from router.promotions.applied import RewardKind
from router.promotions.campaigns import Campaign, Figures
from router.store.campaigns import CampaignStore

log = logging.getLogger("payrouter.campaigns")

REFRESH_S: Final = 1.0


@final
class LiveCampaigns:
    __slots__ = ("_added", "_campaigns", "_figures", "clock", "refresh_s", "store")

    def __init__(self, store: CampaignStore, clock: Clock, refresh_s: float = REFRESH_S) -> None:
        self.store = store
        self.clock = clock
        self.refresh_s = refresh_s
        self._campaigns: tuple[Campaign, ...] = ()  # oldest first
        self._figures: dict[str, Figures] = {}
        self._added: dict[str, float] = {}  # made here: when (a refresh may not see it yet)

    def matching(self, merchant: Merchant, payment: Payment, at_ms: int
                 ) -> tuple[Campaign | None, Campaign | None]:
        """(discount, cashback): the oldest live campaign of each kind the payment meets."""
        discount = cashback = None
        for campaign in self._campaigns:
            if campaign.kind is RewardKind.COUPON:
                continue  # used through its coupons only (promotions/coupons.py)
            if campaign.kind is RewardKind.DISCOUNT and discount is not None:
                continue
            if campaign.kind is RewardKind.CASHBACK and cashback is not None:
                continue
            figures = self._figures.get(campaign.id)
            if figures is not None and (figures.ended_ms or (
                    campaign.budget and figures.spent >= campaign.budget)):
                continue
            if not campaign.matches(merchant.id, merchant.scope, payment, at_ms):
                continue
            if campaign.kind is RewardKind.DISCOUNT:
                discount = campaign
            else:
                cashback = campaign
        return discount, cashback

    @property
    def empty(self) -> bool:
        return not self._campaigns

    def add(self, campaign: Campaign) -> None:
        self._added[campaign.id] = time.monotonic()
        self._set([*self._campaigns, campaign])

    def drop(self, campaign_id: str) -> None:
        self._set([c for c in self._campaigns if c.id != campaign_id])

    def budgets(self) -> list[dict[str, Any]]:
        """The dashboard's bars: each live campaign with a budget, as last read."""
        return [{"id": c.id, "name": c.name, "currency": c.currency, "budget": c.budget,
                 "spent": self._figures.get(c.id, Figures()).spent}
                for c in self._campaigns if c.budget]

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.refresh()
            except Exception:
                log.exception("reading the live campaigns failed; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.refresh_s)

    async def refresh(self) -> None:
        started = time.monotonic()
        ids = await self.store.active_ids()
        known = {c.id: c for c in self._campaigns}
        fresh = [i for i in ids if i not in known]
        found, figures = await asyncio.gather(self.store.definitions(fresh),
                                              self.store.figures(ids))
        known.update(found)
        now = self.clock.now_ms()
        live = []
        for cid in ids:
            campaign, seen = known.get(cid), figures.get(cid)
            if campaign is None or seen is None:
                continue  # written by a create still under way, or gone
            if seen.ended_ms or (campaign.ends_ms and now >= campaign.ends_ms):
                await self.store.retire(cid)
                continue
            live.append(campaign)
        listed = set(ids)
        live += [c for c in self._campaigns
                 if c.id not in listed and self._added.get(c.id, 0.0) >= started]
        self._added = {cid: t for cid, t in self._added.items() if t >= started}
        self._figures = figures
        self._set(live)

    def _set(self, campaigns: list[Campaign]) -> None:
        self._campaigns = tuple(sorted(campaigns, key=lambda c: (c.created_ms, c.id)))
