"""Redis misbehaving between the gateway and its data: creation fails closed (503, and
nothing accepted without its record), and the gateway recovers when Redis does.

Rate limiting when Redis is unreachable fails closed too: the limits live in the same
script as the payment record, so a call that cannot be limited cannot be accepted."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from msgspec.structs import replace

from tests.conftest import Sim, gateway_settings
from tests.faultproxy import FaultProxy
from tests.helpers import Client, Gateway, payment_body, start_gateway


@pytest.fixture
async def proxy(redis_url: str) -> AsyncIterator[FaultProxy]:
    fault = FaultProxy(redis_url)
    await fault.start()
    yield fault
    await fault.stop()


@pytest.fixture
async def proxied(proxy: FaultProxy, redis_url: str, bank_sim: Sim, tmp_path: Path,
                  http: aiohttp.ClientSession) -> AsyncIterator[tuple[Gateway, Client]]:
    settings = gateway_settings(proxy.url, bank_sim, tmp_path)
    settings = replace(settings, redis=replace(settings.redis, command_timeout_s=0.5))
    gateway = await start_gateway(settings, http, background=False)
    client, _ = await gateway.merchant()  # while Redis is reachable: the key gets cached
    yield gateway, client
    await gateway.close()


async def _nothing_recorded(client: Client, otn: str, proxy: FaultProxy) -> None:
    proxy.mode = "pass"
    assert (await client.get(f"/v1/payments?out_trade_no={otn}")).status == 404


@pytest.mark.parametrize("fault", ["blackhole", "reset"])
async def test_creation_fails_closed_and_recovers(
    proxied: tuple[Gateway, Client], proxy: FaultProxy, bank_sim: Sim, fault: str
) -> None:
    _, client = proxied
    assert (await client.post("/v1/payments", payment_body("before"))).status == 201
    proxy.mode = fault
    proxy.reset_all()  # the connections in place break too
    refused = await client.post("/v1/payments", payment_body("during", method="instant"))
    assert refused.status == 503, refused.body
    assert refused.body["error"]["code"] == "store_unavailable"
    await _nothing_recorded(client, "during", proxy)
    after = await client.post("/v1/payments", payment_body("after"))
    assert after.status == 201 and after.body["status"] == "succeeded"


async def test_latency_slows_but_does_not_break(
    proxied: tuple[Gateway, Client], proxy: FaultProxy
) -> None:
    _, client = proxied
    proxy.latency_s = 0.05
    created = await client.post("/v1/payments", payment_body("slow", method="instant"))
    assert created.status == 201 and created.body["status"] == "succeeded"


async def test_a_gateway_started_while_redis_is_down_waits_for_it(
    proxy: FaultProxy, bank_sim: Sim, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    """A Redis restarting (or a cluster failing over) when a gateway starts delays the
    start instead of killing the process."""
    proxy.mode = "reset"
    settings = gateway_settings(proxy.url, bank_sim, tmp_path)
    starting = asyncio.create_task(start_gateway(settings, http))
    await proxy.refused.wait()  # the gateway tried, and was turned away
    assert not starting.done()
    proxy.mode = "pass"
    gateway = await asyncio.wait_for(starting, 10)
    try:
        client, _ = await gateway.merchant()
        created = await client.post("/v1/payments", payment_body("after-start"))
        assert created.status == 201 and created.body["status"] == "succeeded"
    finally:
        await gateway.close()
