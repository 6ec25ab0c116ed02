"""Durability: in the strict profile (fsync on every write), Redis killed with -9 under
load and restarted loses no payment the gateway acknowledged."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
from msgspec.structs import replace

from router.sandbox.embedded import EmbeddedRedis, free_port
from router.settings import LimitSettings, RailSettings, RateLimit
from tests.helpers import eventually, fast_settings, payment_body, start_gateway

UNLIMITED = RateLimit(1e9, 10**9)


async def test_strict_redis_killed_under_load_loses_no_acknowledged_payment(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    server = EmbeddedRedis(tmp_path / "redis", appendfsync="always")
    url = server.start()
    settings = fast_settings(url, (RailSettings(name="instant"),), free_port(),
                             str(tmp_path / "data"))
    settings = replace(settings, redis=replace(settings.redis, durability="strict"),
                       limits=LimitSettings(merchant=UNLIMITED, payer=UNLIMITED))
    gateway = await start_gateway(settings, http, background=False)
    restarted: EmbeddedRedis | None = None
    try:
        client, _ = await gateway.merchant()
        acknowledged: dict[str, str] = {}
        refused: list[int] = []
        stop = asyncio.Event()

        async def load(worker: int) -> None:
            n = 0
            while not stop.is_set():
                n += 1
                body = payment_body(f"d-{worker}-{n}", method="instant",
                                    auth_code=f"13{worker:02d}{n:013d}1")
                try:
                    reply = await client.post("/v1/payments", body)
                except aiohttp.ClientError:
                    continue
                if reply.status == 201:
                    acknowledged[reply.body["id"]] = reply.body["status"]
                else:
                    refused.append(reply.status)

        workers = [asyncio.create_task(load(w)) for w in range(8)]

        async def enough() -> bool:
            return len(acknowledged) >= 150

        await eventually(enough, timeout=30)
        server.kill()  # SIGKILL while requests are in flight

        async def refusing() -> bool:
            return bool(refused)

        await eventually(refusing, timeout=10)  # the gateway fails closed meanwhile
        stop.set()
        await asyncio.gather(*workers)
        assert set(refused) == {503}

        restarted = EmbeddedRedis(tmp_path / "redis", appendfsync="always")
        assert restarted.start() == url
        for pid, status in acknowledged.items():
            found = await client.get(f"/v1/payments/{pid}")
            assert found.status == 200, (pid, found.body)
            assert found.body["status"] == status == "succeeded"
    finally:
        await gateway.close()
        if restarted is not None:
            restarted.stop()
        server.stop()
