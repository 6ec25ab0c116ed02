"""Rail health shared by every gateway process: success rates, latency, circuit breakers.

Each process counts its rail calls locally (no Redis work on the request path) and, every
`sync_interval_s`, adds its counts to per-second buckets in Redis and reads back the
window that all processes wrote. From that shared window every process reaches the same
verdicts, and the breaker's state itself is kept in Redis so that one process opening a
rail opens it for all:

    closed ──(error rate ≥ limit, or p99 above limit, over ≥ min_calls)──► open
    open ──(cool_down_s passed)──► half_open ──(probes succeed)──► closed
                                        └──────(a probe fails)─────► open

While half-open, each process lets `probes` calls through and routes the rest elsewhere.
What counts as a failure: an unknown outcome (timeout, 5xx, unverifiable answer) or an
unreachable rail. A refusal the rail gave on purpose (a decline) is a healthy rail.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Final, final

from router.settings import BreakerSettings
from router.store.link import RedisLink

log = logging.getLogger("payrouter.health")

CLOSED: Final = "closed"
OPEN: Final = "open"
HALF_OPEN: Final = "half_open"

_LATENCIES_KEPT: Final = 2000


@dataclass(slots=True)
class _Local:
    """One rail's counts since the last sync, and its recent latencies."""

    ok: int = 0
    failed: int = 0
    # (time.monotonic(), milliseconds) of recent calls; those older than the window are
    # dropped at each sync, so a rail that was slow is not judged slow once it recovered.
    latencies: deque[tuple[float, float]] = field(
        default_factory=lambda: deque(maxlen=_LATENCIES_KEPT))


