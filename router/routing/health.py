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
import enum
import logging
import os
import socket
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Final, final

from router.settings import BreakerSettings
from router.store.health import HealthStore

log = logging.getLogger("payrouter.health")

class BreakerState(enum.StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"

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

    state: BreakerState = BreakerState.CLOSED
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
    __slots__ = ("_local", "_probed", "_probes_left", "_views", "breaker", "epoch", "process",
                 "rails")

    def __init__(self, rails: Iterable[str], breaker: BreakerSettings) -> None:
        self.rails = tuple(rails)
        self.breaker = breaker
        self.process = f"{socket.gethostname()}-{os.getpid()}"
        self._local = {rail: _Local() for rail in self.rails}
        self._views = {rail: RailView() for rail in self.rails}
        self._probes_left = {rail: 0 for rail in self.rails}
        self._probed = {rail: -1.0 for rail in self.rails}  # half-open spell probes went to
        # Counts breaker state changes: a routing decision cached under another epoch is
        # stale (router.py).
        self.epoch = 0

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
        if state == BreakerState.OPEN:
            return False
        if state == BreakerState.HALF_OPEN:
            if self._probes_left.get(rail, 0) <= 0:
                return False
            self._probes_left[rail] -= 1
        return True

    # ----------------------------------------------------------------- sharing
    async def run(self, store: HealthStore, interval_s: float, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.sync(store)
            except Exception:
                log.exception("health sync failed; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval_s)

    async def sync(self, store: HealthStore, now: float | None = None) -> None:
        now = time.time() if now is None else now
        second = int(now)
        await asyncio.gather(*(self._push(store, rail, second) for rail in self.rails))
        views = await asyncio.gather(*(self._pull(store, rail, now) for rail in self.rails))
        for rail, view in zip(self.rails, views, strict=True):
            # Probes go out once the half-open window (whole seconds after it began) is
            # counting: a result pushed into the second it began would be ignored, and
            # with its probes spent the rail would stay half-open for good.
            if (view.state == BreakerState.HALF_OPEN and self._probed[rail] != view.since
                    and second > int(view.since)):
                self._probes_left[rail] = self.breaker.probes
                self._probed[rail] = view.since
            if view.state is not self._views[rail].state:
                self.epoch += 1
            self._views[rail] = view

    async def _push(self, store: HealthStore, rail: str, second: int) -> None:
        local = self._local[rail]
        ok, failed = local.ok, local.failed
        local.ok = local.failed = 0
        if ok or failed:
            await store.add_calls(rail, second, ok, failed, int(self.breaker.window_s * 3) + 10)
        cutoff = time.monotonic() - self.breaker.window_s
        while local.latencies and local.latencies[0][0] < cutoff:
            local.latencies.popleft()
        latencies = [ms for _, ms in local.latencies]
        p50, p99 = _percentile(latencies, 0.5), _percentile(latencies, 0.99)
        if p50 is not None and p99 is not None:
            await store.set_latency(rail, self.process, p50, p99, second)

    async def _pull(self, store: HealthStore, rail: str, now: float) -> RailView:
        stored, since, until = await store.breaker(rail)
        state = BreakerState(stored) if stored else BreakerState.CLOSED
        window_start = now - self.breaker.window_s
        if state == BreakerState.HALF_OPEN:
            window_start = max(window_start, since + 1)  # whole seconds after it opened
        elif state == BreakerState.CLOSED:
            window_start = max(window_start, since)  # not the failures that opened it
        calls, failed = await store.calls(rail, int(window_start), int(now))
        p50, p99 = await self._latency(store, rail, int(now))
        view = RailView(state, calls, failed, p50, p99, since)
        decided = self._decide(view, now, until)
        if decided != state:
            until = now + self.breaker.cool_down_s if decided is BreakerState.OPEN else 0
            await store.set_breaker(rail, decided, now, until)
            log.warning("rail %s breaker %s -> %s (%d calls, %d failed, p99 %s ms)",
                        rail, state, decided, calls, failed, p99)
            since = now
        return RailView(decided, calls, failed, p50, p99, since)

    async def _latency(self, store: HealthStore, rail: str, now: int) -> tuple[Any, Any]:
        fresh = [(p50, p99) for p50, p99, at in await store.latencies(rail)
                 if now - at <= self.breaker.window_s]
        if not fresh:
            return None, None
        # Across processes: the median of medians, and the worst p99.
        return _percentile([f[0] for f in fresh], 0.5), max(f[1] for f in fresh)

    def _decide(self, view: RailView, now: float, until: float) -> BreakerState:
        b = self.breaker
        if view.state == BreakerState.OPEN:
            return BreakerState.HALF_OPEN if now >= until else BreakerState.OPEN
        sick = view.calls >= b.min_calls and view.failed / view.calls >= b.error_rate
        slow = (view.calls >= b.min_calls and b.latency_ms > 0 and view.p99_ms is not None
                and view.p99_ms > b.latency_ms)
        if view.state == BreakerState.HALF_OPEN:
            if view.failed > 0:
                return BreakerState.OPEN
            return BreakerState.CLOSED if view.calls > 0 else BreakerState.HALF_OPEN
        return BreakerState.OPEN if (sick or slow) else BreakerState.CLOSED
