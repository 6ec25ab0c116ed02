"""The journal worker: moves each shard's inbox of movements into the merchants' hash
chains, in order, exactly once.

One worker at a time holds a shard's inbox (a lease); a worker that dies only delays
the chaining. Appending is a compare-and-set on the chain's head, and an entry older
than the last one chained from its shard is refused, so a movement is never chained
twice, however the workers overlap.

A batch is chained in one round trip: each merchant's head is read once, its entries'
places and hashes are worked out here, and each merchant's run of entries is appended by
one script, all merchants' at once. A run whose head moved meanwhile refuses (`stale`)
and is tried again from the head as it is; another merchant's run does not wait for it.
(One head read and one script per entry, in turn, chained a few hundred entries a second
at best and fell behind a single gateway's creates, however long the inbox grew.)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Final, final

from router.clock import Clock
from router.ledger.entries import GENESIS, chained
from router.merchants import MerchantDirectory
from router.store.journal import ChainOutcome
from router.store.link import per_shard
from router.store.store import Store

log = logging.getLogger("payrouter.journal")

_BATCH: Final = 1000  # inbox entries per shard per pass: one script per merchant's run
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
            chained_now = set(done)
            rows = [row for row in rows if row[0] not in chained_now]
            if not rows or not done:
                break  # what is left waits for the next round, in order
        if finished:
            await self.store.journal.drop(shard, finished)
        return len(finished)

    async def _chain_batch(self, source: int, rows: list[tuple[str, str, bytes]]) -> list[str]:
        """Append `rows`, each merchant's in inbox order; the inbox ids now in the chains."""
        runs: dict[str, list[tuple[str, bytes]]] = {}
        for inbox_id, merchant_id, raw in rows:
            runs.setdefault(merchant_id, []).append((inbox_id, raw))
        chained_ids = await asyncio.gather(*(self._chain_run(source, merchant_id, run)
                                             for merchant_id, run in runs.items()))
        return [inbox_id for ids in chained_ids for inbox_id in ids]

    async def _chain_run(self, source: int, merchant_id: str,
                         run: list[tuple[str, bytes]]) -> list[str]:
        shard = await self._shard_of(merchant_id)
        if shard is None:
            log.error("journal entries %s... name unknown merchant %s; left in the inbox",
                      run[0][0], merchant_id)
            return []
        seq, head = expected = await self.store.journal.head(shard, merchant_id)
        entries = []
        for inbox_id, raw in run:
            entry = chained(raw, seq + 1, head or GENESIS)
            entries.append((inbox_id, entry))
            seq, head = seq + 1, entry["hash"]
        outcome, count = await self.store.journal.chain(shard, merchant_id, expected, source,
                                                        entries)
        return [] if outcome is ChainOutcome.STALE else [i for i, _ in run[:count]]

    async def _shard_of(self, merchant_id: str) -> int | None:
        shard = self._merchant_shards.get(merchant_id)
        if shard is None:
            merchant = await self.merchants.get(merchant_id)
            if merchant is None:
                return None
            shard = self._merchant_shards[merchant_id] = merchant.shard
        return shard
