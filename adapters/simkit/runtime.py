"""The event-loop side every simulator shares: fault dice, timers, notifications, answers
that fail, hang or come late, and the shutdown lifecycle.

Each rail's `Runtime` subclasses `SimRuntime` and adds what its rail does differently:
how requests are checked and answers signed, how a notification is encoded.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar, final

from aiohttp import web

from adapters.simkit.delivery import Delivery, Encode, Notifier
from adapters.simkit.faults import Faults

_T = TypeVar("_T")
_A = TypeVar("_A", bound="_Answer")
_R = TypeVar("_R", bound="SimRuntime")

Schedule = Callable[[float, Callable[[], None]], None]  # (unscaled delay, callback)


@final
@dataclass(frozen=True, slots=True)
class SimulatorOptions:
    time_scale: float = 1.0  # multiplies every delay: confirmations, refunds, expiry, resends
    hang_seconds: float = 30.0  # how long a withheld answer hangs before the connection drops
    seed: int | None = None  # seeds the fault dice


class _Answer(Protocol):
    @property
    def withhold(self) -> bool: ...


class SimRuntime:
    """Event-loop side shared by every simulator: faults, randomness, timers, deliveries."""

    __slots__ = (
        "_closing",
        "_hang_seconds",
        "_notifier",
        "_rng",
        "_time_scale",
        "_timers",
        "delivery",
        "faults",
    )

    def __init__(self, options: SimulatorOptions, delivery: Delivery) -> None:
        self.faults = Faults()
        self.delivery = delivery
        self._time_scale = options.time_scale
        self._hang_seconds = options.hang_seconds
        self._rng = random.Random(options.seed)
        self._timers: set[asyncio.TimerHandle] = set()
        self._notifier = Notifier(delivery, self, options.time_scale)
        self._closing = asyncio.Event()

    def roll(self, rate: float) -> bool:
        # Only draw when a fault is on, so fault-free runs leave the sequence untouched.
        return rate > 0 and self._rng.random() < rate

    # ----------------------------------------------------------------- timers
    def schedule(self, delay: float, callback: Callable[[], None]) -> None:
        if self._closing.is_set():
            return
        handle: asyncio.TimerHandle

        def fire() -> None:
            self._timers.discard(handle)
            callback()

        handle = asyncio.get_running_loop().call_later(delay * self._time_scale, fire)
        self._timers.add(handle)

    # ----------------------------------------------------------------- notifications
    def notify(self, url: str, payload: _T, encode: Encode[_T]) -> None:
        """Deliver `payload` to `url` in the background, resending until acknowledged."""
        if not self._closing.is_set():
            self._notifier.send(url, payload, encode)

    async def notifications_settled(self) -> None:
        """Wait until every notification in flight is acknowledged or abandoned."""
        await self._notifier.settled()

    # ----------------------------------------------------------------- answers
    async def perform(
        self,
        request: web.Request,
        apply: Callable[[], _A],
        answer: Callable[[_A], web.Response],
        system_error: Callable[[], web.Response],
    ) -> web.StreamResponse:
        """Apply an authentic call under the current faults: fail it before applying,
        withhold the answer after applying, or answer late."""
        if self.roll(self.faults.error_rate):
            await self.latency()
            return system_error()  # not applied
        result = apply()
        if result.withhold or self.roll(self.faults.timeout_rate):
            return await self.withhold(request)
        await self.latency()
        return answer(result)

    async def latency(self) -> None:
        faults = self.faults
        if faults.latency_ms <= 0 and faults.latency_jitter_ms <= 0:
            return
        jitter = self._rng.uniform(-faults.latency_jitter_ms, faults.latency_jitter_ms)
        await asyncio.sleep(max(0.0, faults.latency_ms + jitter) / 1000)

    async def withhold(self, request: web.Request) -> web.Response:
        """Hang, then drop the connection without a status line."""
        # A plain wait: cancelled on client disconnect when the runner has
        # handler_cancellation=True, and cut short by shutdown in any case.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closing.wait(), self._hang_seconds)
        if request.transport is not None:
            request.transport.close()
        # Writing this to the closed transport fails inside aiohttp, which then
        # treats the exchange as a client disconnect: nothing is ever sent.
        return web.Response(status=204)

    # ----------------------------------------------------------------- lifecycle
    async def context(self, app: web.Application) -> AsyncIterator[None]:
        self._notifier.open()
        try:
            yield
        finally:
            self.begin_shutdown()
            await self._notifier.close()

    def begin_shutdown(self) -> None:
        """Wake hanging handlers and stop timers; no new work is accepted afterwards."""
        self._closing.set()
        for handle in self._timers:
            handle.cancel()
        self._timers.clear()


def install(app: web.Application, key: web.AppKey[_R], sim: _R) -> None:
    """Store `sim` under `key` and tie its lifecycle to the application's."""
    app[key] = sim
    app.cleanup_ctx.append(sim.context)

    async def on_shutdown(app: web.Application) -> None:
        app[key].begin_shutdown()

    # on_shutdown runs before aiohttp waits for in-flight handlers: hanging ones wake now.
    app.on_shutdown.append(on_shutdown)
