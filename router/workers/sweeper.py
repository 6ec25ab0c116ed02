"""The sweeper: settles what the request path could not (unknown outcomes, payers still
confirming, lost notifications, unpaid orders past expiry, refunds in flight).

Every gateway process runs one. Work items live in a due-time sorted set per shard; a
process claims a batch by pushing the items' due time one lease into the future, so two
sweepers never work the same item at once and a sweeper that dies only delays its items.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import final

from router.clock import Clock
from router.commerce.authorization_wiring import Preauth
from router.commerce.invoice_wiring import Invoicing
from router.commerce.partner_wiring import Partners
from router.domain import UNSETTLED, RefundStatus
from router.ops.metrics import Metrics
from router.payments import Payments
from router.promotions.campaign_keeper import CampaignKeeper
from router.settings import SweeperSettings
from router.social.records import PayoutStatus
from router.social.wiring import Social
from router.store import keys
from router.store.link import per_shard
from router.store.store import Store

log = logging.getLogger("payrouter.sweeper")


@final
class Sweeper:
    __slots__ = ("campaigns", "clock", "invoices", "metrics", "partners", "payments", "preauth",
                 "settings", "shards", "social", "store")

    def __init__(self, store: Store, payments: Payments, settings: SweeperSettings,
                 shards: int, metrics: Metrics, clock: Clock,
                 social: Social | None = None,
                 preauth: Preauth | None = None,
                 partners: Partners | None = None,
                 invoices: Invoicing | None = None,
                 campaigns: CampaignKeeper | None = None) -> None:
        self.invoices = invoices
        self.campaigns = campaigns
        self.store = store
        self.partners = partners
        self.payments = payments
        self.social = social
        self.preauth = preauth
        self.clock = clock
        self.settings = settings
        self.shards = shards
        self.metrics = metrics

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.sweep_once()
            except Exception:
                log.exception("sweep failed; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.settings.interval_s)

    async def sweep_once(self) -> int:
        """Work every item due now, across all shards; returns how many were examined."""
        now = self.clock.now_ms()
        lease_ms = int(self.settings.lease_s * 1000)
        claimed = await per_shard((
            self.store.due.claim(keys.due(shard), now, self.settings.batch, lease_ms)
            for shard in range(self.shards)
        ), "sweeper claim")
        work = [self._one(shard, member)
                for shard, members in enumerate(claimed) for member in members or ()]
        await asyncio.gather(*work)
        return len(work)

    async def _one(self, shard: int, member: str) -> None:
        kind, _, object_id = member.partition(":")
        try:
            if kind == "p":
                await self._payment(shard, member, object_id)
            elif kind == "r":
                await self._refund(shard, member, object_id)
            elif kind == "po" and self.social is not None:
                await self._payout(shard, member, object_id, self.social)
            elif kind == "rp" and self.social is not None:
                self.metrics.sweeps.labels("red_packet").inc()
                await self.social.worker.work(object_id)
            elif kind == "au" and self.preauth is not None:
                self.metrics.sweeps.labels("authorization").inc()
                await self.preauth.worker.work(object_id)
            elif kind == "sp" and self.partners is not None:
                self.metrics.sweeps.labels("split").inc()
                await self.partners.splits.check(object_id)
            elif kind == "iv" and self.invoices is not None:
                self.metrics.sweeps.labels("invoice").inc()
                await self.invoices.worker.work(object_id)
            elif kind == "rv" and self.campaigns is not None:
                self.metrics.sweeps.labels("campaign_reward").inc()
                await self.campaigns.work(shard, member, object_id)
            else:
                await self.store.due.reschedule(shard, member, None)
        except Exception:
            # Left in the set with its lease: it comes due again by itself.
            log.exception("sweeping %s failed", member)

    async def _payment(self, shard: int, member: str, pid: str) -> None:
        self.metrics.sweeps.labels("payment").inc()
        payment = await self.store.payments.load(pid)
        if payment is None or payment.status not in UNSETTLED:
            await self.store.due.reschedule(shard, member, None)
            return
        await self.payments.settler.check(payment)

    async def _payout(self, shard: int, member: str, pid: str, social: Social) -> None:
        self.metrics.sweeps.labels("payout").inc()
        payout = await self.store.payouts.load(pid)
        if payout is None or payout.status is not PayoutStatus.PROCESSING:
            await self.store.due.reschedule(shard, member, None)
            return
        await social.payouts.check(payout)

    async def _refund(self, shard: int, member: str, rid: str) -> None:
        self.metrics.sweeps.labels("refund").inc()
        refund = await self.store.refunds.load(rid)
        payment = await self.store.payments.load(refund.payment_id) if refund else None
        if refund is None or payment is None or refund.status is not RefundStatus.PROCESSING:
            await self.store.due.reschedule(shard, member, None)
            return
        await self.payments.refunds.check(refund, payment)
