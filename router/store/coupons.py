"""Coupons in Redis: each coupon campaign's coupons in one hash in the campaign's slot
(`cmpc:<campaign>`, id → "status:payment:user"), so coupon_reserve.lua checks a coupon,
its campaign's budget and the payment's hold in one step, and campaign_settle.lua
moves the coupon with the hold. Each method is one round trip."""

from __future__ import annotations

from dataclasses import dataclass
from typing import final

from router.store import keys
from router.store.campaigns import AlreadyHeld, Reserved, due_member
from router.store.runner import Runner


@final
@dataclass(frozen=True, slots=True)
class CouponState:
    status: str  # available | reserved | redeemed
    payment: str | None  # the payment holding or having used it
    user: str


@final
@dataclass(frozen=True, slots=True)
class Refused:
    """Not reserved: `why` is missing | owner | reserved | redeemed | expired |
    scheduled | spent | taken (the payment holds another coupon of the campaign)."""

    why: str


CouponOutcome = Reserved | AlreadyHeld | Refused


@final
class CouponStore:
    __slots__ = ("_run",)

    def __init__(self, runner: Runner) -> None:
        self._run = runner

    async def issue(self, campaign_id: str, coupon_id: str, user: str) -> None:
        """Issuing takes nothing from the campaign: its budget is taken per reservation."""
        key = keys.campaign_coupons(keys.shard_in(campaign_id), campaign_id)
        await self._run.write(key, "HSET", key, coupon_id, f"available::{user}")

    async def state(self, campaign_id: str, coupon_id: str) -> CouponState | None:
        key = keys.campaign_coupons(keys.shard_in(campaign_id), campaign_id)
        raw = await self._run.read("HGET", key, coupon_id)
        if raw is None:
            return None
        status, payment, user = bytes(raw).decode().split(":", 2)
        return CouponState(status, payment or None, user)

    async def reserve(self, campaign_id: str, coupon_id: str, payment_id: str, user: str,
                      amount: int, at_ms: int, due_ms: int) -> CouponOutcome:
        shard = keys.shard_in(campaign_id)
        run = self._run
        reply = await run.script(
            run.scripts.coupon_reserve,
            [keys.campaign(shard, campaign_id), keys.campaign_holds(shard, campaign_id),
             keys.campaign_coupons(shard, campaign_id), keys.due(shard)],
            [payment_id, coupon_id, user, amount, at_ms, due_ms,
             due_member(campaign_id, payment_id)])
        head = _text(reply[0])
        if head == "reserved":
            return Reserved(int(_text(reply[1])))
        if head == "held":
            return AlreadyHeld(int(_text(reply[1])), _text(reply[2]))
        return Refused(_text(reply[1]))


def _text(value: bytes | int | str) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
