"""Service providers and sub-merchants (API.md, "Service providers and sub-merchants"):
onboarding, no exclusive agency, one level only, `Payrouter-Account`, partner-mode calls
at the WeChat Pay simulator keyed by sub-merchant, and a provider seeing only what it
made."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import aiohttp
import pytest

from adapters.base import HttpRequest, Query
from router.sandbox.embedded import free_port
from router.security import verify_webhook_signature
from router.settings import RailSettings
from tests.asserts import assert_error
from tests.conftest import Sim
from tests.helpers import Client, Gateway, eventually, fast_settings, payment_body, start_gateway
from tests.partners import (
    SP_RAIL,
    acting,
    instant_partners,
    provider,
    sub_merchant,
    wechat_partners,
)
from tests.receiver import webhook_receiver

pytestmark = pytest.mark.both_topologies
__all__ = ["instant_partners", "wechat_partners"]


async def test_a_provider_is_created_with_its_rails_by_reference(
        instant_partners: Gateway) -> None:
    admin = instant_partners.admin()
    _, created = await provider(instant_partners, "Acme SP")
    assert created["id"].startswith("sp_") and created["object"] == "service_provider"
    assert created["rails"] == {"wechatpay": SP_RAIL} and created["api_key"]
    for rails, param in (({"wechatpay": "no-such-rail"}, "rails.wechatpay"),
                         ({"bank": SP_RAIL}, "rails.bank"), ({}, "rails")):
        bad = await admin.post("/v1/admin/service_providers", {"name": "X", "rails": rails})
        assert_error(bad, 422, "validation_error", param=param)
    merchant_key, _ = await instant_partners.merchant()
    refused = await merchant_key.post("/v1/admin/service_providers",
                                      {"name": "X", "rails": {"wechatpay": SP_RAIL}})
    assert_error(refused, 401, "unauthorized")


async def test_onboarding_links_the_same_merchant_for_every_provider(
        instant_partners: Gateway) -> None:
    a, a_body = await provider(instant_partners, "A")
    b, b_body = await provider(instant_partners, "B")
    first = await a.post("/v1/sub_merchants", {"name": "Noodles",
                                               "wechatpay": {"sub_mchid": "1900000109"},
                                               "max_split_bp": 2000})
    assert first.status == 201, first.body
    sub = first.body
    assert sub["id"].startswith("mch_") and sub["object"] == "merchant"
    assert sub["sub_merchant"] is True and sub["service_provider"] == a_body["id"]
    assert sub["wechatpay"] == {"sub_mchid": "1900000109"} and sub["max_split_bp"] == 2000
    again = await a.post("/v1/sub_merchants", {"name": "Noodles",
                                               "wechatpay": {"sub_mchid": "1900000109"}})
    assert again.status == 200 and again.body["id"] == sub["id"]
    # No exclusive agency: another provider naming the same sub_mchid links the same one.
    other = await b.post("/v1/sub_merchants", {"name": "Noodle bar",
                                               "wechatpay": {"sub_mchid": "1900000109"}})
    assert other.status == 200 and other.body["id"] == sub["id"], other.body
    assert other.body["name"] == "Noodles" and other.body["service_provider"] == b_body["id"]
    for who in (a, b):
        made = await acting(who, sub["id"]).post("/v1/payments", payment_body(
            f"otn-{who.token[-4:]}", method="wechatpay"))
        assert made.status == 201, made.body
    fresh = await a.post("/v1/sub_merchants", {"name": "Tea",
                                               "wechatpay": {"sub_mchid": "1900000110"}})
    assert fresh.status == 201 and fresh.body["id"] != sub["id"]


async def test_onboarding_refuses_bad_input_and_writes_nothing(
        instant_partners: Gateway, redis_client: Any) -> None:
    a, _ = await provider(instant_partners)
    before = sorted(await redis_client.keys("merchant:*"))
    for body, param in (
            ({"name": "X"}, "wechatpay"),
            ({"name": "X", "alipay": {"app_auth_token": "tok_1234567890"}}, "alipay"),
            ({"name": "X", "wechatpay": {"sub_mchid": "abc"}}, "wechatpay.sub_mchid"),
            ({"name": "X", "wechatpay": {"sub_mchid": "1900000109"}, "max_split_bp": 10001},
             "max_split_bp")):
        bad = await a.post("/v1/sub_merchants", body)
        assert_error(bad, 422, "validation_error", param=param)
    assert sorted(await redis_client.keys("merchant:*")) == before
    merchant, _ = await instant_partners.merchant()
    refused = await merchant.post("/v1/sub_merchants", {
        "name": "X", "wechatpay": {"sub_mchid": "1900000109"}})
    assert_error(refused, 401, "unauthorized")


async def test_one_level_only(instant_partners: Gateway) -> None:
    a, a_body = await provider(instant_partners, "A")
    b, _ = await provider(instant_partners, "B")
    sub = await sub_merchant(a, "1900000109")
    # A provider's key is no merchant's: it acts only for a sub-merchant it names.
    bare = await a.post("/v1/payments", payment_body("p-1", method="wechatpay"))
    assert_error(bare, 400, "invalid_request", param="Payrouter-Account")
    for account in (a_body["id"], "mch_0000000000000000", "garbage"):
        named = await acting(a, account).get("/v1/payments?out_trade_no=p-1")
        assert_error(named, 404, "not_found")
    # B does not serve that merchant (yet): 404, as for a merchant that does not exist.
    assert_error(await acting(b, sub["id"]).get("/v1/payments?out_trade_no=p-1"),
                 404, "not_found")
    # A merchant's key acts for itself only.
    merchant, merchant_body = await instant_partners.merchant()
    assert_error(await acting(merchant, sub["id"]).get("/v1/payments?out_trade_no=p-1"),
                 404, "not_found")
    own = await acting(merchant, merchant_body["id"]).post(
        "/v1/payments", payment_body("p-own", method="instant"))
    assert own.status == 201 and "service_provider" not in own.body


async def test_partner_mode_payment_on_wechat(wechat_partners: Gateway,
                                              wechat_sim: Sim) -> None:
    async with webhook_receiver() as receiver:
        secret = "whsec_provider_secret_1"
        a, a_body = await provider(wechat_partners, "A", webhook_secret=secret,
                                   webhook_url=receiver.url("/sp"))
        sub = await sub_merchant(a, "1900000109")
        shop = acting(a, sub["id"])
        native = await shop.post("/v1/payments", payment_body(
            "sp-1", scene="native", method="wechatpay"))
        assert native.status == 201, native.body
        payment = native.body
        assert payment["service_provider"] == a_body["id"]
        assert payment["action"]["type"] == "qr_code"
        assert payment["adapter"] == f"{SP_RAIL}~{a_body['id']}~{sub['id']}"
        order_no = payment["attempts"][0]["rail_order_no"]
        ledger = await wechat_sim.ledger()
        # The simulator keys partner orders by sub-merchant: the call was a partner call.
        assert f"1900000109/{order_no}" in ledger["orders"]
        assert order_no not in ledger["orders"]

        paid = await shop.post(f"/v1/sandbox/payments/{payment['id']}/pay")
        assert paid.status == 200 and paid.body["status"] == "succeeded", paid.body
        refund = await shop.post(f"/v1/payments/{payment['id']}/refunds",
                                 {"amount": 300, "out_refund_no": "sp-r1"})
        assert refund.status == 201, refund.body

        async def refunded() -> bool:
            order = (await wechat_sim.ledger())["orders"][f"1900000109/{order_no}"]
            return bool(order["refunded"] == 300)

        await eventually(refunded)
        # Its events go to the provider, signed with the provider's secret.
        delivery = await receiver.next_of("payment.succeeded")
        assert delivery.path == "/sp" and delivery.event["data"]["id"] == payment["id"]
        assert verify_webhook_signature(secret, delivery.signature, delivery.body,
                                        now=int(time.time()))


async def test_a_provider_sees_only_the_payments_it_made(
        wechat_partners: Gateway, wechat_sim: Sim) -> None:
    a, _ = await provider(wechat_partners, "A")
    b, b_body = await provider(wechat_partners, "B")
    sub = await sub_merchant(a, "1900000109")
    await sub_merchant(b, "1900000109")
    by_a, by_b = acting(a, sub["id"]), acting(b, sub["id"])
    made = await by_a.post("/v1/payments", payment_body("same-no", scene="native",
                                                        method="wechatpay"))
    assert made.status == 201, made.body
    pid = made.body["id"]
    for path in (f"/v1/payments/{pid}", f"/v1/payments/{pid}/refunds",
                 "/v1/payments?out_trade_no=same-no"):
        assert_error(await by_b.get(path), 404, "not_found")
    assert_error(await by_b.post(f"/v1/payments/{pid}/close"), 404, "not_found")
    # The same out_trade_no is B's own: a payment of its own, not A's.
    theirs = await by_b.post("/v1/payments", payment_body("same-no", scene="native",
                                                          method="wechatpay"))
    assert theirs.status == 201 and theirs.body["id"] != pid, theirs.body
    assert theirs.body["service_provider"] == b_body["id"]
    mine = await by_a.get("/v1/payments?out_trade_no=same-no")
    assert mine.status == 200 and mine.body["id"] == pid
    # The same Idempotency-Key is each caller's own too.
    key = {"Idempotency-Key": "k-1"}
    first = await by_a.post("/v1/payments", payment_body("k-no", method="wechatpay",
                                                        scene="native"), headers=key)
    second = await by_b.post("/v1/payments", payment_body("k-no", method="wechatpay",
                                                         scene="native"), headers=key)
    assert first.status == second.status == 201
    assert first.body["id"] != second.body["id"]
    assert "Idempotent-Replayed" not in second.headers
    # A direct merchant sees none of them.
    direct, _ = await wechat_partners.merchant()
    assert_error(await direct.get(f"/v1/payments/{pid}"), 404, "not_found")


async def test_a_provider_pays_only_through_its_own_rails(wechat_partners: Gateway) -> None:
    a, _ = await provider(wechat_partners)
    sub = await sub_merchant(a, "1900000109")
    shop: Client = acting(a, sub["id"])
    for method in ("instant", "alipay"):
        refused = await shop.post("/v1/payments", payment_body(f"m-{method}",
                                                               method=method))
        assert_error(refused, 422, "validation_error", param="method")
    chosen = await shop.post("/v1/payments", payment_body("m-any", scene="native",
                                                          method=None))
    assert chosen.status == 201 and chosen.body["routing"]["chosen"] == SP_RAIL


@pytest.fixture
async def alipay_partners(redis_url: str, alipay_sim: Sim, tmp_path: Path,
                          http: aiohttp.ClientSession) -> AsyncIterator[Gateway]:
    isv = RailSettings(name="alipay-isv", base_url=alipay_sim.base_url,
                       keys_dir=alipay_sim.keys_dir, timeout_s=1.0,
                       options={"adapter": "alipay", "dedicated": True})
    gw = await start_gateway(fast_settings(redis_url, (isv, RailSettings(name="instant")),
                                           free_port(), str(tmp_path / "data")), http)
    yield gw
    await gw.close()


async def test_partner_mode_payment_on_alipay_carries_the_token(
        alipay_partners: Gateway) -> None:
    created = await alipay_partners.admin().post("/v1/admin/service_providers", {
        "name": "ISV", "rails": {"alipay": "alipay-isv"},
        "accounts": {"alipay": "2088000000000014"}})
    isv = Client(alipay_partners.session, alipay_partners.base, created.body["api_key"])
    token = "202412BB7e1c5a5f7a0f4a2a9d3c8b6e2f4d1X01"
    sub = await isv.post("/v1/sub_merchants", {"name": "Bakery", "alipay": {
        "app_auth_token": token, "user_id": "2088102177846880"}})
    assert sub.status == 201, sub.body
    assert token not in sub.raw.decode() and sub.body["alipay"]["user_id"] == "2088102177846880"
    shop = acting(isv, sub.body["id"])
    made = await shop.post("/v1/payments", payment_body("ali-1", scene="native",
                                                        method="alipay"))
    assert made.status == 201 and made.body["action"]["type"] == "qr_code", made.body
    instance = made.body["adapter"]
    assert instance == f"alipay-isv~{created.body['id']}~{sub.body['id']}"
    # Every call of the instance names the merchant by its token (a public parameter).
    query = alipay_partners.services.rails.build(instance, Query(
        made.body["attempts"][0]["rail_order_no"]))
    assert isinstance(query, HttpRequest) and token in unquote_plus(query.body.decode())
    direct = alipay_partners.services.rails.build("alipay-isv", Query("x1"))
    assert isinstance(direct, HttpRequest) and "app_auth_token" not in direct.body.decode()

    # Paid, it is shared by alipay.trade.order.settle; Alipay takes nothing back by
    # SplitReturn, so a refund that needs shared money fails and the share stays shared.
    paid = await shop.post(f"/v1/sandbox/payments/{made.body['id']}/pay")
    assert paid.status == 200 and paid.body["status"] == "succeeded", paid.body
    split = await shop.post(f"/v1/payments/{made.body['id']}/splits", {
        "out_split_no": "ali-s1", "receivers": [
            {"type": "service_provider", "id": created.body["id"], "amount": 300}]})
    assert split.status == 201, split.body

    async def shared() -> bool:
        got = await shop.get(f"/v1/splits/{split.body['id']}")
        return bool(got.body["status"] == "succeeded")

    await eventually(shared)
    refund = await shop.post(f"/v1/payments/{made.body['id']}/refunds",
                             {"amount": 1000, "out_refund_no": "ali-r1"})
    assert refund.status == 201 and refund.body["status"] == "failed", refund.body
    again = await shop.post(f"/v1/payments/{made.body['id']}/refunds",
                            {"amount": 700, "out_refund_no": "ali-r2"})
    assert again.status == 201 and again.body["status"] == "succeeded", again.body
