"""A platform's users: one JSON string each, in the shard of (merchant, user id).

Social objects (users, payouts, red packets, transfers) take their shard from a digest
modulo a count pinned in Redis the first time a gateway starts (`pin_spread`): a later
change of `[redis] shards` must not move an existing natural key to another id, or a
retried payout would be paid twice and users would vanish."""

from __future__ import annotations

from typing import final

from router.social.records import User
from router.store import keys
from router.store.runner import Runner


@final
class UserStore:
    __slots__ = ("_run", "spread")

    def __init__(self, runner: Runner, shards: int) -> None:
        self._run = runner
        self.spread = shards  # the pinned count, once `pin_spread` has run

    async def pin_spread(self, shards: int) -> int:
        """The shard count social ids are spread over: the first gateway's `shards`, kept
        for good."""
        await self._run.write(keys.SPREAD, "SET", keys.SPREAD, shards, "NX")
        pinned = int(await self._run.read("GET", keys.SPREAD))
        self.spread = pinned
        return pinned

    def _key(self, merchant_id: str, user_id: str) -> str:
        return keys.user(keys.user_shard(merchant_id, user_id, self.spread), merchant_id,
                         user_id)

    async def put(self, user: User) -> None:
        key = self._key(user.merchant_id, user.id)
        await self._run.write(key, "SET", key, user.pack())

    async def load(self, merchant_id: str, user_id: str) -> User | None:
        raw = await self._run.read("GET", self._key(merchant_id, user_id))
        return User.unpack(merchant_id, user_id, bytes(raw)) if raw is not None else None
