"""The points worker: follows each merchant's journal and earns points for the charges
in it.

A payment's charge is chained into its merchant's journal by the script that records the
payment's success, so following the journal misses no payment, even when a gateway dies
right after that script, and adds nothing to the payment's own path (which stays at two
Redis round trips). Each merchant's account keeps the last journal entry looked at; a
worker that dies before moving it on looks at those entries again, which earns nothing
twice (the earn is once per payer and day).

A charge looked at more than `MAX_LATE_MS` after it was paid earns nothing: its day's
payers are no longer kept, so the worker could not tell whether it earned already.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime
from typing import Any, Final, final

from router.clock import Clock
from router.promotions.points import Points
from router.store.link import per_shard
from router.store.store import Store

log = logging.getLogger("payrouter.points")

_BATCH: Final = 500  # journal entries per merchant per round
_LEASE_MS: Final = 10_000
MAX_LATE_MS: Final = 86_400_000


@final
class PointsWorker:
    __slots__ = ("_full", "clock", "interval_s", "owner", "points", "shards", "store")

    def __init__(self, store: Store, points: Points, shards: int, clock: Clock, owner: str,
                 interval_s: float = 0.5) -> None:
        self.store = store
        self.points = points
        self.shards = shards
        self.clock = clock
        self.owner = owner
        self.interval_s = interval_s
        self._full = False  # a merchant's batch was full this round: more is waiting

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self._full = False
            try:
                await self.catch_up()
            except Exception:
                log.exception("earning points failed; retrying")
            if self._full:
                # Behind the journal: a pause per batch would fall further behind at any
                # rate above a batch per interval (two entries per paid payment).
                await asyncio.sleep(0)
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.interval_s)

    async def catch_up(self) -> int:
        """Look at what every merchant's journal gained since the last look; returns how
        many points were earned."""
        done = await per_shard((self._shard(s) for s in range(self.shards)), "points")
        return sum(n or 0 for n in done)

    async def _shard(self, shard: int) -> int:
        if not await self.store.points.lease(shard, self.owner, _LEASE_MS):
            return 0
        merchants = await self.store.journal.merchants(shard)
        earned = await asyncio.gather(*(self._merchant(shard, m) for m in merchants))
        return sum(earned)

    async def _merchant(self, shard: int, merchant_id: str) -> int:
        (head, _), seen = await asyncio.gather(
            self.store.journal.head(shard, merchant_id),
            self.store.points.read_up_to(shard, merchant_id))
        if head <= seen:
            return 0
        entries = await self.store.journal.entries(shard, merchant_id, seen, _BATCH)
        if not entries:
            return 0
        self._full = self._full or len(entries) == _BATCH
        now = self.clock.now_ms()
        charges = [(e["ref"], paid_ms) for e in entries if e["kind"] == "charge"
                   and now - (paid_ms := _ms(e["at"])) <= MAX_LATE_MS]
        earned = await asyncio.gather(*(self._earn(shard, pid, at) for pid, at in charges))
        await self.store.points.mark_read(shard, merchant_id, int(entries[-1]["seq"]))
        return sum(earned)

    async def _earn(self, shard: int, payment_id: str, paid_ms: int) -> bool:
        payment = await self.store.payments.load(payment_id)
        if payment is None:
            log.error("charge of unknown payment %s in the journal", payment_id)
            return False
        return await self.points.earn(shard, payment, paid_ms)


def _ms(at: Any) -> int:
    return int(datetime.fromisoformat(str(at)).timestamp() * 1000)
