"""Cross-platform routing without rules: the payer's own wallet decides.

A marketplace whose home rail is one wallet offers the other — a QR for the other
wallet to scan, or in-app payment where the payer already is — and a merchant's mini
program runs inside either wallet's app; the payer's wallet (their payer code, openid or
buyer id, or their explicit choice) picks the rail."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from msgspec.structs import replace

from tests.conftest import Sim, gateway_settings
from tests.helpers import Gateway, start_gateway

OPENID = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"
BUYER_ID = "2088102146225135"


@pytest.fixture
async def marketplace(redis_url: str, bank_sim: Sim, wechat_sim: Sim, alipay_sim: Sim,
                      tmp_path: Path, http: aiohttp.ClientSession) -> AsyncIterator[Gateway]:
    """Home rail WeChat Pay (the configured default); Alipay offered beside it."""
    settings = gateway_settings(redis_url, bank_sim, tmp_path, wechat_sim, alipay_sim)
    gw = await start_gateway(replace(settings, default_method="wechatpay"), http)
    yield gw
    await gw.close()


def _body(otn: str, scene: str, payer: dict[str, str]) -> dict[str, Any]:
    return {"amount": 1000, "currency": "CNY", "out_trade_no": otn, "scene": scene,
            "description": "Order", "payer": payer}


@pytest.mark.parametrize(("code", "rail"), [
    ("134567890123456781", "wechatpay"),   # WeChat Pay payer code: 18 digits, 10-15
    ("284567890123456781", "alipay"),      # Alipay payer code: 16-24 digits, 25-30
    ("6212345678901234561", "bank"),       # UnionPay QR payment code: 19 digits, 62
])
async def test_one_counter_scanner_takes_any_wallets_code(
    marketplace: Gateway, code: str, rail: str
) -> None:
    client, _ = await marketplace.merchant()
    reply = await client.post("/v1/payments", _body(f"scan-{rail}", "quickpay",
                                                    {"auth_code": code}))
    assert reply.status == 201, reply.body
    assert reply.body["adapter"] == rail and reply.body["status"] == "succeeded"
    assert reply.body["method"] == rail
    if rail != "bank":
        wallet = "wechat" if rail == "wechatpay" else "alipay"
        assert reply.body["routing"]["reason"] == f"the payer's wallet ({wallet}) first"


@pytest.mark.parametrize(("payer", "rail"), [
    ({"openid": OPENID}, "wechatpay"),
    ({"buyer_id": BUYER_ID}, "alipay"),
])
async def test_mini_program_runs_in_either_wallets_app(
    marketplace: Gateway, payer: dict[str, str], rail: str
) -> None:
    client, _ = await marketplace.merchant()
    reply = await client.post("/v1/payments", _body(f"mp-{rail}", "mini_program", payer))
    assert reply.status == 201, reply.body
    assert reply.body["adapter"] == rail and reply.body["scene"] == "mini_program"
    assert reply.body["action"]["type"] == "sdk_params"
    paid = await client.post(f"/v1/sandbox/payments/{reply.body['id']}/pay")
    assert paid.body["status"] == "succeeded"


async def test_rival_wallet_checkout_by_the_payers_choice(
    marketplace: Gateway, alipay_sim: Sim, wechat_sim: Sim
) -> None:
    client, _ = await marketplace.merchant()
    home = await client.post("/v1/payments", _body("co-home", "native", {}))
    assert home.body["adapter"] == "wechatpay"  # nobody chose: the home rail
    assert home.body["routing"]["reason"] == "default order of rails taking the scene"
    rival = await client.post("/v1/payments", _body("co-rival", "native", {"wallet": "alipay"}))
    assert rival.status == 201 and rival.body["adapter"] == "alipay"
    assert rival.body["action"]["type"] == "qr_code"  # shown for the Alipay app to scan
    in_app = await client.post("/v1/payments", _body("co-in-app", "jsapi",
                                                     {"buyer_id": BUYER_ID}))
    assert in_app.body["adapter"] == "alipay" and in_app.body["action"]["type"] == "sdk_params"
    for reply in (rival, in_app):
        paid = await client.post(f"/v1/sandbox/payments/{reply.body['id']}/pay")
        assert paid.body["status"] == "succeeded"
    alipay_orders = (await alipay_sim.ledger())["orders"]
    assert all(o["charges"] <= 1 for o in alipay_orders.values())
    assert sum(o["charges"] for o in alipay_orders.values()) == 2
    assert sum(o["charges"] for o in (await wechat_sim.ledger())["orders"].values()) == 0


async def test_a_named_method_wins_over_the_wallet(marketplace: Gateway) -> None:
    client, _ = await marketplace.merchant()
    body = {**_body("named", "quickpay", {"auth_code": "134567890123456781"}), "method": "bank"}
    reply = await client.post("/v1/payments", body)
    assert reply.body["adapter"] == "bank"


async def test_an_unknown_wallet_choice_is_refused(marketplace: Gateway) -> None:
    client, _ = await marketplace.merchant()
    reply = await client.post("/v1/payments", _body("bad-wallet", "native",
                                                    {"wallet": "paypal"}))
    assert reply.status == 422 and reply.body["error"]["param"] == "payer.wallet"
    assert (await client.get("/v1/payments?out_trade_no=bad-wallet")).status == 404
