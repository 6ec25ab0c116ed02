"""Rate limits (GCRA) in Redis: admit a call against several buckets at once, or give
one admission back."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import final

from router.store.outcomes import Limited, limit_outcome
from router.store.runner import Runner


@final
@dataclass(frozen=True, slots=True)
class LimitSpec:
    """One GCRA bucket to check: `interval_ms` 0 disables it."""

    key: str
    interval_ms: float
    burst: int


@final
class LimitStore:
    __slots__ = ("_run",)

    def __init__(self, runner: Runner) -> None:
        self._run = runner

    async def admit(self, limits: Sequence[LimitSpec]) -> Limited | None:
        """None when every bucket admits the call (all are then charged), else the
        tightest refusal (nothing charged)."""
        active = [s for s in limits if s.interval_ms > 0]
        if not active:
            return None
        args: list[str | int] = []
        for spec in active:
            args += [repr(spec.interval_ms), spec.burst]
        reply = await self._run.script(self._run.scripts.rate_limit,
                                       [s.key for s in active], args)
        return limit_outcome(reply)

    async def give_back(self, spec: LimitSpec) -> None:
        """Undo one admission of `spec` (a call it admitted that was not made)."""
        await self._run.script(self._run.scripts.rate_return, [spec.key],
                               [repr(spec.interval_ms)])
