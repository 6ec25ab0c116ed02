"""Cross-border pricing through the gateway (API.md, "Cross-border"): a merchant settled
in JPY prices in yen (no decimals), the payer's wallet pays CNY, and the payment shows
what the payer paid and the rail's rate as a decimal string; refunds are in yen."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import aiohttp
import pytest

from router.sandbox.embedded import free_port
from router.settings import RailSettings
from tests.asserts import assert_error
from tests.conftest import Sim
from tests.helpers import Gateway, eventually, fast_settings, start_gateway

CODE = "286123456789012341"  # an Alipay payer code that pays at once


@pytest.fixture
async def abroad(redis_url: str, alipay_sim: Sim, tmp_path: Path,
                 http: aiohttp.ClientSession) -> AsyncIterator[Gateway]:
    rails = (RailSettings(name="alipay", base_url=alipay_sim.base_url,
                          keys_dir=alipay_sim.keys_dir, timeout_s=1.0,
                          options={"settle_currency": "JPY"}),)
    gw = await start_gateway(fast_settings(redis_url, rails, free_port(),
                                           str(tmp_path / "data")), http)
    yield gw
    await gw.close()


async def test_yen_priced_cny_paid(abroad: Gateway, alipay_sim: Sim) -> None:
    client, merchant = await abroad.merchant()
    patched = await abroad.admin().patch(f"/v1/admin/merchants/{merchant['id']}",
                                         {"settlement_currency": "JPY"})
    assert patched.status == 200 and patched.body["settlement_currency"] == "JPY"
    async with alipay_sim.session.post(f"{alipay_sim.base_url}/sim/rates",
                                       json={"JPY": "0.04812"}) as resp:
        assert resp.status == 200, await resp.text()
    body = {"amount": 1000, "currency": "JPY", "out_trade_no": "jp-1", "scene": "quickpay",
            "method": "alipay", "description": "Matcha", "payer": {"auth_code": CODE}}
    paid = await client.post("/v1/payments", body)
    assert paid.status == 201 and paid.body["status"] == "succeeded", paid.body
    p = paid.body
    assert p["amount"] == 1000 and p["currency"] == "JPY"
    assert p["payer_amount"] == {"amount": 4812, "currency": "CNY"}
    rate = p["exchange_rate"]
    assert rate["from"] == "JPY" and rate["to"] == "CNY" and isinstance(rate["rate"], str)
    assert Decimal(rate["rate"]) == Decimal("0.04812")

    refund = await client.post(f"/v1/payments/{p['id']}/refunds",
                               {"amount": 400, "out_refund_no": "jp-1-r"})
    assert refund.status == 201 and refund.body["currency"] == "JPY", refund.body

    async def refunded() -> bool:
        got = await client.get(f"/v1/payments/{p['id']}")
        return bool(got.body["refunded_amount"] == 400)

    await eventually(refunded)

    usd = await client.post("/v1/payments", {**body, "currency": "USD",
                                             "out_trade_no": "jp-2"})
    assert_error(usd, 422, "validation_error", param="currency")
    too_much = await client.post("/v1/payments", {**body, "amount": 100_000_001,
                                                  "out_trade_no": "jp-3"})
    assert_error(too_much, 422, "validation_error", param="amount")
