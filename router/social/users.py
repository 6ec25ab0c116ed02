"""A platform's users and the real-name gate.

The gate is read on every grab, so a process keeps what it read for a second: a grab is
one Redis script, and a change of a user's status applies everywhere within that second.
Money never reaches an unverified user regardless: a payout reads the user afresh before
it is sent.
"""

from __future__ import annotations

import time
from typing import Final, final

from router.errors import RouterError
from router.social.records import User
from router.store.users import UserStore

_CACHE_S: Final = 1.0
_CACHE_SIZE: Final = 200_000


def unknown_user(param: str) -> RouterError:
    return RouterError(422, "unknown_user", "No such user; register it with PUT /v1/users/{id}.",
                       param=param)


def real_name_required(param: str) -> RouterError:
    return RouterError(403, "real_name_required",
                       "This user has not verified a real name (bank card, ID card or phone) "
                       "and cannot send or receive money.", param=param)


@final
class Users:
    __slots__ = ("_cache", "store")

    def __init__(self, store: UserStore) -> None:
        self.store = store
        self._cache: dict[tuple[str, str], tuple[float, User | None]] = {}

    async def put(self, user: User) -> User:
        await self.store.put(user)
        self._cache[(user.merchant_id, user.id)] = (time.monotonic() + _CACHE_S, user)
        return user

    async def get(self, merchant_id: str, user_id: str) -> User | None:
        """The user as Redis has it now."""
        return await self.store.load(merchant_id, user_id)

    async def recent(self, merchant_id: str, user_id: str) -> User | None:
        """The user as read at most a second ago (the hot paths' read)."""
        key = (merchant_id, user_id)
        hit = self._cache.get(key)
        now = time.monotonic()
        if hit is not None and hit[0] > now:
            return hit[1]
        user = await self.store.load(merchant_id, user_id)
        if len(self._cache) >= _CACHE_SIZE:
            self._cache.clear()  # crude but bounded; refilled within a second
        self._cache[key] = (now + _CACHE_S, user)
        return user

    async def verified(self, merchant_id: str, user_id: str, param: str, *,
                       fresh: bool = False) -> User:
        """The user, who must exist and have a verified real name."""
        user = await (self.get if fresh else self.recent)(merchant_id, user_id)
        if user is None:
            raise unknown_user(param)
        if not user.verified:
            raise real_name_required(param)
        return user
