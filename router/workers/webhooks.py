"""Webhooks to merchants: at-least-once delivery of the outbox, signed, retried, parked.

Events enter the per-shard outbox stream in the same script as the state change they
report. Each gateway process reads the streams in one consumer group; an entry read by
a process that died is taken over with XAUTOCLAIM. A failed delivery moves the event to
a per-shard retry set (due time by the retry schedule); after the last try it is parked
in the dead-letter set, from which an admin can redeliver it. The event id and body are
the same on every delivery; only the signature's timestamp changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from typing import final

import aiohttp
from redis.exceptions import RedisError

from router.clock import Clock
from router.merchants import MerchantDirectory
from router.ops.metrics import Metrics
from router.security import webhook_signature
from router.settings import WebhookSettings
from router.store import codec, keys
from router.store.due import DueStore
from router.store.link import per_shard
from router.store.outbox import Entry, OutboxStore, RetryOutcome

log = logging.getLogger("payrouter.webhooks")

_READ_COUNT = 100


@final
class WebhookDispatcher:
    __slots__ = (
        "_cursor",
        "_inflight",
        "_slots",
        "clock",
        "consumer",
        "due",
        "merchants",
        "metrics",
        "outbox",
        "session",
        "settings",
        "shards",
    )

    def __init__(self, outbox: OutboxStore, due: DueStore, merchants: MerchantDirectory,
                 session: aiohttp.ClientSession, settings: WebhookSettings,
                 metrics: Metrics, consumer: str, clock: Clock) -> None:
        self.outbox = outbox
        self.due = due
        self.clock = clock
        self.merchants = merchants
        self.session = session
        self.settings = settings
        self.shards = outbox.shards
        self.metrics = metrics
        self.consumer = consumer
        self._slots = asyncio.Semaphore(settings.concurrency)
        # Outbox entries this process is delivering now: XAUTOCLAIM sees them as idle
        # while a slow receiver is awaited, and must not start a second delivery.
        self._inflight: set[tuple[str, bytes]] = set()
        self._cursor = random.randrange(self.shards)  # where this process's next read starts

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():  # Redis may be down (or failing over) at start
            try:
                await self.outbox.ensure_groups()
                break
            except RedisError as exc:
                log.warning("cannot create the outbox consumer groups yet: %s", exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 1.0)
        await asyncio.gather(
            self._loop(stop, self.read_new, self.settings.poll_interval_s, idle_only=True),
            self._loop(stop, self.retry_due, 1.0),
            self._loop(stop, self.reclaim_stale, max(self.settings.claim_idle_s / 4, 0.2)),
        )

    async def _loop(self, stop: asyncio.Event, step: object, pause_s: float, *,
                    idle_only: bool = False) -> None:
        assert callable(step)
        while not stop.is_set():
            try:
                worked = await step()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("webhook loop step failed")
                worked = 0
            if not (idle_only and worked):
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), pause_s or 0.05)

    # ----------------------------------------------------------------- outbox
    async def read_new(self) -> int:
        entries = await self.outbox.read_new(self._next_shards(), self.consumer, _READ_COUNT)
        return await self._deliver_entries(entries)

    def _next_shards(self) -> list[int]:
        """The shards this read covers: `shards_per_read` of them, moving on each time,
        so with hundreds of shards and processes the idle polling stays bounded while
        every process still walks every shard (a process's work is never left unread)."""
        count = min(self.settings.shards_per_read, self.shards)
        start = self._cursor
        self._cursor = (start + count) % self.shards
        return [(start + i) % self.shards for i in range(count)]

    async def reclaim_stale(self) -> int:
        """Deliver entries that a dead (or stuck) consumer read but never acknowledged."""
        entries = await self.outbox.reclaim(self.consumer, int(self.settings.claim_idle_s * 1000),
                                            _READ_COUNT)
        return await self._deliver_entries(entries)

    async def _deliver_entries(self, entries: list[Entry]) -> int:
        batch = [e for e in entries if (e.stream, e.entry_id) not in self._inflight]
        if not batch:
            return 0
        marks = [(e.stream, e.entry_id) for e in batch]
        self._inflight.update(marks)
        try:
            delivered = await asyncio.gather(*(self.deliver(e.merchant_id, e.url, e.body)
                                               for e in batch))
            # One settle per stream, so each stays within one shard's slot.
            by_stream: dict[str, list[tuple[Entry, bool]]] = {}
            for entry, ok in zip(batch, delivered, strict=True):
                by_stream.setdefault(entry.stream, []).append((entry, ok))
            await asyncio.gather(*(self.outbox.settle(stream, results, self._next_due(0))
                                   for stream, results in by_stream.items()))
        finally:
            self._inflight.difference_update(marks)
        return len(batch)

    # ----------------------------------------------------------------- retries
    async def retry_due(self) -> int:
        now = self.clock.now_ms()

        async def shard_due(shard: int) -> int:
            due = await self.due.claim(keys.webhook_retries(shard), now, 100,
                                       int(self.settings.timeout_s * 4000))
            await asyncio.gather(*(self._retry(shard, eid) for eid in due))
            return len(due)

        done = await per_shard((shard_due(s) for s in range(self.shards)), "webhook retries")
        return sum(n or 0 for n in done)

    async def _retry(self, shard: int, eid: str) -> None:
        stored = await self.outbox.stored_event(shard, eid)
        if stored is None:
            await self.outbox.forget_retry(shard, eid)
            return
        if await self.deliver(stored.merchant_id, stored.url, stored.body):
            outcome = RetryOutcome.DELIVERED
        elif stored.tries >= len(self.settings.retry_schedule_s):
            self.metrics.webhook_failures.labels("true").inc()
            log.warning("webhook event %s dead-lettered after %d tries", eid, stored.tries + 1)
            outcome = RetryOutcome.DEAD
        else:
            outcome = RetryOutcome.AGAIN
        next_due = self._next_due(stored.tries) if outcome is RetryOutcome.AGAIN else 0
        await self.outbox.retried(shard, eid, outcome, next_due, self.clock.now_ms())

    def _next_due(self, tries: int) -> int:
        return self.clock.now_ms() + int(self.settings.retry_schedule_s[tries] * 1000)

    async def redeliver(self, eid: str) -> bool:
        """Put a stored (retrying or dead-lettered) event back in line at once."""
        return await self.outbox.redeliver(eid, self.clock.now_ms())

    async def dead_letters(self, limit: int = 100) -> list[str]:
        return await self.outbox.dead_letters(limit)

    # ----------------------------------------------------------------- delivery
    async def deliver(self, merchant_id: str, url: str, stored: bytes) -> bool:
        """POST one event (`stored` as the outbox keeps it) to its URL; True when the
        merchant acknowledged it with a 2xx."""
        merchant = await self.merchants.get(merchant_id)
        target = url or (merchant.webhook_url if merchant else None)
        if merchant is None or not target:
            log.debug("event for %s has no webhook URL; dropped", merchant_id)
            return True
        body = codec.unpack(stored)  # only for an event that goes somewhere
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "payrouter-webhooks",
            "Payrouter-Signature": webhook_signature(
                merchant.webhook_secret.reveal(), int(time.time()), body),
        }
        timeout = aiohttp.ClientTimeout(total=self.settings.timeout_s)
        try:
            # A redirect is not a delivery: following it would resend the signed event
            # elsewhere, or turn it into a bodiless GET that "succeeds".
            async with self._slots, self.session.post(
                target, data=body, headers=headers, timeout=timeout, allow_redirects=False
            ) as resp:
                await resp.read()
                ok = 200 <= resp.status < 300
        except (aiohttp.ClientError, TimeoutError):
            ok = False
        if ok:
            self.metrics.webhook_deliveries.inc()
        else:
            self.metrics.webhook_failures.labels("false").inc()
        return ok

