"""The webhook outbox in Redis: per-shard streams read in one consumer group, the retry
sets, stored events and the dead letters (router/workers/webhooks.py drives them)."""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, final

from redis.exceptions import ResponseError

from router.store import keys
from router.store.link import per_shard
from router.store.outcomes import done
from router.store.runner import Runner

GROUP = "webhooks"


@final
@dataclass(frozen=True, slots=True)
class Entry:
    """One outbox entry: the event, whom it is for and where it goes ("" : the
    merchant's default URL)."""

    stream: str
    entry_id: bytes
    event_id: bytes
    merchant_id: str
    url: str
    body: bytes  # as stored (codec-packed)


@final
@dataclass(frozen=True, slots=True)
class StoredEvent:
    """An event waiting for a retry, or dead-lettered."""

    merchant_id: str
    url: str
    body: bytes
    tries: int


@final
@dataclass(frozen=True, slots=True)
class OutboxCounts:
    """Events in the outbox streams (new or being delivered), waiting for a retry, and
    dead-lettered."""

    queued: int
    retrying: int
    dead: int


class RetryOutcome(enum.StrEnum):
    DELIVERED = "delivered"
    DEAD = "dead"  # the last try failed: park it in the dead letters
    AGAIN = "again"


@final
class OutboxStore:
    __slots__ = ("_run", "shards")

    def __init__(self, runner: Runner, shards: int) -> None:
        self._run = runner
        self.shards = shards

    async def ensure_groups(self) -> None:
        async def create(shard: int) -> None:
            stream = keys.outbox(shard)
            try:
                await self._run.write(stream, "XGROUP", "CREATE", stream, GROUP, "0",
                                      "MKSTREAM")
            except ResponseError as exc:
                if not str(exc).startswith("BUSYGROUP"):  # BUSYGROUP: it exists already
                    raise
        await asyncio.gather(*(create(shard) for shard in range(self.shards)))

    async def read_new(self, shards: Sequence[int], consumer: str, count: int) -> list[Entry]:
        """New entries of these shards' streams, without blocking: the link is shared
        with the hot path, where a blocked command would hold up every reply behind it.
        One server takes every stream in one command; a cluster, one command per shard
        (auto-pipelining still sends those to each master in one write)."""
        streams = [keys.outbox(shard) for shard in shards]
        groups = [[s] for s in streams] if self._run.link.cluster else [streams]
        replies = await per_shard((self._read(group, consumer, count) for group in groups),
                                  "outbox read")
        entries: list[Entry] = []
        for reply in replies:
            for stream, rows in reply or ():
                entries += _entries(stream.decode(), rows)
        return entries

    async def _read(self, streams: list[str], consumer: str, count: int) -> Any:
        try:
            return await self._run.write(streams[0], "XREADGROUP", "GROUP", GROUP, consumer,
                                         "COUNT", count, "STREAMS", *streams,
                                         *([">"] * len(streams)))
        except ResponseError as exc:
            if not str(exc).startswith("NOGROUP"):
                raise
            # A stream lost with its Redis data (or a flush): recreate its group.
            await self.ensure_groups()
            return None

    async def reclaim(self, consumer: str, idle_ms: int, count: int) -> list[Entry]:
        """Entries that a dead (or stuck) consumer read but never acknowledged."""
        async def claim(stream: str) -> list[Entry]:
            reply = await self._run.write(stream, "XAUTOCLAIM", stream, GROUP, consumer,
                                          idle_ms, "0-0", "COUNT", count)
            return _entries(stream, reply[1])

        claimed = await per_shard((claim(keys.outbox(s)) for s in range(self.shards)),
                                  "outbox reclaim")
        return [e for batch in claimed for e in batch or ()]

    async def settle(self, stream: str, results: Sequence[tuple[Entry, bool]],
                     first_retry_ms: int) -> None:
        """Acknowledge and delete delivered entries of one stream, moving the failed ones
        to the retry set first, in one script (outbox_settle.lua)."""
        shard = _stream_shard(stream)
        event_keys: list[str] = []
        failed: list[bytes | str] = []
        for entry, ok in results:
            if not ok:
                event_keys.append(keys.event(shard, entry.event_id.decode()))
                failed += [entry.event_id, entry.merchant_id, entry.url, entry.body]
        await self._run.script(
            self._run.scripts.outbox_settle,
            [stream, keys.webhook_retries(shard), *event_keys],
            [GROUP, first_retry_ms, len(results),
             *(part for entry, _ in results for part in (entry.entry_id, entry.event_id)),
             *failed])

    async def stored_event(self, shard: int, event_id: str) -> StoredEvent | None:
        raw = await self._run.hash(keys.event(shard, event_id))
        if not raw:
            return None
        return StoredEvent(raw[b"m"].decode(), raw[b"u"].decode(), raw[b"b"], int(raw[b"n"]))

    async def forget_retry(self, shard: int, event_id: str) -> None:
        retries = keys.webhook_retries(shard)
        await self._run.write(retries, "ZREM", retries, event_id)

    async def retried(self, shard: int, event_id: str, outcome: RetryOutcome,
                      next_due_ms: int, now_ms: int) -> None:
        await self._run.script(
            self._run.scripts.event_retried,
            [keys.webhook_retries(shard), keys.event(shard, event_id),
             keys.dead_letters(shard)],
            [event_id, outcome.value, next_due_ms, now_ms])

    async def redeliver(self, event_id: str, now_ms: int) -> bool:
        """Put a stored (retrying or dead-lettered) event back in line at once; False when
        no such event is stored."""
        shard = keys.shard_of(event_id)
        if shard is None:
            return False
        reply = await self._run.script(
            self._run.scripts.event_redeliver,
            [keys.event(shard, event_id), keys.webhook_retries(shard),
             keys.dead_letters(shard)],
            [event_id, now_ms])
        return done(reply)

    async def dead_letters(self, limit: int = 100) -> list[str]:
        """The oldest dead-lettered events across all shards."""
        rows = await asyncio.gather(*(
            self._run.read("ZRANGE", keys.dead_letters(s), 0, limit - 1, "WITHSCORES")
            for s in range(self.shards)))
        scored = [(float(flat[i + 1]), bytes(flat[i]).decode())
                  for flat in rows for i in range(0, len(flat), 2)]
        return [eid for _, eid in sorted(scored)[:limit]]

    async def counts(self) -> OutboxCounts:
        """How much webhook work waits, over all shards (the dashboard's figures)."""
        async def shard(s: int) -> tuple[int, int, int]:
            queued, retrying, dead = await asyncio.gather(
                self._run.read("XLEN", keys.outbox(s)),
                self._run.read("ZCARD", keys.webhook_retries(s)),
                self._run.read("ZCARD", keys.dead_letters(s)))
            return int(queued), int(retrying), int(dead)

        per_shard_counts = await asyncio.gather(*(shard(s) for s in range(self.shards)))
        return OutboxCounts(*(sum(c[i] for c in per_shard_counts) for i in range(3)))

    async def newest_dead_letters(self, limit: int) -> list[tuple[str, float]]:
        """(event id, dead-lettered at, unix ms) of the newest dead letters, newest first."""
        rows = await asyncio.gather(*(
            self._run.read("ZRANGE", keys.dead_letters(s), 0, limit - 1, "REV", "WITHSCORES")
            for s in range(self.shards)))
        scored = [(float(flat[i + 1]), bytes(flat[i]).decode())
                  for flat in rows for i in range(0, len(flat), 2)]
        return [(eid, at) for at, eid in sorted(scored, reverse=True)[:limit]]


def _entries(stream: str, rows: list[Any] | None) -> list[Entry]:
    """Stream entries as Redis sends them ([id, [field, value, ...]]); an entry deleted
    meanwhile comes back without fields (XAUTOCLAIM on Redis 6) and is skipped."""
    out: list[Entry] = []
    for entry_id, flat in rows or ():
        if flat:
            f = dict(zip(flat[::2], flat[1::2], strict=True))
            out.append(Entry(stream, entry_id, f[b"e"], f[b"m"].decode(),
                             f.get(b"u", b"").decode(), f[b"b"]))
    return out


def _stream_shard(stream: str) -> int:
    """The shard of an outbox stream key ("{N}ob")."""
    return int(stream[1:stream.index("}")])
