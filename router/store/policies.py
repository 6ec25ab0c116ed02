"""Policies in Redis: the one `policies` hash (action -> policy JSON), read whole by
every gateway process once a second, and each merchant's quota windows in its shard."""

from __future__ import annotations

from dataclasses import dataclass
from typing import final

from router.store import keys
from router.store.runner import Runner


@final
@dataclass(frozen=True, slots=True)
class QuotaTaken:
    """A unit was taken; `window` names the window it came from (to give it back)."""

    window: str


@final
@dataclass(frozen=True, slots=True)
class QuotaOver:
    wait_ms: int  # until the window ends


@final
class PolicyStore:
    __slots__ = ("_run",)

    def __init__(self, runner: Runner) -> None:
        self._run = runner

    async def all(self) -> dict[str, bytes]:
        """Every policy: action -> its JSON."""
        raw = await self._run.hash(keys.POLICIES)
        return {bytes(k).decode(): bytes(v) for k, v in raw.items()}

    async def put(self, action: str, policy: bytes) -> None:
        await self._run.write(keys.POLICIES, "HSET", keys.POLICIES, action, policy)

    async def delete(self, action: str) -> bool:
        """False when the action had no policy."""
        return bool(await self._run.write(keys.POLICIES, "HDEL", keys.POLICIES, action))

    async def take(self, shard: int, action: str, merchant_id: str, count: int,
                   per_ms: int) -> QuotaTaken | QuotaOver:
        run = self._run
        reply = await run.script(run.scripts.policy_quota,
                                 [keys.policy_quota(shard, action, merchant_id)],
                                 [count, per_ms])
        head, value = (_text(part) for part in reply)
        if head == "ok":
            return QuotaTaken(value)
        return QuotaOver(int(float(value)))

    async def give_back(self, shard: int, action: str, merchant_id: str,
                        taken: QuotaTaken) -> None:
        run = self._run
        await run.script(run.scripts.policy_quota_return,
                         [keys.policy_quota(shard, action, merchant_id)], [taken.window])


def _text(value: bytes | int | str) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