@final
@dataclass(frozen=True, slots=True)
class RailView:
    """What all processes together know of a rail, as of the last sync."""

    state: str = CLOSED
    calls: int = 0
    failed: int = 0
    p50_ms: float | None = None
    p99_ms: float | None = None
    since: float = 0.0  # when the breaker entered `state` (0: never changed)

    @property
    def success_rate(self) -> float | None:
        return None if self.calls == 0 else round(1 - self.failed / self.calls, 4)


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@final
class HealthBook:
    __slots__ = ("_local", "_probed", "_probes_left", "_views", "breaker", "process", "rails")

    def __init__(self, rails: Iterable[str], breaker: BreakerSettings) -> None:
        self.rails = tuple(rails)
        self.breaker = breaker
        self.process = f"{socket.gethostname()}-{os.getpid()}"
        self._local = {rail: _Local() for rail in self.rails}
        self._views = {rail: RailView() for rail in self.rails}
        self._probes_left = {rail: 0 for rail in self.rails}
        self._probed = {rail: -1.0 for rail in self.rails}  # half-open spell probes went to

    # ----------------------------------------------------------------- request path
    def record(self, rail: str, ok: bool, latency_s: float | None) -> None:
        local = self._local.get(rail)
        if local is None:
            return
        if ok:
            local.ok += 1
        else:
            local.failed += 1
        if latency_s is not None:
            local.latencies.append((time.monotonic(), latency_s * 1000))

    def view(self, rail: str) -> RailView:
        return self._views.get(rail, RailView())

    def admits(self, rail: str) -> bool:
        """May a call go to `rail` now? Open: no. Half-open: while probes are left."""
        state = self.view(rail).state
        if state == OPEN:
            return False
        if state == HALF_OPEN:
            if self._probes_left.get(rail, 0) <= 0:
                return False
            self._probes_left[rail] -= 1
        return True

    # ----------------------------------------------------------------- sharing
    async def run(self, fast: RedisLink, interval_s: float, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.sync(fast)
            except Exception:
                log.exception("health sync failed; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval_s)

    async def sync(self, fast: RedisLink, now: float | None = None) -> None:
        now = time.time() if now is None else now
        second = int(now)
        await asyncio.gather(*(self._push(fast, rail, second) for rail in self.rails))
        views = await asyncio.gather(*(self._pull(fast, rail, now) for rail in self.rails))
        for rail, view in zip(self.rails, views, strict=True):
            # Probes go out once the half-open window (whole seconds after it began) is
            # counting: a result pushed into the second it began would be ignored, and
            # with its probes spent the rail would stay half-open for good.
            if (view.state == HALF_OPEN and self._probed[rail] != view.since
                    and second > int(view.since)):
                self._probes_left[rail] = self.breaker.probes
                self._probed[rail] = view.since
            self._views[rail] = view

    async def _push(self, fast: RedisLink, rail: str, second: int) -> None:
        local = self._local[rail]
        ok, failed = local.ok, local.failed
        local.ok = local.failed = 0
        bucket = f"health:{rail}:{second}"
        ttl = int(self.breaker.window_s * 3) + 10
        if ok or failed:
            await asyncio.gather(fast.call("HINCRBY", bucket, "ok", ok),
                                 fast.call("HINCRBY", bucket, "failed", failed),
                                 fast.call("EXPIRE", bucket, ttl))
        cutoff = time.monotonic() - self.breaker.window_s
        while local.latencies and local.latencies[0][0] < cutoff:
            local.latencies.popleft()
        latencies = [ms for _, ms in local.latencies]
        if latencies:
            p50, p99 = _percentile(latencies, 0.5), _percentile(latencies, 0.99)
            await fast.call("HSET", f"health:{rail}:latency", self.process,
                            f"{p50:.3f},{p99:.3f},{second}")

    async def _pull(self, fast: RedisLink, rail: str, now: float) -> RailView:
        breaker = await fast.call("HGETALL", f"health:{rail}:breaker")
        fields = dict(zip(breaker[::2], breaker[1::2], strict=True))
        state = (fields.get(b"state") or CLOSED.encode()).decode()
        since = float(fields.get(b"since") or 0)
        window_start = now - self.breaker.window_s
        if state == HALF_OPEN:
            window_start = max(window_start, since + 1)  # whole seconds after it opened
        elif state == CLOSED:
            window_start = max(window_start, since)  # not the failures that opened it
        calls, failed = await self._window(fast, rail, int(window_start), int(now))
        p50, p99 = await self._latency(fast, rail, int(now))
        view = RailView(state, calls, failed, p50, p99, since)
        decided = self._decide(view, now, float(fields.get(b"until") or 0))
        if decided != state:
            await self._set_state(fast, rail, decided, now)
            log.warning("rail %s breaker %s -> %s (%d calls, %d failed, p99 %s ms)",
                        rail, state, decided, calls, failed, p99)
            since = now
        return RailView(decided, calls, failed, p50, p99, since)

    async def _window(self, fast: RedisLink, rail: str, start: int, end: int) -> tuple[int, int]:
        buckets = await asyncio.gather(*(
            fast.call("HMGET", f"health:{rail}:{second}", "ok", "failed")
            for second in range(start, end + 1)))
        ok = sum(int(b[0] or 0) for b in buckets)
        failed = sum(int(b[1] or 0) for b in buckets)
        return ok + failed, failed

    async def _latency(self, fast: RedisLink, rail: str, now: int) -> tuple[Any, Any]:
        flat = await fast.call("HGETALL", f"health:{rail}:latency")
        fresh = []
        for value in flat[1::2]:
            p50, p99, at = value.decode().split(",")
            if now - int(at) <= self.breaker.window_s:
                fresh.append((float(p50), float(p99)))
        if not fresh:
            return None, None
        # Across processes: the median of medians, and the worst p99.
        return _percentile([f[0] for f in fresh], 0.5), max(f[1] for f in fresh)

    def _decide(self, view: RailView, now: float, until: float) -> str:
        b = self.breaker
        if view.state == OPEN:
            return HALF_OPEN if now >= until else OPEN
        sick = view.calls >= b.min_calls and view.failed / view.calls >= b.error_rate
        slow = (view.calls >= b.min_calls and b.latency_ms > 0 and view.p99_ms is not None
                and view.p99_ms > b.latency_ms)
        if view.state == HALF_OPEN:
            if view.failed > 0:
                return OPEN
            return CLOSED if view.calls > 0 else HALF_OPEN
        return OPEN if (sick or slow) else CLOSED

    async def _set_state(self, fast: RedisLink, rail: str, state: str, now: float) -> None:
        until = now + self.breaker.cool_down_s if state == OPEN else 0
        await fast.call("HSET", f"health:{rail}:breaker", "state", state,
                        "since", repr(now), "until", repr(until))
