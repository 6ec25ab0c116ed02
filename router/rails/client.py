"""Performs adapter operations: the adapter builds and parses, this module does the I/O."""

from __future__ import annotations

import asyncio
import time
from typing import final

import aiohttp

from adapters.base import (
    Adapter,
    HttpRequest,
    HttpResponse,
    Operation,
    RailError,
    RailErrorCode,
    RailResult,
)
from router.ops.metrics import Metrics
from router.routing.health import HealthBook


@final
class RailClient:
    __slots__ = ("_adapters", "_health", "_metrics", "_session", "_timeouts")

    def __init__(
        self,
        session: aiohttp.ClientSession,
        adapters: dict[str, Adapter],
        timeouts: dict[str, float],
        metrics: Metrics,
        health: HealthBook,
    ) -> None:
        self._health = health
        self._session = session
        self._adapters = adapters
        self._timeouts = timeouts
        self._metrics = metrics

    def adapter(self, rail: str) -> Adapter:
        return self._adapters[rail]

    def has(self, rail: str) -> bool:
        return rail in self._adapters

    def names(self) -> list[str]:
        return sorted(self._adapters)

    def build(self, rail: str, op: Operation) -> HttpRequest | RailResult:
        """Build (and sign) `op` without sending it. A `RailError` raised here means the
        rail cannot take the request as it is: nothing was sent."""
        return self._adapters[rail].build(op)

    async def call(self, rail: str, op: Operation,
                   built: HttpRequest | RailResult | None = None) -> RailResult:
        """The rail's answer to `op` (sending `built` when the caller built it already);
        raises `RailError` (definitive or unknown)."""
        adapter = self._adapters[rail]
        op_name = type(op).__name__.lower()
        started = time.perf_counter()
        try:
            if built is None:
                built = adapter.build(op)
            if isinstance(built, RailResult):
                self._metrics.rail_calls.labels(rail, op_name, built.status.value).inc()
                self._health.record(rail, True, None)
                return built
            response = await self._send(rail, op_name, built.method, built.url,
                                        dict(built.headers), built.body)
            result = adapter.parse(op, response)
        except RailError as exc:
            self._metrics.rail_calls.labels(rail, op_name, exc.code.lower()).inc()
            # A refusal the rail meant is a working rail; an unknown outcome or an
            # unreachable rail is not.
            healthy = exc.definitive and exc.code != RailErrorCode.UNREACHABLE
            self._health.record(rail, healthy, time.perf_counter() - started)
            raise
        self._metrics.rail_calls.labels(rail, op_name, result.status.value).inc()
        self._health.record(rail, True, time.perf_counter() - started)
        return result

    async def _send(
        self, rail: str, op_name: str, method: str, url: str, headers: dict[str, str],
        body: bytes,
    ) -> HttpResponse:
        timeout = aiohttp.ClientTimeout(total=self._timeouts.get(rail, 10.0))
        started = time.perf_counter()
        try:
            async with self._session.request(
                method, url, data=body or None, headers=headers, timeout=timeout
            ) as resp:
                payload = await resp.read()
                return HttpResponse(resp.status, resp.headers, payload)
        except TimeoutError:
            raise RailError(RailErrorCode.TIMEOUT, "the rail did not answer in time",
                            definitive=False) from None
        except aiohttp.ClientConnectorError:
            # The connection was never made, so the request was never sent.
            raise RailError(RailErrorCode.UNREACHABLE, "cannot connect to the rail",
                            definitive=True) from None
        except (aiohttp.ClientError, asyncio.IncompleteReadError):
            raise RailError(RailErrorCode.CONNECTION_LOST, "the connection to the rail broke",
                            definitive=False) from None
        finally:
            self._metrics.rail_latency.labels(rail, op_name).observe(
                time.perf_counter() - started
            )
