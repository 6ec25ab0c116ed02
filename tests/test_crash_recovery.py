"""A gateway killed mid-request (kill -9) and restarted: the payment ends consistent with
the rail's ledger, the idempotency claim of the dead request does not block its key
forever, and recovering it never charges twice."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from router.sandbox.embedded import free_port
from tests.conftest import BankSim
from tests.helpers import ADMIN_TOKEN, Client, eventually, payment_body
from tests.processes import GatewayProcess, write_config


@pytest.fixture
async def gateway_process(redis_url: str, bank_sim: BankSim, tmp_path: Path,
                          http: aiohttp.ClientSession) -> Any:
    config = write_config(tmp_path / "payrouter.toml", redis_url=redis_url,
                          bank_url=bank_sim.base_url, bank_keys=bank_sim.keys_dir,
                          data_dir=tmp_path / "data")
    proc = GatewayProcess(config, free_port(), tmp_path / "gateway.log")
    await proc.start(http)
    yield proc
    proc.stop()


async def _merchant(http: aiohttp.ClientSession, base: str) -> Client:
    admin = Client(http, base, ADMIN_TOKEN)
    created = await admin.post("/v1/admin/merchants", {"name": "Crash shop"})
    assert created.status == 201
    return Client(http, base, created.body["api_key"])


async def _charged_at_rail(bank_sim: BankSim, otn_prefix: str) -> dict[str, Any]:
    holder: dict[str, Any] = {}

    async def charged() -> bool:
        orders = (await bank_sim.ledger())["orders"]
        holder.update({k: v for k, v in orders.items() if v["charged"] > 0})
        return bool(holder)

    await eventually(charged, timeout=10)
    return holder


async def test_killed_mid_request_then_retried_with_same_key(
    gateway_process: GatewayProcess, bank_sim: BankSim, http: aiohttp.ClientSession
) -> None:
    client = await _merchant(http, gateway_process.base)
    body = payment_body("crash-1", auth_code="134567890123456789")  # ...9: answer withheld
    key = {"Idempotency-Key": "crash-key-1"}
    pending = asyncio.create_task(client.post("/v1/payments", body, headers=key))
    await _charged_at_rail(bank_sim, "crash-1")  # the rail has taken the money
    gateway_process.kill()  # ... and the gateway dies before it hears about it
    with pytest.raises(aiohttp.ClientError):
        await pending

    await gateway_process.start(http)
    # The dead request's claim is honoured until its lease runs out, then taken over;
    # the takeover asks the rail first and finds the charge.
    async def settled() -> bool:
        retried = await client.post("/v1/payments", body, headers=key)
        assert retried.status in (201, 409), retried.body
        if retried.status == 409:
            assert retried.body["error"]["code"] == "idempotency_key_in_use"
            return False
        assert retried.body["status"] == "succeeded"
        return True

    await eventually(settled, timeout=15, interval=0.2)
    replay = await client.post("/v1/payments", body, headers=key)
    assert replay.headers.get("Idempotent-Replayed") == "true"
    assert replay.body["status"] == "succeeded"

    ledger = await bank_sim.ledger()
    assert ledger["totals"]["charges"] == 1  # never charged twice
    order = ledger["orders"][replay.body["attempts"][0]["rail_order_no"]]
    assert order["charged"] == body["amount"]


async def test_killed_mid_request_settled_by_sweeper_after_restart(
    gateway_process: GatewayProcess, bank_sim: BankSim, http: aiohttp.ClientSession
) -> None:
    client = await _merchant(http, gateway_process.base)
    body = payment_body("crash-2", auth_code="134567890123456789")
    pending = asyncio.create_task(client.post("/v1/payments", body))
    await _charged_at_rail(bank_sim, "crash-2")
    gateway_process.kill()
    with pytest.raises(aiohttp.ClientError):
        await pending
    await gateway_process.start(http)

    async def succeeded() -> bool:
        found = await client.get("/v1/payments?out_trade_no=crash-2")
        assert found.status == 200
        return bool(found.body["status"] == "succeeded")

    await eventually(succeeded, timeout=15)
    assert (await bank_sim.ledger())["totals"]["charges"] == 1


async def test_killed_before_the_rail_answered_a_declined_charge(
    gateway_process: GatewayProcess, bank_sim: BankSim, http: aiohttp.ClientSession
) -> None:
    """The rail declines, the gateway dies before recording it: the sweeper's query learns
    the decline, and the payment fails with nothing charged."""
    client = await _merchant(http, gateway_process.base)
    await bank_sim.faults(latency_ms=1500)  # the decline arrives after the kill
    body = payment_body("crash-3", auth_code="134567890123456782")
    pending = asyncio.create_task(client.post("/v1/payments", body))

    async def ordered() -> bool:
        return bool((await bank_sim.ledger())["orders"])

    await eventually(ordered, timeout=10)
    gateway_process.kill()
    with pytest.raises(aiohttp.ClientError):
        await pending
    await bank_sim.faults()
    await gateway_process.start(http)

    async def failed() -> bool:
        found = await client.get("/v1/payments?out_trade_no=crash-3")
        return bool(found.body["status"] == "failed")

    await eventually(failed, timeout=15)
    assert (await bank_sim.ledger())["totals"]["charges"] == 0
