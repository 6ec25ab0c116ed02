"""Fixtures: a real redis-server for the session, the bank simulator as a real HTTP
server per test, and a gateway on a real loopback port per test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis
from aiohttp import web

from adapters.bank import protocol as bank_protocol
from adapters.bank import simulator as bank_simulator
from router.embedded import EmbeddedRedis, free_port
from router.settings import RailSettings, Settings
from tests.helpers import Gateway, fast_settings, start_gateway


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def redis_url(redis_server: EmbeddedRedis) -> AsyncIterator[str]:
    """The session's Redis, emptied for this test."""
    client = aioredis.Redis.from_url(redis_server.url)
    await client.flushall()
    await client.aclose()
    yield redis_server.url


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@dataclass
class BankSim:
    base_url: str
    keys_dir: Path
    app: web.Application
    session: aiohttp.ClientSession

    @property
    def runtime(self) -> bank_simulator.Runtime:
        return self.app[bank_simulator.SIM_KEY]

    async def ledger(self) -> dict[str, Any]:
        async with self.session.get(f"{self.base_url}/sim/ledger") as resp:
            body: dict[str, Any] = await resp.json()
            return body

    async def faults(self, **faults: float) -> None:
        async with self.session.post(f"{self.base_url}/sim/faults", json=faults) as resp:
            assert resp.status == 200, await resp.text()


@pytest.fixture
async def bank_sim(tmp_path: Path, http: aiohttp.ClientSession) -> AsyncIterator[BankSim]:
    keys_dir = tmp_path / "bank-keys"
    creds = bank_protocol.load_or_create_bundle(keys_dir)
    app = bank_simulator.create_app(
        creds, bank_simulator.SimulatorOptions(time_scale=0.1, hang_seconds=5.0, seed=7))
    runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield BankSim(f"http://127.0.0.1:{port}", keys_dir, app, http)
    await runner.cleanup()


def gateway_settings(redis_url: str, bank: BankSim, tmp_path: Path, **changes: Any) -> Settings:
    rails = (
        RailSettings(name="bank", base_url=bank.base_url, keys_dir=bank.keys_dir, timeout_s=1.0),
        RailSettings(name="instant"),
    )
    settings = fast_settings(redis_url, rails, free_port(), str(tmp_path / "data"))
    return replace(settings, **changes) if changes else settings


@pytest.fixture
async def gateway(redis_url: str, bank_sim: BankSim, tmp_path: Path,
                  http: aiohttp.ClientSession) -> AsyncIterator[Gateway]:
    gw = await start_gateway(gateway_settings(redis_url, bank_sim, tmp_path), http)
    yield gw
    await gw.close()
