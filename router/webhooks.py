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
from typing import Any, final

import aiohttp
from redis.exceptions import RedisError, ResponseError

from router.events import now_ms
from router.merchants import MerchantDirectory
from router.metrics import Metrics
from router.security import webhook_signature
from router.settings import WebhookSettings
from router.store import codec, keys
from router.store.link import RedisLink, per_shard
from router.store.store import Outcome, Store

log = logging.getLogger("payrouter.webhooks")

GROUP = "webhooks"
_READ_COUNT = 100

# (stream, entry id, fields) of one outbox entry
Entry = tuple[str, bytes, dict[bytes, bytes]]


@final
class WebhookDispatcher:
    __slots__ = (
        "_cursor",
        "_inflight",
        "_slots",
        "consumer",
        "link",
        "merchants",
        "metrics",
        "session",
        "settings",
        "shards",
        "store",
    )

    def __init__(self, store: Store, merchants: MerchantDirectory,
                 session: aiohttp.ClientSession, settings: WebhookSettings, shards: int,
                 metrics: Metrics, consumer: str) -> None:
        self.store = store
        self.link: RedisLink = store.link
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
        self._cursor = random.randrange(shards)  # where this process's next read starts

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():  # Redis may be down (or failing over) at start
            try:
                await self.ensure_groups()
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

    async def ensure_groups(self) -> None:
        async def create(shard: int) -> None:
            try:
                await self.link.call("XGROUP", "CREATE", keys.outbox(shard), GROUP, "0",
                                     "MKSTREAM")
            except ResponseError as exc:
                if not str(exc).startswith("BUSYGROUP"):  # BUSYGROUP: it exists already
                    raise
        await asyncio.gather(*(create(shard) for shard in range(self.shards)))

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
        """Read new outbox entries without blocking: the link is shared with the hot path,
        where a blocked command would hold up every reply behind it. One server takes
        every stream in one command; a cluster, one command per shard (auto-pipelining
        still sends those to each master in one write)."""
        streams = [keys.outbox(shard) for shard in self._next_shards()]
        groups = [[s] for s in streams] if self.link.cluster else [streams]
        replies = await per_shard((self._read(group) for group in groups), "outbox read")
        entries: list[Entry] = []
        for reply in replies:
            for stream, rows in reply or ():
                entries += _entries(stream.decode(), rows)
        return await self._deliver_entries(entries)

    async def _read(self, streams: list[str]) -> Any:
        try:
            return await self.link.call("XREADGROUP", "GROUP", GROUP, self.consumer, "COUNT",
                                        _READ_COUNT, "STREAMS", *streams,
                                        *([">"] * len(streams)))
        except ResponseError as exc:
            if not str(exc).startswith("NOGROUP"):
                raise
            # A stream lost with its Redis data (or a flush): recreate its group.
            await self.ensure_groups()
            return None

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
        idle_ms = int(self.settings.claim_idle_s * 1000)

        async def claim(stream: str) -> list[Entry]:
            reply = await self.link.call("XAUTOCLAIM", stream, GROUP, self.consumer, idle_ms,
                                         "0-0", "COUNT", _READ_COUNT)
            return _entries(stream, reply[1])

        claimed = await per_shard((claim(keys.outbox(s)) for s in range(self.shards)),
                                  "outbox reclaim")
        return await self._deliver_entries([e for batch in claimed for e in batch or ()])

    async def _deliver_entries(self, entries: list[Entry]) -> int:
        batch = [e for e in entries if (e[0], e[1]) not in self._inflight]
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

    async def _settle(self, batch: list[Entry], delivered: list[bool]) -> None:
        """Acknowledge and delete a batch of outbox entries, moving the failed ones to the
        retry set first: one script per stream, so each stays within one shard's slot."""
        by_stream: dict[str, list[tuple[bytes, dict[bytes, bytes], bool]]] = {}
        for (stream, entry_id, fields), ok in zip(batch, delivered, strict=True):
            by_stream.setdefault(stream, []).append((entry_id, fields, ok))
        await asyncio.gather(*(self._settle_stream(stream, items)
                               for stream, items in by_stream.items()))

    async def _settle_stream(self, stream: str,
                             items: list[tuple[bytes, dict[bytes, bytes], bool]]) -> None:
        shard = _stream_shard(stream)
        event_keys: list[str] = []
        failed: list[bytes | str] = []
        for _, fields, ok in items:
            if not ok:
                eid = fields[b"e"].decode()
                event_keys.append(keys.event(shard, eid))
                failed += [eid, fields[b"m"], fields.get(b"u", b""), fields[b"b"]]
        await self.link.evalsha(
            self.store.scripts.outbox_settle,
            [stream, keys.webhook_retries(shard), *event_keys],
            [GROUP, self._next_due(0), len(items),
             *(part for entry_id, fields, _ in items for part in (entry_id, fields[b"e"])),
             *failed])

    # ----------------------------------------------------------------- retries
    async def retry_due(self) -> int:
        now = now_ms()

        async def shard_due(shard: int) -> int:
            due = await self.store.claim_due(keys.webhook_retries(shard), now, 100,
                                             int(self.settings.timeout_s * 4000))
            await asyncio.gather(*(self._retry(shard, eid) for eid in due))
            return len(due)

        done = await per_shard((shard_due(s) for s in range(self.shards)), "webhook retries")
        return sum(n or 0 for n in done)

    async def _retry(self, shard: int, eid: str) -> None:
        key = keys.event(shard, eid)
        flat = await self.link.call("HGETALL", key)
        raw = dict(zip(flat[::2], flat[1::2], strict=True))
        if not raw:
            await self.link.call("ZREM", keys.webhook_retries(shard), eid)
            return
        tries = int(raw[b"n"])
        ok = await self.deliver(raw[b"m"].decode(), raw[b"u"].decode(), raw[b"b"])
        if ok:
            outcome = "delivered"
        elif tries >= len(self.settings.retry_schedule_s):
            self.metrics.webhook_failures.labels("true").inc()
            log.warning("webhook event %s dead-lettered after %d tries", eid, tries + 1)
            outcome = "dead"
        else:
            outcome = "again"
        next_due = self._next_due(tries) if outcome == "again" else 0
        await self.link.evalsha(
            self.store.scripts.event_retried,
            [keys.webhook_retries(shard), key, keys.dead_letters(shard)],
            [eid, outcome, next_due, now_ms()])

    def _next_due(self, tries: int) -> int:
        return now_ms() + int(self.settings.retry_schedule_s[tries] * 1000)

    async def redeliver(self, eid: str) -> bool:
        """Put a stored (retrying or dead-lettered) event back in line at once."""
        shard = keys.shard_of(eid)
        if shard is None:
            return False
        reply = await self.link.evalsha(
            self.store.scripts.event_redeliver,
            [keys.event(shard, eid), keys.webhook_retries(shard), keys.dead_letters(shard)],
            [eid, now_ms()])
        return Outcome.of(reply).kind == "ok"

    async def dead_letters(self, limit: int = 100) -> list[str]:
        """The oldest dead-lettered events across all shards."""
        rows = await asyncio.gather(*(
            self.link.call("ZRANGE", keys.dead_letters(s), 0, limit - 1, "WITHSCORES")
            for s in range(self.shards)))
        scored = [(float(flat[i + 1]), bytes(flat[i]).decode())
                  for flat in rows for i in range(0, len(flat), 2)]
        return [eid for _, eid in sorted(scored)[:limit]]

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


def _entries(stream: str, rows: list[Any] | None) -> list[Entry]:
    """Stream entries as Redis sends them ([id, [field, value, ...]]); an entry deleted
    meanwhile comes back without fields (XAUTOCLAIM on Redis 6) and is skipped."""
    out: list[Entry] = []
    for entry_id, flat in rows or ():
        if flat:
            out.append((stream, entry_id, dict(zip(flat[::2], flat[1::2], strict=True))))
    return out


def _stream_shard(stream: str) -> int:
    """The shard of an outbox stream key ("{N}ob")."""
    return int(stream[1:stream.index("}")])
