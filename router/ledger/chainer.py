"""The journal worker: moves each shard's inbox of movements into the merchants' hash
chains, in order, exactly once.

One worker at a time holds a shard's inbox (a lease); a worker that dies only delays
the chaining. Appending is a compare-and-set on the chain's head, and an entry older
than the last one chained from its shard is refused, so a movement is never chained
twice, however the workers overlap.

A batch is chained in one round trip: each merchant's head is read once, the entries'
places and hashes are worked out here, and their appends are sent together, in inbox
order (one connection answers in order). An append whose head moved meanwhile refuses
(`stale`), and so do the rest of its merchant's batch: the batch stops there and the
rest is tried again from the heads as they are. (One append and one head read per
entry, in turn, chained a few hundred entries a second at best and fell behind a single
gateway's creates, however long the inbox grew.)
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from typing import Final, final

from router.clock import Clock
from router.ledger.entries import GENESIS, chained
from router.merchants import MerchantDirectory
from router.store.journal import ChainOutcome
from router.store.link import per_shard
from router.store.store import Store

log = logging.getLogger("payrouter.journal")

_BATCH: Final = 200
_LEASE_MS: Final = 10_000
_TRIES: Final = 8


@final
class JournalChainer:
    __slots__ = ("_merchant_shards", "clock", "interval_s", "merchants", "owner", "shards",
                 "store")

    def __init__(self, store: Store, merchants: MerchantDirectory, shards: int, clock: Clock,
                 owner: str, interval_s: float = 0.2) -> None:
        self.store = store
        self.merchants = merchants
        self.shards = shards
        self.clock = clock
        self.owner = owner
        self.interval_s = interval_s
        self._merchant_shards: dict[str, int] = {}

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            chained = 0
            try:
                chained = await self.chain_once()
            except Exception:
                log.exception("chaining the journal failed; retrying")
            if chained >= _BATCH:
                await asyncio.sleep(0)  # a backlog: go on at once
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.interval_s)

    async def chain_once(self) -> int:
        """Chain what every shard's inbox holds now; returns how many were chained."""
        done = await per_shard((self._shard(s) for s in range(self.shards)), "journal")
        return sum(n or 0 for n in done)

    async def _shard(self, shard: int) -> int:
        if not await self.store.journal.lease(shard, self.owner, _LEASE_MS):
            return 0
        rows = await self.store.journal.inbox(shard, _BATCH)
        finished: list[str] = []
        for _ in range(_TRIES):
            done = await self._chain_batch(shard, rows)
            finished += done
            rows = rows[len(done):]
            if not rows or not done:
                break  # keep the order: the rest waits for the next round
        if finished:
            await self.store.journal.drop(shard, finished)
        return len(finished)

    async def _chain_batch(self, source: int, rows: list[tuple[str, str, bytes]]) -> list[str]:
        """Append `rows` in order, all sent at once; the inbox ids of the leading run
        that is now in the chains."""
        shards: dict[str, int] = {}
        for _, merchant_id, _ in rows:
            if merchant_id not in shards:
                shard = await self._shard_of(merchant_id)
                if shard is None:
                    break
                shards[merchant_id] = shard
        heads = dict(zip(shards, await asyncio.gather(*(
            self.store.journal.head(shard, mid) for mid, shard in shards.items())), strict=True))
        appends = []
        for inbox_id, merchant_id, raw in rows:
            if merchant_id not in shards:
                log.error("journal entry %s names unknown merchant %s; left in the inbox",
                          inbox_id, merchant_id)
                break
            seq, head = heads[merchant_id]
            entry = chained(raw, seq + 1, head or GENESIS)
            appends.append(self.store.journal.chain(shards[merchant_id], merchant_id,
                                                    (seq, head), source, inbox_id, entry))
            heads[merchant_id] = (seq + 1, entry["hash"])
        outcomes = await asyncio.gather(*appends)
        chained_run = itertools.takewhile(lambda o: o is not ChainOutcome.STALE, outcomes)
        return [row[0] for row, _ in zip(rows, chained_run, strict=False)]

    async def _shard_of(self, merchant_id: str) -> int | None:
        shard = self._merchant_shards.get(merchant_id)
        if shard is None:
            merchant = await self.merchants.get(merchant_id)
            if merchant is None:
                return None
            shard = self._merchant_shards[merchant_id] = merchant.shard
        return shard
