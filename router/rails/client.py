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
from router.rails.instances import SEP, InstanceSource, base_rail
from router.routing.health import HealthBook

_MAX_INSTANCES = 20_000  # partner-mode instances kept per process (rebuilt when dropped)
_INSTANCE_TTL_S = 60.0  # then rebuilt from the provider's ids (a refreshed token applies)


@final
class RailClient:
    __slots__ = ("_adapters", "_health", "_instances", "_metrics", "_session", "_timeouts",
                 "instance_source")

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
        # Partner-mode instances (rails/instances.py), apart from the configured rails so
        # routing never sees them; built by `instance_source` when first met.
        self._instances: dict[str, tuple[float, Adapter]] = {}
        self.instance_source: InstanceSource | None = None

    def adapter(self, rail: str) -> Adapter:
        return self._adapters.get(rail) or self._instances[rail][1]

    async def resolve(self, rail: str) -> Adapter | None:
        """A configured rail's adapter, or the partner-mode instance a name stands for
        (built when first met, kept a minute); None when the name stands for nothing."""
        adapter = self._adapters.get(rail)
        if adapter is not None or SEP not in rail or self.instance_source is None:
            return adapter
        now = time.monotonic()
        kept = self._instances.get(rail)
        if kept is not None and kept[0] > now:
            return kept[1]
        adapter = await self.instance_source(rail)
        if adapter is None:
            self._instances.pop(rail, None)
            return None
        if len(self._instances) >= _MAX_INSTANCES:
            self._instances.clear()
        self._instances[rail] = (now + _INSTANCE_TTL_S, adapter)
        return adapter

    def has(self, rail: str) -> bool:
        return rail in self._adapters

    def names(self) -> list[str]:
        return sorted(self._adapters)

    def build(self, rail: str, op: Operation) -> HttpRequest | RailResult:
        """Build (and sign) `op` without sending it. A `RailError` raised here means the
        rail cannot take the request as it is: nothing was sent."""
        return self.adapter(rail).build(op)

    async def call(self, rail: str, op: Operation,
                   built: HttpRequest | RailResult | None = None) -> RailResult:
        """The rail's answer to `op` (sending `built` when the caller built it already);
        raises `RailError` (definitive or unknown)."""
        adapter = self._adapters.get(rail)
        if adapter is None:  # a partner-mode instance: counted under its rail table
            adapter = await self.resolve(rail)
            if adapter is None:
                raise RailError("RAIL_NOT_CONFIGURED", f"no rail {base_rail(rail)!r} acts "
                                "for this account any more", definitive=False)
            rail = base_rail(rail)
        op_name = type(op).__name__.lower()
        started = time.perf_counter()
        try:
            if built is None:
                built = adapter.build(op)
            if isinstance(built, RailResult):
                self._count(rail, op_name, built.status.value)
                self._record(rail, True, None)
                return built
            response = await self._send(rail, op_name, built.method, built.url,
                                        dict(built.headers), built.body)
            result = adapter.parse(op, response)
        except RailError as exc:
            self._count(rail, op_name, exc.code.lower())
            # A refusal the rail meant is a working rail; an unknown outcome or an
            # unreachable rail is not.
            healthy = exc.definitive and exc.code != RailErrorCode.UNREACHABLE
            self._record(rail, healthy, time.perf_counter() - started)
            raise
        self._count(rail, op_name, result.status.value)
        self._record(rail, True, time.perf_counter() - started)
        return result

    def _count(self, rail: str, op_name: str, result: str) -> None:
        self._metrics.child(self._metrics.rail_calls, rail, op_name, result).inc()

    def _record(self, rail: str, healthy: bool, latency_s: float | None) -> None:
        """For the breakers, and for the dashboard's per-rail figures."""
        self._health.record(rail, healthy, latency_s)
        self._metrics.live.rail_call(rail, healthy, latency_s)

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
            self._metrics.child(self._metrics.rail_latency, rail, op_name).observe(
                time.perf_counter() - started
            )
