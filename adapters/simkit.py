"""What the rail simulators share: fault settings, injected latency, withheld answers,
notification delivery (retries, drops, duplicates), timers and the shutdown lifecycle.

Each simulator's `Runtime` subclasses `SimRuntime` and keeps only what its rail does
differently: how requests are checked and answers signed, how a notification is encoded,
what counts as its acknowledgement and the resend schedule (`Delivery`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Protocol, TypeVar, final

import aiohttp
from aiohttp import web

__all__ = [
    "Delivery",
    "Faults",
    "SimRuntime",
    "any_2xx",
    "fault_routes",
    "install",
]

_T = TypeVar("_T")
_A = TypeVar("_A", bound="_Answer")
_R = TypeVar("_R", bound="SimRuntime")

Acknowledged = Callable[[aiohttp.ClientResponse], Awaitable[bool]]
# One attempt's body and headers: called afresh for every attempt, so each is signed anew.
Encode = Callable[[_T], tuple[bytes, Mapping[str, str]]]


@final
@dataclass(frozen=True, slots=True)
class Faults:
    error_rate: float = 0.0
    latency_ms: float = 0.0
    latency_jitter_ms: float = 0.0
    timeout_rate: float = 0.0
    drop_notify_rate: float = 0.0
    duplicate_notify_rate: float = 0.0

    @classmethod
    def from_json(cls, raw: object) -> Faults:
        """Validated settings; raises `ValueError` with a message fit for the caller."""
        if not isinstance(raw, dict):
            raise ValueError("body must be a JSON object")
        unknown = set(raw) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown fault settings: {sorted(unknown)}")
        values: dict[str, float] = {}
        for key, value in raw.items():
            if type(value) not in (int, float) or not math.isfinite(value) or value < 0:
                raise ValueError(f"{key} must be a non-negative number")
            if key.endswith("_rate") and value > 1:
                raise ValueError(f"{key} must be within [0, 1]")
            values[key] = float(value)
        return cls(**values)

    def to_json(self) -> dict[str, float]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


async def any_2xx(resp: aiohttp.ClientResponse) -> bool:
    await resp.read()
    return 200 <= resp.status < 300


@final
@dataclass(frozen=True, slots=True)
class Delivery:
    """How one rail delivers notifications."""

    name: str  # the rail, for log lines
    retry_delays: tuple[float, ...]  # before the 2nd, 3rd, ... attempt (× time_scale)
    timeout: float  # seconds per attempt
    logger: logging.Logger
    acknowledged: Acknowledged = any_2xx


class _Options(Protocol):
    @property
    def time_scale(self) -> float: ...
    @property
    def hang_seconds(self) -> float: ...
    @property
    def seed(self) -> int | None: ...


class _Answer(Protocol):
    @property
    def withhold(self) -> bool: ...


class SimRuntime:
    """Event-loop side shared by every simulator: faults, randomness, timers, deliveries."""

    __slots__ = (
        "_closing",
        "_delivery",
        "_hang_seconds",
        "_rng",
        "_session",
        "_tasks",
        "_time_scale",
        "_timers",
        "faults",
    )

    def __init__(self, options: _Options, delivery: Delivery) -> None:
        self.faults = Faults()
        self._time_scale = options.time_scale
        self._hang_seconds = options.hang_seconds
        self._delivery = delivery
        self._rng = random.Random(options.seed)
        self._timers: set[asyncio.TimerHandle] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._session: aiohttp.ClientSession | None = None
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
        if self._closing.is_set() or self._session is None:
            return
        task = asyncio.get_running_loop().create_task(
            self._deliver(self._session, url, payload, encode)
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(
        self, session: aiohttp.ClientSession, url: str, payload: _T, encode: Encode[_T]
    ) -> None:
        delivery = self._delivery
        for attempt, delay in enumerate((0.0, *delivery.retry_delays), start=1):
            if delay:
                await asyncio.sleep(delay * self._time_scale)
            if self.roll(self.faults.drop_notify_rate):
                continue
            if await self._post_once(session, url, *encode(payload)):
                if self.roll(self.faults.duplicate_notify_rate):
                    await self._post_once(session, url, *encode(payload))
                return
            delivery.logger.debug(
                "%s notification to %s not acknowledged (attempt %d)", delivery.name, url, attempt
            )
        delivery.logger.warning(
            "%s notification to %s abandoned after %d attempts",
            delivery.name,
            url,
            len(delivery.retry_delays) + 1,
        )

    async def _post_once(
        self, session: aiohttp.ClientSession, url: str, body: bytes, headers: Mapping[str, str]
    ) -> bool:
        try:
            async with session.post(
                url,
                data=body,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=self._delivery.timeout),
            ) as resp:
                return await self._delivery.acknowledged(resp)
        except (aiohttp.ClientError, TimeoutError):
            return False

    async def notifications_settled(self) -> None:
        """Wait until every notification in flight is acknowledged or abandoned."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

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
        self._session = aiohttp.ClientSession()
        try:
            yield
        finally:
            self.begin_shutdown()
            tasks = list(self._tasks)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self._session.close()
            self._session = None

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


def fault_routes(key: web.AppKey[_R]) -> list[web.RouteDef]:
    """`POST /sim/faults` (replace the settings) and `GET /sim/faults`."""

    async def set_faults(request: web.Request) -> web.Response:
        sim = request.app[key]
        try:
            sim.faults = Faults.from_json(json.loads(await request.read() or b"{}"))
        except ValueError as exc:
            return web.json_response({"code": "INVALID_REQUEST", "message": str(exc)}, status=400)
        return web.json_response(sim.faults.to_json())

    async def get_faults(request: web.Request) -> web.Response:
        return web.json_response(request.app[key].faults.to_json())

    return [web.post("/sim/faults", set_faults), web.get("/sim/faults", get_faults)]
