"""Routing health shared by every gateway process: per-second call counts, each
process's latency percentiles, and the breaker state of each rail (routing/health.py)."""

from __future__ import annotations

import asyncio
from typing import final

from router.store.runner import Runner


def _bucket(rail: str, second: int) -> str:
    return f"health:{rail}:{second}"


def _latency(rail: str) -> str:
    return f"health:{rail}:latency"


def _breaker(rail: str) -> str:
    return f"health:{rail}:breaker"


@final
class HealthStore:
    __slots__ = ("_run",)

    def __init__(self, runner: Runner) -> None:
        self._run = runner

    async def add_calls(self, rail: str, second: int, ok: int, failed: int,
                        ttl_s: int) -> None:
        bucket = _bucket(rail, second)
        await self._run.script(self._run.scripts.health_add, [bucket], [ok, failed, ttl_s])

    async def calls(self, rail: str, start: int, end: int) -> tuple[int, int]:
        """(calls, failed) over the seconds start..end, all processes together."""
        buckets = await asyncio.gather(*(
            self._run.read("HMGET", _bucket(rail, second), "ok", "failed")
            for second in range(start, end + 1)))
        ok = sum(int(b[0] or 0) for b in buckets)
        failed = sum(int(b[1] or 0) for b in buckets)
        return ok + failed, failed

    async def set_latency(self, rail: str, process: str, p50: float, p99: float,
                          second: int) -> None:
        await self._run.write(_latency(rail), "HSET", _latency(rail), process,
                              f"{p50:.3f},{p99:.3f},{second}")

    async def latencies(self, rail: str) -> list[tuple[float, float, int]]:
        """(p50, p99, second written) of each process that reported."""
        flat = await self._run.read("HGETALL", _latency(rail))
        out = []
        for value in flat[1::2]:
            p50, p99, at = value.decode().split(",")
            out.append((float(p50), float(p99), int(at)))
        return out

    async def breaker(self, rail: str) -> tuple[str | None, float, float]:
        """(state, since, until) as last written; state None when never written."""
        fields = await self._run.hash(_breaker(rail))
        state = fields.get(b"state")
        return (state.decode() if state else None, float(fields.get(b"since") or 0),
                float(fields.get(b"until") or 0))

    async def set_breaker(self, rail: str, state: str, since: float, until: float) -> None:
        await self._run.write(_breaker(rail), "HSET", _breaker(rail), "state", state,
                              "since", repr(since), "until", repr(until))
