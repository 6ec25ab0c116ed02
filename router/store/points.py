"""Merchant points in Redis, all in the merchant's shard: the account (balance, totals,
how far the points worker has read the merchant's journal), each day's payers, the
ledger, and the records that make a retried redemption find the first."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import final

from router.store import keys
from router.store.runner import Runner

_DAY_TTL_S = 2 * 86400  # a day's payers outlive every late look at that day's payments


@final
@dataclass(frozen=True, slots=True)
class Earned:
    balance: int


@final
@dataclass(frozen=True, slots=True)
class AlreadyEarned:
    """This payer earned the merchant its point for that day already."""


@final
@dataclass(frozen=True, slots=True)
class Redeemed:
    balance: int
    earlier: bytes | None = None  # the redemption as first recorded, for a retry


@final
@dataclass(frozen=True, slots=True)
class InsufficientPoints:
    balance: int


@final
@dataclass(frozen=True, slots=True)
class PointsView:
    balance: int
    earned_today: int
    entries: list[bytes]  # ledger entries (JSON), newest first


@final
class PointsStore:
    __slots__ = ("_run",)

    def __init__(self, runner: Runner) -> None:
        self._run = runner

    async def earn(self, shard: int, merchant_id: str, day: str, payer: str,
                   payment_id: str, points: int, entry: bytes,
                   journal: bytes) -> Earned | AlreadyEarned:
        run = self._run
        reply = await run.script(
            run.scripts.points_earn,
            [keys.points(shard, merchant_id), keys.points_day(shard, merchant_id, day),
             keys.points_ledger(shard, merchant_id), keys.journal_inbox(shard)],
            [payer, payment_id, points, _DAY_TTL_S, entry, merchant_id, journal])
        if _text(reply[0]) == "earned":
            return Earned(int(reply[1]))
        return AlreadyEarned()

    async def redeem(self, shard: int, merchant_id: str, redemption_id: str, points: int,
                     entry: bytes, record: bytes, record_ttl_s: int, journal: bytes
                     ) -> Redeemed | InsufficientPoints:
        run = self._run
        reply = await run.script(
            run.scripts.points_redeem,
            [keys.points(shard, merchant_id), keys.points_ledger(shard, merchant_id),
             keys.points_redemption(shard, redemption_id), keys.journal_inbox(shard)],
            [points, entry, record, record_ttl_s, merchant_id, journal])
        match _text(reply[0]):
            case "redeemed":
                return Redeemed(int(reply[1]))
            case "exists":
                return Redeemed(int(reply[2]), bytes(reply[1]))
        return InsufficientPoints(int(_text(reply[1])))

    async def view(self, shard: int, merchant_id: str, day: str, limit: int) -> PointsView:
        """Balance, the day's earnings and the newest `limit` ledger entries (one slot:
        the three reads go out together)."""
        balance, today, entries = await asyncio.gather(
            self._run.read("HGET", keys.points(shard, merchant_id), "b"),
            self._run.read("HGET", keys.points_day(shard, merchant_id, day), "#"),
            self._run.read("LRANGE", keys.points_ledger(shard, merchant_id), 0, limit - 1))
        return PointsView(int(balance or 0), int(today or 0),
                          [bytes(e) for e in entries or ()])

    # ----------------------------------------------------------------- the points worker
    async def lease(self, shard: int, owner: str, lease_ms: int) -> bool:
        """Take (or keep) the shard's points work for one worker for `lease_ms`."""
        key = keys.points_lock(shard)
        if await self._run.write(key, "SET", key, owner, "NX", "PX", lease_ms) is not None:
            return True
        current = await self._run.read("GET", key)
        if current is not None and bytes(current).decode() == owner:
            await self._run.write(key, "PEXPIRE", key, lease_ms)
            return True
        return False

    async def read_up_to(self, shard: int, merchant_id: str) -> int:
        """The last journal seq of the merchant that the points worker has looked at."""
        raw = await self._run.read("HGET", keys.points(shard, merchant_id), "w")
        return int(raw or 0)

    async def mark_read(self, shard: int, merchant_id: str, seq: int) -> None:
        key = keys.points(shard, merchant_id)
        await self._run.write(key, "HSET", key, "w", seq)


def _text(value: bytes | int | str) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
