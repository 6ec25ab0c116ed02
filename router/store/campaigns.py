"""Campaigns in Redis: a campaign's record, payers and holds in the campaign's own slot
(campaign_reserve.lua and campaign_settle.lua change them, every limit in one step),
and the untagged set of campaigns not ended, which every gateway process reads once a
second. Each method is one round trip, or one per slot it touches."""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import final

from router.promotions.campaigns import Campaign, Figures
from router.store import keys
from router.store.runner import Runner


class HoldAction(enum.StrEnum):
    """What campaign_settle.lua does to a reservation (the script says why)."""

    DROP = "drop"
    FORGET = "forget"
    RELEASE = "release"
    GRANT = "grant"


@final
@dataclass(frozen=True, slots=True)
class Reserved:
    """A new reservation of `amount` for the payment."""

    amount: int


@final
@dataclass(frozen=True, slots=True)
class AlreadyHeld:
    """The payment holds a reservation already (a retried create): `amount`, `status`."""

    amount: int
    status: str


@final
@dataclass(frozen=True, slots=True)
class Skipped:
    """No reward: the campaign ended, a limit is reached or the budget is spent."""

    why: str


ReserveOutcome = Reserved | AlreadyHeld | Skipped


@final
@dataclass(frozen=True, slots=True)
class Hold:
    amount: int
    status: str  # reserved | granted | released | clawed_back
    clawed: int


@final
@dataclass(frozen=True, slots=True)
class HoldSettled:
    status: str  # as the hold is now (dropped, forgotten: gone)
    returned: int  # given back to the budget by this call


@final
class CampaignStore:
    __slots__ = ("_run",)

    def __init__(self, runner: Runner) -> None:
        self._run = runner

    async def create(self, campaign: Campaign) -> None:
        """The record first, then the active set: a crash between leaves a campaign no
        payment ever matches, never a listed one without its record."""
        key = _record(campaign.id)
        await self._run.write(
            key, "HSET", key, "d", campaign.pack(), "s", "live", "sp", 0,
            "b", campaign.budget, "fn", campaign.first_n, "pc", campaign.per_payer_count,
            "pa", campaign.per_payer_amount, "sa", campaign.starts_ms, "ea", campaign.ends_ms)
        await self._run.write(keys.ACTIVE_CAMPAIGNS, "SADD", keys.ACTIVE_CAMPAIGNS, campaign.id)

    async def load(self, campaign_id: str) -> tuple[Campaign, Figures] | None:
        shard = keys.shard_of(campaign_id)
        if shard is None or not campaign_id.startswith("cmp_"):
            return None
        fields, payers = await asyncio.gather(
            self._run.hash(keys.campaign(shard, campaign_id)),
            self._run.read("HLEN", keys.campaign_payers(shard, campaign_id)))
        if not fields:
            return None
        figures = Figures(int(fields[b"sp"]), int(payers), int(fields.get(b"e", b"0")))
        return Campaign.unpack(campaign_id, fields[b"d"]), figures

    async def active_ids(self) -> list[str]:
        ids = await self._run.read("SMEMBERS", keys.ACTIVE_CAMPAIGNS)
        return sorted(bytes(i).decode() for i in ids)

    async def retire(self, campaign_id: str) -> None:
        """Off the active set (ended): no process matches it any more."""
        await self._run.write(keys.ACTIVE_CAMPAIGNS, "SREM", keys.ACTIVE_CAMPAIGNS, campaign_id)

    async def definitions(self, ids: Sequence[str]) -> dict[str, Campaign]:
        """The definitions of `ids` (sent together: auto-pipelined per node)."""
        raw = await asyncio.gather(*(self._run.read("HGET", _record(i), "d") for i in ids))
        return {i: Campaign.unpack(i, bytes(d)) for i, d in zip(ids, raw, strict=True)
                if d is not None}

    async def figures(self, ids: Sequence[str]) -> dict[str, Figures]:
        """Spent and ended of `ids` (the payers are counted only where shown)."""
        rows = await asyncio.gather(*(self._run.read("HMGET", _record(i), "sp", "e")
                                      for i in ids))
        return {i: Figures(int(sp), 0, int(e or 0)) for i, (sp, e) in zip(ids, rows, strict=True)
                if sp is not None}

    async def end(self, campaign_id: str, now_ms: int) -> int | None:
        """End it (None: no such campaign); the time it ended, the first time it did."""
        run = self._run
        reply = await run.script(run.scripts.campaign_end, [_record(campaign_id)], [now_ms])
        if _text(reply[0]) != "ok":
            return None
        await self.retire(campaign_id)
        return int(_text(reply[1]))

    async def reserve(self, campaign_id: str, payment_id: str, payer: str, wanted: int,
                      at_ms: int, due_ms: int) -> ReserveOutcome:
        shard = keys.shard_in(campaign_id)
        run = self._run
        reply = await run.script(
            run.scripts.campaign_reserve, [*_counters(shard, campaign_id), keys.due(shard)],
            [payment_id, payer, wanted, at_ms, due_ms, due_member(campaign_id, payment_id)])
        head = _text(reply[0])
        if head == "reserved":
            return Reserved(int(_text(reply[1])))
        if head == "held":
            return AlreadyHeld(int(_text(reply[1])), _text(reply[2]))
        return Skipped(_text(reply[1]))

    async def settle(self, campaign_id: str, payment_id: str, action: HoldAction,
                     clawed_total: int = 0, *, remove_due: bool = False) -> HoldSettled:
        shard = keys.shard_in(campaign_id)
        run = self._run
        reply = await run.script(
            run.scripts.campaign_settle, [*_counters(shard, campaign_id), keys.due(shard),
                                          keys.campaign_coupons(shard, campaign_id)],
            [payment_id, action.value, clawed_total, due_member(campaign_id, payment_id),
             "1" if remove_due else "0"])
        return HoldSettled(_text(reply[0]), int(_text(reply[1])))

    async def hold(self, campaign_id: str, payment_id: str) -> Hold | None:
        shard = keys.shard_in(campaign_id)
        raw = await self._run.read("HGET", keys.campaign_holds(shard, campaign_id), payment_id)
        if raw is None:
            return None
        amount, status, _, clawed, _ = bytes(raw).decode().split(":", 4)
        return Hold(int(amount), status, int(clawed))

    async def look_again(self, campaign_id: str, payment_id: str, due_ms: int) -> None:
        """Have the sweeper bring the reservation in line at `due_ms`."""
        shard = keys.shard_in(campaign_id)
        await self._run.write(keys.due(shard), "ZADD", keys.due(shard), due_ms,
                              due_member(campaign_id, payment_id))

    async def refund_sums(self, payment_id: str) -> tuple[int, int]:
        """(reserved, succeeded) refunds of a payment: equal when none is in flight."""
        shard = keys.shard_in(payment_id)
        rr, rf = await self._run.read("HMGET", keys.payment(shard, payment_id), "rr", "rf")
        return int(rr or 0), int(rf or 0)


def due_member(campaign_id: str, payment_id: str) -> str:
    return f"rv:{campaign_id}:{payment_id}"


def _record(campaign_id: str) -> str:
    return keys.campaign(keys.shard_in(campaign_id), campaign_id)


def _counters(shard: int, campaign_id: str) -> list[str]:
    return [keys.campaign(shard, campaign_id), keys.campaign_payers(shard, campaign_id),
            keys.campaign_holds(shard, campaign_id)]


def _text(value: bytes | int | str) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
