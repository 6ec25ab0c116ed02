"""Fixtures: a real redis-server for the session, the bank simulator as a real HTTP
server per test, and a gateway on a real loopback port per test."""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from msgspec.structs import replace

from adapters.simkit.runtime import SimulatorOptions
from router.sandbox.embedded import EmbeddedRedis, free_port
from router.settings import RailSettings, Settings
from tests.helpers import Gateway, fast_settings, start_gateway
from tests.redis_cluster import LocalCluster, flush_all, redis_py_client


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """A 3-master / 3-replica Redis Cluster on loopback, started once when first asked."""
    cluster = LocalCluster(tmp_path_factory.mktemp("cluster"))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Tests marked `both_topologies` run once on a single Redis and once on the cluster."""
    if (metafunc.definition.get_closest_marker("both_topologies")
            and "redis_url" in metafunc.fixturenames):
        metafunc.parametrize("redis_topology", ["single", "cluster"], indirect=True)


@pytest.fixture
def redis_topology(request: pytest.FixtureRequest) -> str:
    return str(getattr(request, "param", "single"))


@pytest.fixture
async def redis_url(request: pytest.FixtureRequest, redis_topology: str) -> AsyncIterator[str]:
    """The session's Redis (or, for `both_topologies` tests, also the cluster), emptied
    for this test."""
    if redis_topology == "cluster":
        url = request.getfixturevalue("redis_cluster").url
    else:
        url = request.getfixturevalue("redis_server").url
    await flush_all(url)
    yield url


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[Any]:
    """redis-py, for assertions: a plain client, or a cluster client on the cluster."""
    client = redis_py_client(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@dataclass
class Sim:
    """A rail simulator serving on loopback, with its credential bundle."""

    rail: str
    base_url: str
    keys_dir: Path
    app: web.Application
    session: aiohttp.ClientSession

    @property
    def runtime(self) -> Any:
        return self.app[importlib.import_module(f"adapters.{self.rail}.simulator.app").SIM_KEY]

    async def ledger(self) -> dict[str, Any]:
        async with self.session.get(f"{self.base_url}/sim/ledger") as resp:
            body: dict[str, Any] = await resp.json()
            return body

    async def faults(self, **faults: float) -> None:
        async with self.session.post(f"{self.base_url}/sim/faults", json=faults) as resp:
            assert resp.status == 200, await resp.text()


BankSim = Sim  # the name most tests know it by


async def _start_sim(rail: str, keys_dir: Path,
                     http: aiohttp.ClientSession) -> tuple[Sim, web.AppRunner]:
    protocol = importlib.import_module(f"adapters.{rail}.protocol")
    simulator = importlib.import_module(f"adapters.{rail}.simulator.app")
    app = simulator.create_app(
        protocol.load_or_create_bundle(keys_dir),
        SimulatorOptions(time_scale=0.1, hang_seconds=5.0, seed=7))
    runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return Sim(rail, f"http://127.0.0.1:{port}", keys_dir, app, http), runner


@pytest.fixture
async def bank_sim(tmp_path: Path, http: aiohttp.ClientSession) -> AsyncIterator[Sim]:
    sim, runner = await _start_sim("bank", tmp_path / "bank-keys", http)
    yield sim
    await runner.cleanup()


@pytest.fixture(scope="session")
def wallet_keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """RSA bundles take a while to generate: one per wallet for the whole session."""
    keys = {}
    for rail in ("wechatpay", "alipay"):
        keys[rail] = tmp_path_factory.mktemp(f"{rail}-keys")
        importlib.import_module(f"adapters.{rail}.protocol").load_or_create_bundle(keys[rail])
    return keys


@pytest.fixture
async def wechat_sim(wallet_keys: dict[str, Path],
                     http: aiohttp.ClientSession) -> AsyncIterator[Sim]:
    sim, runner = await _start_sim("wechatpay", wallet_keys["wechatpay"], http)
    yield sim
    await runner.cleanup()


@pytest.fixture
async def alipay_sim(wallet_keys: dict[str, Path],
                     http: aiohttp.ClientSession) -> AsyncIterator[Sim]:
    sim, runner = await _start_sim("alipay", wallet_keys["alipay"], http)
    yield sim
    await runner.cleanup()


def rail_settings(*sims: Sim) -> tuple[RailSettings, ...]:
    return (*(RailSettings(name=s.rail, base_url=s.base_url, keys_dir=s.keys_dir, timeout_s=1.0)
              for s in sims), RailSettings(name="instant"))


def gateway_settings(redis_url: str, bank: Sim, tmp_path: Path, *more: Sim,
                     **changes: Any) -> Settings:
    settings = fast_settings(redis_url, rail_settings(bank, *more), free_port(),
                             str(tmp_path / "data"))
    return replace(settings, **changes) if changes else settings


@pytest.fixture
async def gateway(redis_url: str, bank_sim: BankSim, tmp_path: Path,
                  http: aiohttp.ClientSession) -> AsyncIterator[Gateway]:
    gw = await start_gateway(gateway_settings(redis_url, bank_sim, tmp_path), http)
    yield gw
    await gw.close()


@pytest.fixture
async def wallet_gateway(redis_url: str, bank_sim: Sim, wechat_sim: Sim, alipay_sim: Sim,
                         tmp_path: Path, http: aiohttp.ClientSession) -> AsyncIterator[Gateway]:
    """A gateway with every built-in rail, each on its simulator."""
    settings = gateway_settings(redis_url, bank_sim, tmp_path, wechat_sim, alipay_sim)
    gw = await start_gateway(settings, http)
    yield gw
    await gw.close()
