"""Whitelists and per-action quotas (API.md, "Whitelists and per-action quotas").

An admin sets a policy per action; every gateway process keeps all policies in memory
and reads them again at most a second after its last read, so a change applies on every
process within a second and the guarded actions pay nothing for a whitelist. A quota is
a window per (action, merchant) in the merchant's shard, taken in one script.

Neither a refusal nor a quota has a side effect: a unit is spent only by a call that
creates something (201) or may have (5xx, outcome unknown); a call the action refuses,
or answers with an object that existed already (200), gives its unit back.
"""

from __future__ import annotations

import asyncio
import enum
import math
import time
from collections.abc import Awaitable, Callable
from typing import Final, final

import msgspec

from router.errors import RouterError
from router.merchants import Merchant
from router.ops.metrics import Metrics
from router.payments.replies import Reply
from router.store.policies import PolicyStore, QuotaOver, QuotaTaken

REFRESH_S: Final = 1.0

Act = Callable[[], Awaitable[Reply]]


class Action(enum.StrEnum):
    """The actions a policy can govern."""

    SHARE_LINK_CREATE = "share_link.create"
    CHECKOUT_CODE_CREATE = "checkout_code.create"
    RED_PACKET_CREATE = "red_packet.create"
    TRANSFER_CREATE = "transfer.create"
    PAYOUT_CREATE = "payout.create"


_ACTIONS: Final = frozenset(a.value for a in Action)


class Quota(msgspec.Struct, frozen=True):
    count: int
    per_s: int


class Policy(msgspec.Struct, frozen=True):
    """As stored: an empty or absent whitelist lets every merchant through."""

    whitelist: frozenset[str] | None = None
    quota: Quota | None = None
    updated_ms: int = 0

    def admits(self, merchant_id: str) -> bool:
        return not self.whitelist or merchant_id in self.whitelist


def action_of(raw: str) -> Action:
    try:
        return Action(raw)
    except ValueError:
        raise RouterError(404, "not_found", "No such action; policies govern "
                          f"{', '.join(a.value for a in Action)}.", param="action") from None


def not_whitelisted(action: Action) -> RouterError:
    return RouterError(403, "not_whitelisted",
                       f"This merchant is not on the whitelist for {action.value}.")


def quota_exceeded(action: Action, quota: Quota, wait_ms: int) -> RouterError:
    retry_s = max(1, math.ceil(wait_ms / 1000))
    return RouterError(
        429, "quota_exceeded",
        f"The quota for {action.value} ({quota.count} per {quota.per_s} s) is used up. "
        f"Retry after {retry_s} s.",
        headers={"Retry-After": str(retry_s), "RateLimit-Limit": str(quota.count),
                 "RateLimit-Remaining": "0", "RateLimit-Reset": str(retry_s)})


@final
class Policies:
    __slots__ = ("_fresh_until", "_loading", "_policies", "metrics", "refresh_s", "store")

    def __init__(self, store: PolicyStore, metrics: Metrics,
                 refresh_s: float = REFRESH_S) -> None:
        self.store = store
        self.metrics = metrics
        self.refresh_s = refresh_s
        self._policies: dict[Action, Policy] = {}
        self._fresh_until = 0.0
        self._loading: asyncio.Future[None] | None = None

    # ----------------------------------------------------------------- admin
    async def put(self, action: Action, policy: Policy) -> None:
        await self.store.put(action.value, msgspec.json.encode(policy))
        self._policies = {**self._policies, action: policy}  # this process: at once

    async def delete(self, action: Action) -> bool:
        existed = await self.store.delete(action.value)
        self._policies = {a: p for a, p in self._policies.items() if a is not action}
        return existed

    async def stored(self) -> dict[Action, Policy]:
        """Every policy as Redis has it now (the admin's read)."""
        return _parsed(await self.store.all())

    # ----------------------------------------------------------------- enforcement
    def guard(self, merchant: Merchant, action: Action, act: Act) -> Act:
        """`act`, run only if the action's policy lets `merchant` do it now."""
        async def guarded() -> Reply:
            policy = await self.current(action)
            if policy is None:
                return await act()
            if not policy.admits(merchant.id):
                raise not_whitelisted(action)
            if policy.quota is None:
                return await act()
            return await self._within_quota(merchant, action, policy.quota, act)

        return guarded

    async def current(self, action: Action) -> Policy | None:
        """The action's policy as read at most `refresh_s` ago."""
        if time.monotonic() >= self._fresh_until:
            if self._loading is None or self._loading.done():
                self._loading = asyncio.ensure_future(self._reload())
            await asyncio.shield(self._loading)
        return self._policies.get(action)

    async def _reload(self) -> None:
        started = time.monotonic()  # a change made during the read is caught next time
        self._policies = _parsed(await self.store.all())
        self._fresh_until = started + self.refresh_s

    async def _within_quota(self, merchant: Merchant, action: Action, quota: Quota,
                            act: Act) -> Reply:
        taken = await self.store.take(merchant.shard, action.value, merchant.id, quota.count,
                                      quota.per_s * 1000)
        if isinstance(taken, QuotaOver):
            self.metrics.rate_limited.labels("quota").inc()
            raise quota_exceeded(action, quota, taken.wait_ms)
        try:
            reply = await act()
        except RouterError as err:
            if err.http_status < 500:
                await self._give_back(merchant, action, taken)
            raise
        if reply.status != 201 and reply.status < 500:
            await self._give_back(merchant, action, taken)
        return reply

    async def _give_back(self, merchant: Merchant, action: Action, taken: QuotaTaken) -> None:
        await self.store.give_back(merchant.shard, action.value, merchant.id, taken)


def _parsed(raw: dict[str, bytes]) -> dict[Action, Policy]:
    out: dict[Action, Policy] = {}
    for name, blob in raw.items():
        if name in _ACTIONS:
            out[Action(name)] = msgspec.json.decode(blob, type=Policy)
    return out
