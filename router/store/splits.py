"""Splits in Redis: record one against its payment's cap (split_create.lua), settle it
(split_transition.lua), settle a refund's return of shared money
(split_return_settle.lua), read them. Everything is in the payment's slot."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import final

from router.commerce.split_records import Split
from router.store import keys
from router.store.finish import Finish
from router.store.outcomes import (
    Existing,
    MoveOutcome,
    NaturalKeyConflict,
    PaymentMissing,
    Recorded,
    move_outcome,
)
from router.store.runner import Runner


@final
@dataclass(frozen=True, slots=True)
class CapExceeded:
    """The split would take the payment's shared money above its cap; `room` is left."""

    room: int


@final
@dataclass(frozen=True, slots=True)
class NotSplittable:
    """The payment is not paid (its status is `status`): nothing to share."""

    status: str


SplitCreateOutcome = (Recorded | Existing | NaturalKeyConflict | PaymentMissing | NotSplittable
                      | CapExceeded)


@final
class SplitStore:
    __slots__ = ("_run",)

    def __init__(self, runner: Runner) -> None:
        self._run = runner

    async def create(self, split: Split, fingerprint: str, first_due_ms: int,
                     cap_bp: int) -> SplitCreateOutcome:
        pid = split.order.payment_id
        shard = keys.shard_in(pid)
        run = self._run
        reply = await run.script(
            run.scripts.split_create,
            [keys.payment(shard, pid), keys.split(shard, split.id),
             keys.payment_splits(shard, pid), keys.due(shard)],
            [split.id, fingerprint, split.order.pack(), split.amount, split.state.pack(),
             split.updated_ms, first_due_ms, cap_bp])
        head, *rest = (bytes(r).decode() if isinstance(r, bytes) else str(r) for r in reply)
        match head:
            case "created":
                return Recorded()
            case "exists":
                return Existing()
            case "conflict":
                return NaturalKeyConflict()
            case "missing":
                return PaymentMissing()
            case "state":
                return NotSplittable(rest[0])
            case "exceeds":
                return CapExceeded(int(rest[0]))
        raise RuntimeError(f"split_create.lua answered {head!r}")

    async def transition(self, split: Split, expected_version: int, expected_status: str,
                         finish: Finish, shares: Sequence[tuple[str, int]]) -> MoveOutcome:
        """CAS `split` (holding its new status and state); `shares` become returnable
        when it succeeds."""
        pid = split.order.payment_id
        shard = keys.shard_in(split.id)
        run = self._run
        reply = await run.script(
            run.scripts.split_transition,
            [keys.split(shard, split.id), keys.payment(shard, pid), keys.due(shard),
             keys.outbox(shard), keys.shares(shard, pid), keys.journal_inbox(shard)],
            [expected_version, expected_status, split.status.value, split.state.pack(),
             split.updated_ms,
             *finish.args(f"sp:{split.id}", split.order.merchant_id, run.idem_ttl_s),
             split.order.provider or "",
             *(item for name, amount in shares for item in (name, amount))])
        return move_outcome(reply)

    async def load(self, split_id: str) -> Split | None:
        shard = keys.shard_of(split_id)
        if shard is None or not split_id.startswith("spl_"):
            return None
        fields = await self._run.hash(keys.split(shard, split_id))
        return Split.from_hash(split_id, fields) if fields else None

    async def of_payment(self, payment_id: str) -> list[Split]:
        shard = keys.shard_in(payment_id)
        ids = await self._run.read("LRANGE", keys.payment_splits(shard, payment_id), 0, -1)
        rows = await asyncio.gather(*(self._run.hash(keys.split(shard, bytes(i).decode()))
                                      for i in ids))
        return [Split.from_hash(bytes(i).decode(), row) for i, row in zip(ids, rows, strict=True)
                if row]

    async def returns_of(self, refund_id: str) -> dict[str, tuple[int, str | None]]:
        """A refund's split returns: share name -> (amount, "done" | "undone" | None)."""
        raw = await self._run.hash(keys.refund_returns(keys.shard_in(refund_id), refund_id))
        fields = {k.decode(): v.decode() for k, v in raw.items()}
        return {name: (int(amount), fields.get(f"s:{name}"))
                for name, amount in fields.items() if not name.startswith("s:")}

    async def settle_return(self, refund_id: str, payment_id: str, share: str, split_id: str,
                            done: bool, merchant_id: str, journal: bytes) -> None:
        """Record, once, that a return came back (`done`) or was refused."""
        shard = keys.shard_in(refund_id)
        run = self._run
        await run.script(
            run.scripts.split_return_settle,
            [keys.refund_returns(shard, refund_id), keys.shares(shard, payment_id),
             keys.payment(shard, payment_id), keys.split(shard, split_id),
             keys.journal_inbox(shard)],
            [share, "done" if done else "undone", merchant_id, journal if done else b""])
