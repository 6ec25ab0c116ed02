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
import time
from typing import Any, cast, final

import aiohttp
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import ResponseError

from router.events import now_ms
from router.merchants import MerchantDirectory
from router.metrics import Metrics
from router.security import webhook_signature
from router.settings import WebhookSettings
from router.store import codec, keys
from router.store.store import Store, as_bytes, as_fields

log = logging.getLogger("payrouter.webhooks")

GROUP = "webhooks"


@final
class WebhookDispatcher:
    __slots__ = (
        "_inflight",
        "_slots",
        "consumer",
        "merchants",
        "metrics",
        "redis",
        "session",
        "settings",
        "shards",
        "store",
    )

    def __init__(self, store: Store, merchants: MerchantDirectory,
                 session: aiohttp.ClientSession, settings: WebhookSettings, shards: int,
                 metrics: Metrics, consumer: str) -> None:
        self.store = store
        self.redis: Redis = store.redis
        self.merchants = merchants
        self.session = session
        self.settings = settings
        self.shards = shards
        self.metrics = metrics
        self.consumer = consumer
        self._slots = asyncio.Semaphore(settings.concurrency)
        # Outbox entries this process is delivering now: XAUTOCLAIM sees them as idle
        # while a slow receiver is awaited, and must not start a second delivery.
        self._inflight: set[tuple[str, bytes]] = set()

    async def run(self, stop: asyncio.Event) -> None:
        await self.ensure_groups()
        await asyncio.gather(
            self._loop(stop, self.read_new, 0.0),
            self._loop(stop, self.retry_due, 1.0),
            self._loop(stop, self.reclaim_stale, max(self.settings.claim_idle_s / 4, 0.2)),
        )

    async def ensure_groups(self) -> None:
        for shard in range(self.shards):
            with contextlib.suppress(ResponseError):  # BUSYGROUP: it exists already
                await self.redis.xgroup_create(keys.outbox(shard), GROUP, id="0", mkstream=True)

    async def _loop(self, stop: asyncio.Event, step: object, pause_s: float) -> None:
        assert callable(step)
        while not stop.is_set():
            try:
                worked = await step()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("webhook loop step failed")
                worked = 0
            if pause_s or not worked:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), pause_s or 0.05)

    # ----------------------------------------------------------------- outbox
    async def read_new(self) -> int:
        streams: dict[str | bytes | memoryview, int | str | bytes | memoryview] = {
            keys.outbox(shard): ">" for shard in range(self.shards)}
        reply = await self.redis.xreadgroup(GROUP, self.consumer, streams, count=100, block=200)
        return await self._deliver_entries(cast(list[list[Any]], reply))

    async def reclaim_stale(self) -> int:
        """Deliver entries that a dead (or stuck) consumer read but never acknowledged."""
        idle_ms = int(self.settings.claim_idle_s * 1000)
        total = 0
        for shard in range(self.shards):
            stream = keys.outbox(shard)
            _, entries, *_ = await self.redis.xautoclaim(
                stream, GROUP, self.consumer, min_idle_time=idle_ms, start_id="0-0", count=100)
            total += await self._deliver_entries([[stream.encode(), entries]])
        return total

    async def _deliver_entries(self, reply: list[list[Any]]) -> int:
        batch: list[tuple[str, bytes, dict[bytes, bytes]]] = []
        for stream, entries in reply or []:
            name = stream.decode() if isinstance(stream, bytes) else str(stream)
            assert isinstance(entries, list)
            for entry_id, fields in entries:
                # A deleted entry comes back empty from XAUTOCLAIM on old Redis.
                if fields and (name, entry_id) not in self._inflight:
                    batch.append((name, entry_id, fields))
        if not batch:
            return 0
        marks = [(name, entry_id) for name, entry_id, _ in batch]
        self._inflight.update(marks)
        try:
            delivered = await asyncio.gather(*(
                self.deliver(f[b"m"].decode(), f.get(b"u", b"").decode(), f[b"b"])
                for _, _, f in batch))
            await self._settle(batch, delivered)
        finally:
            self._inflight.difference_update(marks)
        return len(batch)

    async def _settle(self, batch: list[tuple[str, bytes, dict[bytes, bytes]]],
                      delivered: list[bool]) -> None:
        """Acknowledge and delete a batch of outbox entries, moving the failed ones to the
        retry set first: one MULTI per stream, so each stays within one shard's slot."""
        by_stream: dict[str, list[tuple[bytes, dict[bytes, bytes], bool]]] = {}
        for (stream, entry_id, fields), ok in zip(batch, delivered, strict=True):
            by_stream.setdefault(stream, []).append((entry_id, fields, ok))
        for stream, items in by_stream.items():
            async with self.redis.pipeline(transaction=True) as pipe:
                for _, fields, ok in items:
                    if not ok:
                        self._schedule_retry(pipe, fields)
                ids = [entry_id for entry_id, _, _ in items]
                pipe.xack(stream, GROUP, *ids)
                pipe.xdel(stream, *ids)
                await pipe.execute()

    def _schedule_retry(self, pipe: Pipeline, fields: dict[bytes, bytes]) -> None:
        eid = fields[b"e"].decode()
        shard = keys.shard_of(eid) or 0
        pipe.hset(keys.event(shard, eid), mapping={
            "m": fields[b"m"], "u": fields.get(b"u", b""), "b": fields[b"b"], "n": 1, "dead": 0})
        pipe.zadd(keys.webhook_retries(shard), {eid: self._next_due(0)})

    # ----------------------------------------------------------------- retries
    async def retry_due(self) -> int:
        now = now_ms()
        total = 0
        for shard in range(self.shards):
            due = await self.store.claim_due(keys.webhook_retries(shard), now, 100,
                                             int(self.settings.timeout_s * 4000))
            await asyncio.gather(*(self._retry(shard, eid) for eid in due))
            total += len(due)
        return total

    async def _retry(self, shard: int, eid: str) -> None:
        key = keys.event(shard, eid)
        raw = as_fields(await self.redis.hgetall(key))
        if not raw:
            await self.redis.zrem(keys.webhook_retries(shard), eid)
            return
        tries = int(raw[b"n"])
        ok = await self.deliver(raw[b"m"].decode(), raw[b"u"].decode(), raw[b"b"])
        async with self.redis.pipeline(transaction=True) as pipe:
            if ok:
                pipe.zrem(keys.webhook_retries(shard), eid)
                pipe.delete(key)
            elif tries >= len(self.settings.retry_schedule_s):
                self.metrics.webhook_failures.labels("true").inc()
                log.warning("webhook event %s dead-lettered after %d tries", eid, tries + 1)
                pipe.zrem(keys.webhook_retries(shard), eid)
                pipe.hset(key, "dead", 1)
                pipe.zadd(keys.DEAD_LETTERS, {eid: now_ms()})
            else:
                pipe.hset(key, "n", tries + 1)
                pipe.zadd(keys.webhook_retries(shard), {eid: self._next_due(tries)})
            await pipe.execute()

    def _next_due(self, tries: int) -> int:
        return now_ms() + int(self.settings.retry_schedule_s[tries] * 1000)

    async def redeliver(self, eid: str) -> bool:
        """Put a stored (retrying or dead-lettered) event back in line at once."""
        shard = keys.shard_of(eid)
        if shard is None or not await self.redis.exists(keys.event(shard, eid)):
            return False
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hset(keys.event(shard, eid), mapping={"n": 0, "dead": 0})
            pipe.zadd(keys.webhook_retries(shard), {eid: now_ms()})
            pipe.zrem(keys.DEAD_LETTERS, eid)
            await pipe.execute()
        return True

    async def dead_letters(self, limit: int = 100) -> list[str]:
        ids = await self.redis.zrange(keys.DEAD_LETTERS, 0, limit - 1)
        return [as_bytes(cast(bytes, e)).decode() for e in ids]

    # ----------------------------------------------------------------- delivery
    async def deliver(self, merchant_id: str, url: str, stored: bytes) -> bool:
        """POST one event (`stored` as the outbox keeps it) to its URL; True when the
        merchant acknowledged it with a 2xx."""
        body = codec.unpack(stored)
        merchant = await self.merchants.get(merchant_id)
        target = url or (merchant.webhook_url if merchant else None)
        if merchant is None or not target:
            log.debug("event for %s has no webhook URL; dropped", merchant_id)
            return True
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
