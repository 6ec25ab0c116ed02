"""`payrouter reconcile` (API.md, "E-invoices (fapiao) and the journal"): the rail's own
bill of a day against the journal, with each kind of difference planted in the
simulator's bill."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Sim
from tests.helpers import Client, Gateway, eventually, payment_body

CHINA = timezone(timedelta(hours=8))


def reconcile(config: Path, redis_url: str, rail: str, day: str,
              merchant: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "router.cli", "reconcile", "--config", str(config),
         "--redis-url", redis_url, "--rail", rail, "--date", day, "--merchant", merchant],
        capture_output=True, text=True, timeout=120, check=False)


def config_for(tmp_path: Path, sim: Sim) -> Path:
    path = tmp_path / f"{sim.rail}.toml"
    path.write_text(f'[rails.{sim.rail}]\nbase_url = "{sim.base_url}"\n'
                    f'keys_dir = "{sim.keys_dir}"\n')
    return path


async def journaled(client: Client, count: int) -> None:
    async def enough() -> bool:
        got = await client.get("/v1/journal?limit=1000")
        return len(got.body["data"]) >= count

    await eventually(enough)


async def plant(sim: Sim, body: dict[str, Any]) -> None:
    async with sim.session.post(f"{sim.base_url}/sim/bills/plant", json=body) as resp:
        assert resp.status == 200, await resp.text()


@pytest.mark.parametrize("rail", ["wechatpay", "alipay"])
async def test_each_difference_is_listed(wallet_gateway: Gateway, redis_url: str,
                                         wechat_sim: Sim, alipay_sim: Sim, tmp_path: Path,
                                         rail: str) -> None:
    sim = wechat_sim if rail == "wechatpay" else alipay_sim
    code = "134567890123456781" if rail == "wechatpay" else "286123456789012341"
    client, merchant = await wallet_gateway.merchant()
    paid = []
    for i in range(3):
        got = await client.post("/v1/payments", payment_body(
            f"rc-{rail}-{i}", amount=500 + i, method=rail, auth_code=code))
        assert got.status == 201 and got.body["status"] == "succeeded", got.body
        paid.append(got.body)
    refund = await client.post(f"/v1/payments/{paid[0]['id']}/refunds",
                               {"amount": 100, "out_refund_no": f"rc-{rail}-r"})
    assert refund.status == 201, refund.body

    async def refunded() -> bool:
        got = await client.get(f"/v1/refunds/{refund.body['id']}")
        return bool(got.body["status"] == "succeeded")

    await eventually(refunded)
    await journaled(client, 4)
    day = datetime.now(UTC).astimezone(CHINA).strftime("%Y-%m-%d")
    config = config_for(tmp_path, sim)

    clean = await asyncio.to_thread(reconcile, config, redis_url, rail, day, merchant["id"])
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "0 difference(s)" in clean.stdout

    numbers = [p["attempts"][0]["rail_order_no"] for p in paid]
    await plant(sim, {"date": day, "extra": [{"out_trade_no": "NOT_OURS_1", "amount": 777}],
                      "drop": [numbers[1]], "amount_delta": {numbers[2]: 1}})
    found = await asyncio.to_thread(reconcile, config, redis_url, rail, day, merchant["id"])
    assert found.returncode == 1, found.stdout + found.stderr
    out = found.stdout
    assert "paid at the rail, unknown here: payment NOT_OURS_1" in out
    assert f"known here, missing from the bill: payment {numbers[1]}" in out
    assert f"amounts differ: payment {numbers[2]}  bill=503  journal=502" in out
    assert "3 difference(s)" in out
