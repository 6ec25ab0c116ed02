"""Notification delivery: each rail's resend schedule and idea of an acknowledgement, with
the drops and duplicates the current faults ask for."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Protocol, TypeVar, final

import aiohttp

from adapters.simkit.faults import Faults

_T = TypeVar("_T")

Acknowledged = Callable[[aiohttp.ClientResponse], Awaitable[bool]]
# One attempt's body and headers: called afresh for every attempt, so each is signed anew.
Encode = Callable[[_T], tuple[bytes, Mapping[str, str]]]


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


class FaultDice(Protocol):
    """The current fault settings and the dice they are rolled with."""

    @property
    def faults(self) -> Faults: ...

    def roll(self, rate: float) -> bool: ...


@final
class Notifier:
    """Delivers notifications in the background, resending each until it is acknowledged."""

    __slots__ = ("_delivery", "_dice", "_session", "_tasks", "_time_scale")

    def __init__(self, delivery: Delivery, dice: FaultDice, time_scale: float) -> None:
        self._delivery = delivery
        self._dice = dice
        self._time_scale = time_scale
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def open(self) -> None:
        self._session = aiohttp.ClientSession()

    async def close(self) -> None:
        """Abandon the deliveries in flight and close the session."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None

    def send(self, url: str, payload: _T, encode: Encode[_T]) -> None:
        """Deliver `payload` to `url` in the background (nothing before `open`)."""
        if self._session is None:
            return
        task = asyncio.get_running_loop().create_task(
            self._deliver(self._session, url, payload, encode)
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def settled(self) -> None:
        """Wait until every notification in flight is acknowledged or abandoned."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _deliver(
        self, session: aiohttp.ClientSession, url: str, payload: _T, encode: Encode[_T]
    ) -> None:
        delivery, dice = self._delivery, self._dice
        for attempt, delay in enumerate((0.0, *delivery.retry_delays), start=1):
            if delay:
                await asyncio.sleep(delay * self._time_scale)
            if dice.roll(dice.faults.drop_notify_rate):
                continue
            if await self._post_once(session, url, *encode(payload)):
                if dice.roll(dice.faults.duplicate_notify_rate):
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
