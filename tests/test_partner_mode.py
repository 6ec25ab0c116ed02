"""Service-provider (partner) mode: a merchant that is a WeChat Pay sub-merchant of a
service provider is routed, through its own `rails` mapping, to a dedicated rail that
speaks the partner endpoints; no other merchant can reach that rail."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from msgspec.structs import replace

from router.settings import RailSettings
from tests.conftest import Sim, gateway_settings
from tests.helpers import Gateway, eventually, payment_body, start_gateway

SUB_MCHID = "1900000109"


@pytest.fixture
async def partner_gateway(redis_url: str, bank_sim: Sim, wechat_sim: Sim, tmp_path: Path,
                          http: aiohttp.ClientSession) -> AsyncIterator[Gateway]:
    settings = gateway_settings(redis_url, bank_sim, tmp_path, wechat_sim)
    partner = RailSettings(
        name="wechatpay-sp", base_url=wechat_sim.base_url, keys_dir=wechat_sim.keys_dir,
        timeout_s=1.0,
        options={"adapter": "wechatpay", "sub_mchid": SUB_MCHID, "dedicated": True},
    )
    gw = await start_gateway(replace(settings, rails=(*settings.rails, partner)), http)
    yield gw
    await gw.close()


async def test_sub_merchant_pays_through_partner_endpoints(
    partner_gateway: Gateway, wechat_sim: Sim
) -> None:
    client, created = await partner_gateway.merchant(
        "Sub shop", rails={"wechatpay": "wechatpay-sp"})
    native = await client.post("/v1/payments", payment_body(
        "sp-1", scene="native", method="wechatpay"))
    assert native.status == 201, native.body
    assert native.body["method"] == "wechatpay"
    assert native.body["adapter"] == "wechatpay-sp"
    assert native.body["action"]["type"] == "qr_code"
    order_no = native.body["attempts"][0]["rail_order_no"]
    assert f"{SUB_MCHID}/{order_no}" in (await wechat_sim.ledger())["orders"]

    paid = await client.post(f"/v1/sandbox/payments/{native.body['id']}/pay")
    assert paid.status == 200, paid.body
    assert paid.body["status"] == "succeeded"
    refund = await client.post(f"/v1/payments/{native.body['id']}/refunds",
                               {"amount": 400, "out_refund_no": "sp-r1"})
    assert refund.status == 201, refund.body

    async def refunded() -> bool:
        order = (await wechat_sim.ledger())["orders"][f"{SUB_MCHID}/{order_no}"]
        return bool(order["refunded"] == 400)

    await eventually(refunded)
    ledger = await wechat_sim.ledger()
    assert ledger["orders"][f"{SUB_MCHID}/{order_no}"]["charges"] == 1
    merchant = await partner_gateway.admin().get(f"/v1/admin/merchants/{created['id']}")
    assert merchant.body["rails"] == {"wechatpay": "wechatpay-sp"}


async def test_other_merchants_cannot_reach_a_dedicated_rail(
    partner_gateway: Gateway, wechat_sim: Sim
) -> None:
    client, _ = await partner_gateway.merchant("Direct shop")
    named = await client.post("/v1/payments", payment_body(
        "sp-2", scene="native", method="wechatpay-sp"))
    assert named.status == 422 and named.body["error"]["param"] == "method"
    direct = await client.post("/v1/payments", payment_body(
        "sp-3", scene="native", method="wechatpay"))
    assert direct.status == 201 and direct.body["adapter"] == "wechatpay"
    order_no = direct.body["attempts"][0]["rail_order_no"]
    assert order_no in (await wechat_sim.ledger())["orders"]  # no sub-merchant prefix


async def test_mapping_must_name_a_rail_of_that_adapter(partner_gateway: Gateway) -> None:
    _, created = await partner_gateway.merchant("Shop")
    path = f"/v1/admin/merchants/{created['id']}"
    wrong_kind = await partner_gateway.admin().patch(path, {"rails": {"alipay": "wechatpay-sp"}})
    assert wrong_kind.status == 422 and wrong_kind.body["error"]["param"] == "rails.alipay"
    unknown = await partner_gateway.admin().patch(path, {"rails": {"wechatpay": "nope"}})
    assert unknown.status == 422
    cleared = await partner_gateway.admin().patch(path, {"rails": None})
    assert cleared.status == 200 and cleared.body["rails"] == {}
