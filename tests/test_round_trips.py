"""The hot path's Redis budget: a created payment costs two round trips (the create
script and the transition script), nothing more. Counted with MONITOR on the real
redis-server, so any extra command — a stray GET, a third script — fails this test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import redis.asyncio as aioredis

from tests.conftest import Sim, gateway_settings
from tests.helpers import Gateway, payment_body, start_gateway

SENTINEL = "round-trip-test-done"


@pytest.fixture
async def quiet_gateway(redis_url: str, bank_sim: Sim, tmp_path: Path,
                        http: aiohttp.ClientSession) -> AsyncIterator[Gateway]:
    """No sweeper or webhook workers: only requests talk to Redis."""
    gw = await start_gateway(gateway_settings(redis_url, bank_sim, tmp_path), http,
                             background=False)
    yield gw
    await gw.close()


async def _top_level_commands(redis_url: str, during: object) -> list[list[str]]:
    """Commands clients sent while `during` ran (script-internal ones excluded)."""
    monitor_client = aioredis.Redis.from_url(redis_url)
    sentinel_client = aioredis.Redis.from_url(redis_url)
    commands: list[list[str]] = []
    try:
        await sentinel_client.ping()  # its connection opens before the watch begins
        async with monitor_client.monitor() as monitor:
            assert callable(during)
            await during()
            await sentinel_client.echo(SENTINEL)
            while True:
                entry = await monitor.next_command()
                words = entry["command"].split()
                if words[:2] == ["ECHO", SENTINEL]:
                    break
                if entry.get("client_type") != "lua":
                    commands.append(words)
    finally:
        await monitor_client.aclose()
        await sentinel_client.aclose()
    return commands


@pytest.mark.parametrize("method", ["instant", "bank"])
async def test_a_created_payment_costs_two_round_trips(
    quiet_gateway: Gateway, redis_url: str, method: str
) -> None:
    client, _ = await quiet_gateway.merchant()
    warm = await client.post("/v1/payments", payment_body("warm", method=method))
    assert warm.status == 201  # the API key is now cached in the gateway
    count = 10

    async def create() -> None:
        for i in range(count):
            body = payment_body(f"rt-{i}", method=method,
                                auth_code=f"1345678901234{i:04d}1")
            reply = await client.post("/v1/payments", body,
                                      headers={"Idempotency-Key": f"rt-key-{i}"})
            assert reply.status == 201 and reply.body["status"] == "succeeded"

    commands = await _top_level_commands(redis_url, create)
    names = [c[0].upper() for c in commands]
    assert names == ["EVALSHA"] * (2 * count), names
