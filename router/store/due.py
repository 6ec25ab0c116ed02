"""Due-time sets: the sweeper's work items and the webhook retries, claimed by lease."""

from __future__ import annotations

from typing import final

from router.store import keys
from router.store.runner import Runner


@final
class DueStore:
    __slots__ = ("_run",)

    def __init__(self, runner: Runner) -> None:
        self._run = runner

    async def claim(self, key: str, now_ms: int, limit: int, lease_ms: int) -> list[str]:
        """Up to `limit` members of the set `key` due by `now_ms`, pushed one lease into
        the future so no other worker takes them meanwhile."""
        items = await self._run.script(self._run.scripts.claim_due, [key],
                                       [now_ms, limit, lease_ms])
        return [bytes(i).decode() for i in items]

    async def reschedule(self, shard: int, member: str, due_ms: int | None) -> None:
        """Move a sweeper entry (None: remove it)."""
        if due_ms is None:
            await self._run.write(keys.due(shard), "ZREM", keys.due(shard), member)
        else:
            await self._run.write(keys.due(shard), "ZADD", keys.due(shard), due_ms, member)
