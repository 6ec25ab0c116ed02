"""Payouts in Redis: record one (payout_create.lua), compare-and-set it (the payments'
transition.lua: the same fields and the same finish), read it."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import final

from router.social.records import Payout
from router.store import keys
from router.store.finish import Finish
from router.store.outcomes import MoveOutcome, RecordOutcome, move_outcome, record_outcome
from router.store.runner import Runner


@final
class PayoutStore:
    __slots__ = ("_run",)

    def __init__(self, runner: Runner) -> None:
        self._run = runner

    async def create(self, payout: Payout, fingerprint: str, first_due_ms: int) -> RecordOutcome:
        shard = keys.shard_in(payout.id)
        run = self._run
        reply = await run.script(
            run.scripts.payout_create, [keys.payout(shard, payout.id), keys.due(shard)],
            [payout.id, fingerprint, payout.order.pack(), payout.amount, payout.state.pack(),
             payout.updated_ms, first_due_ms])
        return record_outcome(reply)

    async def transition(self, payout: Payout, expected_version: int, expected_status: str,
                         finish: Finish) -> MoveOutcome:
        shard = keys.shard_in(payout.id)
        pkey = keys.payout(shard, payout.id)
        run = self._run
        reply = await run.script(
            run.scripts.transition,
            [pkey, keys.due(shard), keys.outbox(shard), pkey, keys.journal_inbox(shard)],
            [expected_version, expected_status, payout.status.value, payout.state.pack(),
             payout.updated_ms,
             *finish.args(f"po:{payout.id}", payout.order.merchant_id, run.idem_ttl_s)])
        return move_outcome(reply)

    async def load(self, payout_id: str) -> Payout | None:
        shard = keys.shard_of(payout_id)
        if shard is None or not payout_id.startswith("po_"):
            return None
        fields = await self._run.hash(keys.payout(shard, payout_id))
        return Payout.from_hash(payout_id, fields) if fields else None

    async def statuses(self, payout_ids: Sequence[str]) -> dict[str, str]:
        """The status of each payout (sent together: one round trip on one connection)."""
        replies = await asyncio.gather(*(
            self._run.read("HGET", keys.payout(keys.shard_in(p), p), "s") for p in payout_ids))
        return {p: bytes(r).decode() for p, r in zip(payout_ids, replies, strict=True)
                if r is not None}
