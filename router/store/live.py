"""The dashboard's live figures in Redis: one bucket per second, summed over processes.

    {live}s:{unix second}   hash   c:{counter} count, r:{rail}:ok, r:{rail}:failed,
                                   r:{rail}:l{i} calls in latency bucket i (ops/live.py)
    {live}m:{unix second}   hash   {merchant id} payments created

Every process adds its second with one script (HINCRBY per field, EXPIRE); buckets live
`BUCKET_TTL_S`, a little longer than the dashboard's charts look back. All buckets carry
the hash tag `{live}`, so a second's two keys share a slot on Redis Cluster and a read
of many seconds goes to one master.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from typing import Final, final

from router.store.resp import Arg, Script
from router.store.runner import Runner
from router.store.scripts import script_source

BUCKET_TTL_S: Final = 300
_ADD: Final = Script(script_source("live_add"))


def figures_bucket(second: int) -> str:
    return f"{{live}}s:{second}"


def merchants_bucket(second: int) -> str:
    return f"{{live}}m:{second}"


@final
class LiveStore:
    __slots__ = ("_run",)

    def __init__(self, runner: Runner) -> None:
        self._run = runner

    async def add(self, second: int, fields: Mapping[str, int],
                  merchant_creates: Mapping[str, int]) -> None:
        """Add one process's counts of `second` (one script, one round trip)."""
        args: list[Arg] = [BUCKET_TTL_S, len(fields)]
        for name, count in fields.items():
            args += [name, count]
        for merchant_id, count in merchant_creates.items():
            args += [merchant_id, count]
        await self._run.script(_ADD, [figures_bucket(second), merchants_bucket(second)], args)

    async def figures(self, seconds: Sequence[int]) -> dict[int, dict[str, int]]:
        """Each second's summed figures (an empty dict for a second nobody counted in)."""
        return await self._read(figures_bucket, seconds)

    async def merchant_creates(self, seconds: Sequence[int]) -> dict[str, int]:
        """Payments created per merchant over `seconds`, all processes together."""
        total: dict[str, int] = {}
        for per_merchant in (await self._read(merchants_bucket, seconds)).values():
            for merchant_id, count in per_merchant.items():
                total[merchant_id] = total.get(merchant_id, 0) + count
        return total

    async def _read(self, bucket: Callable[[int], str],
                    seconds: Sequence[int]) -> dict[int, dict[str, int]]:
        # One HGETALL per second; issued together, they leave in one write (auto-pipelining)
        # and, sharing a hash tag, all go to the same node.
        raw = await asyncio.gather(*(self._run.hash(bucket(s)) for s in seconds))
        return {s: {k.decode(): int(v) for k, v in fields.items()}
                for s, fields in zip(seconds, raw, strict=True)}
