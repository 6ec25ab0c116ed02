"""Graceful shutdown: SIGTERM lets a request in flight finish with its real answer, and
the process exits cleanly."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp

from router.sandbox.embedded import free_port
from tests.conftest import Sim
from tests.helpers import ADMIN_TOKEN, Client, eventually, payment_body
from tests.processes import GatewayProcess, write_config


async def test_sigterm_finishes_the_request_in_flight(
    redis_url: str, bank_sim: Sim, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    config = write_config(tmp_path / "payrouter.toml", redis_url=redis_url,
                          bank_url=bank_sim.base_url, bank_keys=bank_sim.keys_dir,
                          data_dir=tmp_path / "data")
    gateway = GatewayProcess(config, free_port(), tmp_path / "gateway.log")
    await gateway.start(http)
    try:
        admin = Client(http, gateway.base, ADMIN_TOKEN)
        client = Client(http, gateway.base,
                        (await admin.post("/v1/admin/merchants", {"name": "s"})).body["api_key"])
        await bank_sim.faults(latency_ms=1500)  # the rail answers slowly
        in_flight = asyncio.create_task(client.post("/v1/payments", payment_body("term-1")))

        async def at_the_rail() -> bool:
            return bool((await bank_sim.ledger())["orders"])

        await eventually(at_the_rail)
        assert gateway.proc is not None
        gateway.proc.terminate()  # SIGTERM while the gateway waits for the rail
        reply = await in_flight
        assert reply.status == 201 and reply.body["status"] == "succeeded"
        assert await asyncio.to_thread(gateway.proc.wait, 20) == 0
        assert "Traceback" not in gateway.log.read_text()
    finally:
        gateway.stop()
