"""A rail's adapter (made by its entry-point factory, with adapter options) inside the real
`RailClient`, against the rail's simulator serving on loopback, and a merchant endpoint
for its notifications."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

from adapters.base import Adapter, AdapterConfig, Operation, RailError, RailResult
from router.ops.metrics import Metrics
from router.rails.client import RailClient
from router.routing.health import HealthBook
from router.settings import BreakerSettings
from tests.conftest import Sim
from tests.simharness import Receiver

RAIL_TIMEOUT = 0.5  # below the simulators' hang time: a withheld answer times out quickly
WAIT = 5.0  # upper bound for a notification


@dataclass
class Rail:
    sim: Sim
    adapter: Adapter
    client: RailClient

    @classmethod
    def on(cls, sim: Sim, create_adapter: Callable[[AdapterConfig], Adapter],
           **options: object) -> Rail:
        adapter = create_adapter(AdapterConfig(name=sim.rail, base_url=sim.base_url,
                                               keys_dir=sim.keys_dir, options=options))
        client = RailClient(sim.session, {sim.rail: adapter}, {sim.rail: RAIL_TIMEOUT},
                            Metrics(), HealthBook([sim.rail], BreakerSettings()))
        return cls(sim, adapter, client)

    async def call(self, op: Operation) -> RailResult:
        return await self.client.call(self.sim.rail, op)

    async def outcome(self, op: Operation) -> RailResult | RailError:
        try:
            return await self.call(op)
        except RailError as exc:
            return exc

    async def control(self, path: str, payload: object = None) -> tuple[int, Any]:
        """A `/sim/*` control (POST with JSON, or GET without a payload)."""
        method = "GET" if payload is None else "POST"
        async with self.sim.session.request(method, f"{self.sim.base_url}{path}",
                                            json=payload) as resp:
            return resp.status, await resp.json(content_type=None)


@asynccontextmanager
async def merchant(acknowledge: bytes = b"success") -> AsyncIterator[Receiver]:
    """The merchant's notification endpoint: acknowledges with `acknowledge`, records all."""
    receiver = Receiver([], web.Response(body=acknowledge), WAIT)
    app = web.Application()
    app.router.add_post("/notify", receiver.handle)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    receiver.url = str(server.make_url("/notify"))
    try:
        yield receiver
    finally:
        await server.close()
