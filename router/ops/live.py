"""Live figures for the dashboard: counted in memory on the request path, shared in Redis.

A request pays one dictionary update per figure (no lock, no clock read, no Redis). Once
a second, just after the second turns, each process hands what it counted during that
second to Redis (router/store/live.py: one script adding into that second's bucket),
where every gateway process's counts sum up. The dashboard reads the buckets of the last
few minutes, so its figures cover all processes and survive any one of them.

Any domain can feed it: `count("red_packet.grabs")` shows up in the dashboard's
counters at once. Rail calls carry their outcome and latency (`rail_call`), bucketed into
fixed latency bounds so that percentiles can be summed across processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from bisect import bisect_left
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, Protocol, final

log = logging.getLogger("payrouter.live")

# Upper bounds (ms) of the latency buckets; a last bucket takes everything above. Ratios
# of about 1.5 between bounds keep a percentile within a third of its true value.
LATENCY_BOUNDS_MS: Final = (1, 2, 3, 5, 7, 10, 15, 20, 30, 50, 70, 100, 150, 200, 300, 500,
                            700, 1000, 1500, 2000, 3000, 5000, 7000, 10000)
_OK: Final = 0
_FAILED: Final = 1
_LATENCY: Final = 2  # rail slots: ok, failed, then one per latency bucket
_RAIL_SLOTS: Final = _LATENCY + len(LATENCY_BOUNDS_MS) + 1

CREATES: Final = "payments.created"
RED_PACKET_GRABS: Final = "red_packet.grabs"
FLUSH_OFFSET_S: Final = 0.02  # hand a second over this long after it ended


@final
@dataclass(slots=True)
class Tally:
    """What one process counted during one second."""

    counters: dict[str, int] = field(default_factory=dict)
    merchant_creates: dict[str, int] = field(default_factory=dict)
    rails: dict[str, list[int]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.counters or self.rails)

    def fields(self) -> dict[str, int]:
        """The bucket's hash fields (the layout router/store/live.py documents)."""
        out = {f"c:{name}": n for name, n in self.counters.items()}
        for rail, slots in self.rails.items():
            out[f"r:{rail}:ok"] = slots[_OK]
            out[f"r:{rail}:failed"] = slots[_FAILED]
            for i, n in enumerate(slots[_LATENCY:]):
                if n:
                    out[f"r:{rail}:l{i}"] = n
        return out


class LiveSink(Protocol):
    """Where a second's tally goes (router/store/live.py's LiveStore)."""

    async def add(self, second: int, fields: Mapping[str, int],
                  merchant_creates: Mapping[str, int]) -> None: ...


@final
class LiveStats:
    __slots__ = ("_tally",)

    def __init__(self) -> None:
        self._tally = Tally()

    # ----------------------------------------------------------------- request path
    def count(self, name: str, n: int = 1) -> None:
        """`n` more of `name` (e.g. "red_packet.grabs"); the dashboard shows it per second."""
        counters = self._tally.counters
        counters[name] = counters.get(name, 0) + n

    def payment_created(self, merchant_id: str) -> None:
        tally = self._tally
        tally.counters[CREATES] = tally.counters.get(CREATES, 0) + 1
        tally.merchant_creates[merchant_id] = tally.merchant_creates.get(merchant_id, 0) + 1

    def rail_call(self, rail: str, ok: bool, latency_s: float | None) -> None:
        """One call to `rail`: healthy or not as the breaker judges it (routing/health.py),
        and how long it took (None: nothing was sent)."""
        slots = self._tally.rails.get(rail)
        if slots is None:
            slots = self._tally.rails[rail] = [0] * _RAIL_SLOTS
        slots[_OK if ok else _FAILED] += 1
        if latency_s is not None:
            slots[_LATENCY + bisect_left(LATENCY_BOUNDS_MS, latency_s * 1000)] += 1

    def take(self) -> Tally:
        """What was counted since the last take; counting starts again from zero."""
        tally, self._tally = self._tally, Tally()
        return tally

    # ----------------------------------------------------------------- sharing
    async def run(self, sink: LiveSink, stop: asyncio.Event) -> None:
        """Hand each second over as it ends, until `stop`; then the last part-second."""
        while not stop.is_set():
            now = time.time()
            turn = int(now) + 1 + FLUSH_OFFSET_S
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), turn - now)
            await self.flush(sink, int(turn) - 1)

    async def flush(self, sink: LiveSink, second: int) -> None:
        tally = self.take()
        if not tally:
            return  # an idle process costs Redis nothing
        try:
            await sink.add(second, tally.fields(), tally.merchant_creates)
        except Exception:
            # Figures only: a second lost while Redis is away shows as a dip, nothing more.
            log.warning("live figures of second %d not shared", second, exc_info=True)


def percentile_ms(buckets: list[int], q: float) -> float | None:
    """The `q` quantile of latencies counted into LATENCY_BOUNDS_MS buckets, interpolated
    within its bucket; None without calls."""
    total = sum(buckets)
    if total == 0:
        return None
    rank = q * total
    seen = 0
    for i, n in enumerate(buckets):
        if n and seen + n >= rank:
            low = LATENCY_BOUNDS_MS[i - 1] if i > 0 else 0
            high = LATENCY_BOUNDS_MS[i] if i < len(LATENCY_BOUNDS_MS) else low * 1.5
            return round(low + (high - low) * (rank - seen) / n, 1)
        seen += n
    return float(LATENCY_BOUNDS_MS[-1])
