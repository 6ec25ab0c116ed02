"""WeChat Pay and Alipay through the gateway's HTTP API, each on its simulator: the
action every scene returns, payer-scene payments driven by the sandbox, payer codes by
their last digit (SANDBOX.md), refunds, and the wallets' own notifications into
/v1/notify/{adapter} (genuine, tampered, forged, stale, dropped). Every test checks the
simulator's ledger: never more than one charge per order."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
import redis.asyncio as aioredis
from cryptography.hazmat.primitives.asymmetric import rsa

from adapters.alipay import protocol as alipay
from adapters.wechatpay import protocol as wechat
from router.store import codec, keys
from tests.asserts import rail_order
from tests.conftest import Sim, gateway_settings
from tests.helpers import Client, Gateway, eventually, payment_body, start_gateway
from tests.receiver import Receiver, webhook_receiver

WALLETS = ("wechatpay", "alipay")
PAYER_SCENES = ("native", "jsapi", "mini_program", "app", "h5")
OPENID = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"
BUYER_ID = "2088102146225135"
CLIENT_IP = "203.0.113.7"


# --------------------------------------------------------------------------- fixtures
@pytest.fixture
def sims(wechat_sim: Sim, alipay_sim: Sim) -> dict[str, Sim]:
    return {"wechatpay": wechat_sim, "alipay": alipay_sim}


@pytest.fixture
async def quiet_wallet_gateway(redis_url: str, bank_sim: Sim, wechat_sim: Sim, alipay_sim: Sim,
                               tmp_path: Path, http: aiohttp.ClientSession
                               ) -> AsyncIterator[Gateway]:
    """Every rail, but no sweeper and no webhook workers: only a notification can settle
    a payer-scene payment, and outbox events stay in the stream to be counted."""
    settings = gateway_settings(redis_url, bank_sim, tmp_path, wechat_sim, alipay_sim)
    gw = await start_gateway(settings, http, background=False)
    yield gw
    await gw.close()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with webhook_receiver() as r:
        yield r


# --------------------------------------------------------------------------- helpers
def payer_for(rail: str, scene: str) -> dict[str, str]:
    if rail == "wechatpay" and scene in ("jsapi", "mini_program"):
        return {"openid": OPENID}
    if rail == "wechatpay" and scene == "h5":
        return {"client_ip": CLIENT_IP}
    if rail == "alipay" and scene in ("jsapi", "mini_program"):
        return {"buyer_id": BUYER_ID}
    return {}


def wallet_body(rail: str, otn: str, scene: str, **extra: Any) -> dict[str, Any]:
    payer = payer_for(rail, scene)
    if payer:
        extra.setdefault("payer", payer)
    return payment_body(otn, scene=scene, method=rail, **extra)


async def create(client: Client, body: dict[str, Any], status: int = 201) -> dict[str, Any]:
    reply = await client.post("/v1/payments", body)
    assert reply.status == status, reply.body
    created: dict[str, Any] = reply.body
    return created


async def status_of(client: Client, pid: str) -> str:
    reply = await client.get(f"/v1/payments/{pid}")
    assert reply.status == 200, reply.body
    status: str = reply.body["status"]
    return status


async def wait_status(client: Client, pid: str, status: str, within: float = 10.0
                      ) -> dict[str, Any]:
    """Poll until the payment reaches `status`; a settled payment must never move
    elsewhere on the way (only refunds move a succeeded payment)."""
    seen: dict[str, Any] = {}

    async def reached() -> bool:
        reply = await client.get(f"/v1/payments/{pid}")
        assert reply.status == 200, reply.body
        seen.clear()
        seen.update(reply.body)
        assert reply.body["status"] in ("processing", "requires_action", status), reply.body
        return bool(reply.body["status"] == status)

    await eventually(reached, timeout=within)
    return seen


async def ledger_orders(sim: Sim) -> dict[str, dict[str, Any]]:
    """The simulator's orders, after checking the one invariant every test shares."""
    ledger = await sim.ledger()
    orders: dict[str, dict[str, Any]] = ledger["orders"]
    for no, order in orders.items():
        assert order["charges"] <= 1, (no, order)  # never a double charge
        assert order["refunded"] <= order["charged"], (no, order)
    return orders


async def ledger_order(sim: Sim, payment: dict[str, Any]) -> dict[str, Any]:
    orders = await ledger_orders(sim)
    assert rail_order(payment) in orders, orders
    return orders[rail_order(payment)]


async def sim_control(sim: Sim, order_no: str, outcome: str = "pay") -> None:
    """The simulated payer acts (the simulator's own control, not the gateway's)."""
    async with sim.session.post(f"{sim.base_url}/sim/orders/{order_no}/{outcome}") as resp:
        assert resp.status == 200, await resp.text()


async def outbox(redis_client: aioredis.Redis, gateway: Gateway) -> list[dict[str, Any]]:
    events = []
    for shard in range(gateway.settings.redis.shards):
        for _, fields in await redis_client.xrange(keys.outbox(shard)):
            events.append(orjson.loads(codec.unpack(fields[b"b"])))
    return events


async def post_notify(gateway: Gateway, rail: str, body: bytes, headers: dict[str, str]
                      ) -> tuple[int, bytes]:
    async with gateway.session.post(f"{gateway.base}/v1/notify/{rail}", data=body,
                                    headers=headers) as resp:
        return resp.status, await resp.read()


def wechat_creds(sim: Sim) -> wechat.WeChatPayCredentials:
    """The bundle in the simulator's keys_dir (loaded once by the simulator)."""
    creds: wechat.WeChatPayCredentials = sim.runtime.credentials
    return creds


def alipay_creds(sim: Sim) -> alipay.AlipayCredentials:
    creds: alipay.AlipayCredentials = sim.runtime.credentials
    return creds


def wrong_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


# ---- WeChat Pay notifications, built as the simulator builds them
def wechat_transaction(creds: wechat.WeChatPayCredentials, order_no: str, *,
                       amount: int = 1000) -> dict[str, Any]:
    return {"appid": creds.appid, "mchid": creds.mchid, "out_trade_no": order_no,
            "transaction_id": "4200000000202601010000000042", "trade_type": "NATIVE",
            "trade_state": "SUCCESS", "trade_state_desc": "支付成功", "bank_type": "OTHERS",
            "success_time": "2026-01-01T08:00:01+08:00", "payer": {"openid": OPENID},
            "amount": {"total": amount, "payer_total": amount, "currency": "CNY",
                       "payer_currency": "CNY"}}


def wechat_envelope(apiv3_key: bytes, plaintext: dict[str, Any]) -> dict[str, Any]:
    return {"id": str(uuid.uuid4()), "create_time": "2026-01-01T08:00:01+08:00",
            "resource_type": "encrypt-resource", "event_type": "TRANSACTION.SUCCESS",
            "summary": "支付成功",
            "resource": wechat.encrypt_resource(
                apiv3_key, json.dumps(plaintext, ensure_ascii=False).encode(),
                associated_data="transaction", original_type="transaction")}


def wechat_signed(key: rsa.RSAPrivateKey, key_id: str, body: bytes, *, now: float
                  ) -> dict[str, str]:
    return {**wechat.sign_response(key, key_id, body, now=now),
            "Content-Type": "application/json"}


# ---- Alipay notifications, built as the simulator builds them
def alipay_fields(creds: alipay.AlipayCredentials, order_no: str, *,
                  total: str = "10.00") -> dict[str, str]:
    return {"notify_type": "trade_status_sync", "notify_id": uuid.uuid4().hex,
            "app_id": creds.app_id, "charset": "utf-8", "version": "1.0", "sign_type": "RSA2",
            "trade_no": "2026010122001400000000000042", "out_trade_no": order_no,
            "buyer_id": BUYER_ID, "seller_id": alipay.sandbox_seller_id(creds.app_id),
            "trade_status": "TRADE_SUCCESS", "total_amount": total, "receipt_amount": total,
            "buyer_pay_amount": total, "subject": "Coffee",
            "gmt_create": "2026-01-01 08:00:00", "gmt_payment": "2026-01-01 08:00:01",
            "notify_time": "2026-01-01 08:00:01"}


def alipay_signed(key: rsa.RSAPrivateKey, fields: dict[str, str]) -> dict[str, str]:
    return {**fields, "sign": alipay.rsa2_sign(key, alipay.notification_content(fields))}


def form(params: dict[str, str]) -> bytes:
    return alipay.urlencode_params(params).encode("ascii")


FORM = {"Content-Type": "application/x-www-form-urlencoded;charset=utf-8"}


# --------------------------------------------------------------------------- 1. actions
def check_wechat_action(creds: wechat.WeChatPayCredentials, scene: str,
                        action: dict[str, Any]) -> None:
    merchant_key = creds.merchant_public_key  # derived from the bundle's merchant key
    if scene == "native":
        assert action["type"] == "qr_code"
        assert action["qr_code"].startswith("weixin://wxpay/")
    elif scene in ("jsapi", "mini_program"):
        assert action["type"] == "sdk_params"
        assert action["appId"] == creds.appid
        assert action["package"].startswith("prepay_id=wx")
        assert action["signType"] == "RSA"
        assert action["timeStamp"].isdigit() and abs(int(action["timeStamp"]) - time.time()) < 60
        assert len(action["nonceStr"]) >= 16
        message = (f"{action['appId']}\n{action['timeStamp']}\n{action['nonceStr']}\n"
                   f"{action['package']}\n").encode()
        assert wechat.rsa_verify(merchant_key, message, action["paySign"])
        # The signature covers the package: another prepay_id does not verify.
        forged = message.replace(b"prepay_id=wx", b"prepay_id=wy")
        assert not wechat.rsa_verify(merchant_key, forged, action["paySign"])
    elif scene == "app":
        assert action["type"] == "sdk_params"
        assert action["appid"] == creds.appid
        assert action["partnerid"] == creds.mchid
        assert action["prepayid"].startswith("wx")
        assert action["package"] == "Sign=WXPay"
        message = (f"{action['appid']}\n{action['timestamp']}\n{action['noncestr']}\n"
                   f"{action['prepayid']}\n").encode()
        assert wechat.rsa_verify(merchant_key, message, action["sign"])
    else:
        assert scene == "h5"
        assert action["type"] == "redirect"
        assert action["url"].startswith("https://wx.tenpay.com/")
        assert "prepay_id=wx" in action["url"]


def check_alipay_action(creds: alipay.AlipayCredentials, sim: Sim, scene: str,
                        payment: dict[str, Any], action: dict[str, Any]) -> None:
    if scene == "native":
        assert action["type"] == "qr_code"
        assert action["qr_code"].startswith("https://qr.alipay.com/")
        return
    if scene in ("jsapi", "mini_program"):
        assert action["type"] == "sdk_params"
        assert action["trade_no"]
        assert payment["rail_reference"] == action["trade_no"]
        return
    if scene == "app":
        assert action["type"] == "sdk_params"
        params = alipay.decode_form(action["order_string"])
        method, product = "alipay.trade.app.pay", "QUICK_MSECURITY_PAY"
    else:
        assert scene == "h5"
        assert action["type"] == "redirect"
        gateway, _, query = action["url"].partition("?")
        assert gateway == f"{sim.base_url}/gateway.do"
        params = alipay.decode_form(query)
        method, product = "alipay.trade.wap.pay", "QUICK_WAP_WAY"
    assert params["method"] == method and params["app_id"] == creds.app_id
    assert params["sign_type"] == "RSA2"
    assert params["notify_url"].endswith("/v1/notify/alipay")
    biz = json.loads(params["biz_content"])
    assert biz["out_trade_no"] == rail_order(payment)
    assert biz["total_amount"] == "10.00" and biz["product_code"] == product
    assert alipay.verify_request_params(creds.app_public_key, params)
    # The signature covers the amount: a cheaper order string does not verify.
    cheaper = {**params, "biz_content": params["biz_content"].replace('"10.00"', '"0.01"')}
    assert not alipay.verify_request_params(creds.app_public_key, cheaper)


@pytest.mark.parametrize("scene", PAYER_SCENES)
@pytest.mark.parametrize("rail", WALLETS)
async def test_scene_returns_its_action(wallet_gateway: Gateway, sims: dict[str, Sim],
                                        rail: str, scene: str) -> None:
    client, _ = await wallet_gateway.merchant()
    payment = await create(client, wallet_body(rail, f"act-{rail}-{scene}", scene))
    assert payment["status"] == "requires_action"
    assert payment["adapter"] == rail and payment["method"] == rail
    assert payment["scene"] == scene
    action = payment["action"]
    sim = sims[rail]
    if rail == "wechatpay":
        check_wechat_action(wechat_creds(sim), scene, action)
    else:
        check_alipay_action(alipay_creds(sim), sim, scene, payment, action)
    fetched = await client.get(f"/v1/payments/{payment['id']}")
    assert fetched.body["action"] == action and fetched.body["status"] == "requires_action"

    orders = await ledger_orders(sim)
    if rail == "alipay" and scene in ("app", "h5"):
        # Nothing was called: the order exists at Alipay only once presented.
        assert rail_order(payment) not in orders
    else:
        order = orders[rail_order(payment)]
        assert order["charges"] == 0 and order["charged"] == 0
        assert order["status"] in ("NOTPAY", "WAIT_BUYER_PAY")


REQUIRED_PAYER = {
    "wechatpay": [("jsapi", "payer.openid"), ("mini_program", "payer.openid"),
                  ("h5", "payer.client_ip")],
    "alipay": [("jsapi", "payer.buyer_id"), ("mini_program", "payer.buyer_id")],
}


@pytest.mark.parametrize("rail", WALLETS)
async def test_missing_payer_field_is_refused_with_nothing_recorded(
    wallet_gateway: Gateway, sims: dict[str, Sim], rail: str
) -> None:
    client, _ = await wallet_gateway.merchant()
    for scene, param in REQUIRED_PAYER[rail]:
        otn = f"nopayer-{rail}-{scene}"
        field = param.removeprefix("payer.")
        for payer in (None, {}, {field: ""}, {"auth_code": "134567890123456781"}):
            body = payment_body(otn, scene=scene, method=rail)
            if payer is not None:
                body["payer"] = payer
            reply = await client.post("/v1/payments", body)
            assert reply.status == 422, (scene, payer, reply.body)
            assert reply.body["error"]["code"] == "validation_error"
            assert reply.body["error"]["param"] == param, (scene, payer, reply.body)
        looked_up = await client.get(f"/v1/payments?out_trade_no={otn}")
        assert looked_up.status == 404, looked_up.body
    ledger = await sims[rail].ledger()
    assert ledger["orders"] == {} and ledger["totals"]["charges"] == 0

    # The corrected requests under the same out_trade_no go through.
    for scene, _ in REQUIRED_PAYER[rail]:
        fixed = await create(client, wallet_body(rail, f"nopayer-{rail}-{scene}", scene))
        assert fixed["status"] == "requires_action"
        assert (await ledger_order(sims[rail], fixed))["charges"] == 0


# --------------------------------------------------------------------------- 2. sandbox pay/fail
@pytest.mark.parametrize("scene", PAYER_SCENES)
@pytest.mark.parametrize("rail", WALLETS)
async def test_sandbox_pay_and_fail(wallet_gateway: Gateway, sims: dict[str, Sim],
                                    receiver: Receiver, rail: str, scene: str) -> None:
    client, _ = await wallet_gateway.merchant()
    sim = sims[rail]
    payment = await create(client, wallet_body(rail, f"pay-{rail}-{scene}", scene,
                                               notify_url=receiver.url()))
    paid = await client.post(f"/v1/sandbox/payments/{payment['id']}/pay")
    assert paid.status == 200, paid.body
    assert paid.body["status"] == "succeeded", paid.body
    assert paid.body["rail_reference"]
    assert await status_of(client, payment["id"]) == "succeeded"
    delivery = await receiver.next_of("payment.succeeded")
    assert delivery.event["data"]["id"] == payment["id"]
    order = await ledger_order(sim, payment)
    assert order["charges"] == 1 and order["charged"] == 1000
    assert order["status"] in ("SUCCESS", "TRADE_SUCCESS")
    # Paying twice is refused and charges nothing more.
    again = await client.post(f"/v1/sandbox/payments/{payment['id']}/pay")
    assert again.status == 409, again.body
    assert (await ledger_order(sim, payment))["charges"] == 1

    doomed = await create(client, wallet_body(rail, f"fail-{rail}-{scene}", scene,
                                              notify_url=receiver.url()))
    failed = await client.post(f"/v1/sandbox/payments/{doomed['id']}/fail")
    assert failed.status == 200, failed.body
    # Alipay reports a failed payer as TRADE_CLOSED: the router never closed it, so failed.
    assert failed.body["status"] == "failed", failed.body
    assert failed.body["failure"]["code"]
    delivery = await receiver.next_of("payment.failed")
    assert delivery.event["data"]["id"] == doomed["id"]
    assert delivery.event["data"]["status"] == "failed"
    assert await status_of(client, doomed["id"]) == "failed"
    order = await ledger_order(sim, doomed)
    assert order["charges"] == 0 and order["charged"] == 0
    assert order["status"] in ("PAYERROR", "TRADE_CLOSED")


@pytest.mark.parametrize("rail", WALLETS)
async def test_merchant_close_is_closed(wallet_gateway: Gateway, sims: dict[str, Sim],
                                        rail: str) -> None:
    """The router's own close ends as `closed` (a rail-side close it did not ask for
    would be the payer's failure: see test_sandbox_pay_and_fail)."""
    client, _ = await wallet_gateway.merchant()
    payment = await create(client, wallet_body(rail, f"close-{rail}", "jsapi"))
    closed = await client.post(f"/v1/payments/{payment['id']}/close")
    assert closed.status == 200, closed.body
    assert closed.body["status"] == "closed"
    assert await status_of(client, payment["id"]) == "closed"
    order = await ledger_order(sims[rail], payment)
    assert order["status"] in ("CLOSED", "TRADE_CLOSED") and order["charges"] == 0
    # The payer can no longer pay it.
    async with sims[rail].session.post(
            f"{sims[rail].base_url}/sim/orders/{rail_order(payment)}/pay") as resp:
        assert resp.status == 409
    assert (await ledger_order(sims[rail], payment))["charges"] == 0


# --------------------------------------------------------------------------- 3. payer codes
def code(rail: str, last: str) -> str:
    return "134567890123456" + "78" + last if rail == "wechatpay" else "28763443825664" + "1" + last


@pytest.mark.parametrize("rail", WALLETS)
async def test_code_1_succeeds_at_once(wallet_gateway: Gateway, sims: dict[str, Sim],
                                       rail: str) -> None:
    client, _ = await wallet_gateway.merchant()
    payment = await create(client, payment_body(f"qp1-{rail}", method=rail,
                                                auth_code=code(rail, "1")))
    assert payment["status"] == "succeeded", payment
    assert payment["adapter"] == rail and payment["rail_reference"]
    assert "action" not in payment and "failure" not in payment
    order = await ledger_order(sims[rail], payment)
    assert order["charges"] == 1 and order["charged"] == 1000 and order["refunded"] == 0


@pytest.mark.parametrize("rail", WALLETS)
async def test_code_2_fails_and_charges_nothing(wallet_gateway: Gateway, sims: dict[str, Sim],
                                                rail: str) -> None:
    client, _ = await wallet_gateway.merchant()
    payment = await create(client, payment_body(f"qp2-{rail}", method=rail,
                                                auth_code=code(rail, "2")))
    assert payment["status"] == "failed", payment
    expected = "NOTENOUGH" if rail == "wechatpay" else "ACQ.BUYER_BALANCE_NOT_ENOUGH"
    assert payment["failure"]["code"] == expected
    assert payment["failure"]["message"]
    assert await status_of(client, payment["id"]) == "failed"
    order = await ledger_order(sims[rail], payment)
    assert order["charges"] == 0 and order["charged"] == 0


@pytest.mark.parametrize("rail", WALLETS)
async def test_code_5_processing_then_succeeds(wallet_gateway: Gateway, sims: dict[str, Sim],
                                               receiver: Receiver, rail: str) -> None:
    client, _ = await wallet_gateway.merchant()
    payment = await create(client, payment_body(f"qp5-{rail}", method=rail,
                                                auth_code=code(rail, "5"),
                                                notify_url=receiver.url()))
    assert payment["status"] == "processing", payment
    settled = await wait_status(client, payment["id"], "succeeded")
    assert settled["rail_reference"]
    delivery = await receiver.next_of("payment.succeeded")
    assert delivery.event["data"]["id"] == payment["id"]
    order = await ledger_order(sims[rail], payment)
    assert order["charges"] == 1 and order["charged"] == 1000


@pytest.mark.parametrize("rail", WALLETS)
async def test_code_6_is_reversed_and_closed(wallet_gateway: Gateway, sims: dict[str, Sim],
                                             receiver: Receiver, rail: str) -> None:
    client, _ = await wallet_gateway.merchant()
    payment = await create(client, payment_body(f"qp6-{rail}", method=rail,
                                                auth_code=code(rail, "6"),
                                                notify_url=receiver.url()))
    assert payment["status"] == "processing", payment
    await wait_status(client, payment["id"], "closed")
    delivery = await receiver.next_of("payment.closed")
    assert delivery.event["data"]["id"] == payment["id"]
    order = await ledger_order(sims[rail], payment)
    assert order["status"] in ("REVOKED", "TRADE_CLOSED")
    assert order["charged"] - order["refunded"] == 0  # nothing kept
    # A closed payment cannot be refunded.
    refund = await client.post(f"/v1/payments/{payment['id']}/refunds",
                               {"amount": 100, "out_refund_no": "r1"})
    assert refund.status == 409 and refund.body["error"]["code"] == "invalid_state"


@pytest.mark.parametrize("rail", WALLETS)
async def test_code_9_lost_answer_settles_by_query(wallet_gateway: Gateway,
                                                   sims: dict[str, Sim], rail: str) -> None:
    client, _ = await wallet_gateway.merchant()
    started = time.monotonic()
    reply = await client.post("/v1/payments", payment_body(f"qp9-{rail}", method=rail,
                                                           auth_code=code(rail, "9")))
    # The rail timeout (1 s) answers long before the simulator drops the line (5 s).
    assert time.monotonic() - started < 4.0
    if reply.status == 504:
        assert reply.body["error"]["code"] == "adapter_timeout", reply.body
        pid = reply.body["error"]["payment_id"]
    else:  # the sweeper settled it before the answer went out
        assert reply.status == 201, reply.body
        pid = reply.body["id"]
    settled = await wait_status(client, pid, "succeeded")
    order = await ledger_order(sims[rail], settled)
    assert order["charges"] == 1 and order["charged"] == 1000
    # The merchant retries with the same out_trade_no: the same payment, no new charge.
    retried = await client.post("/v1/payments", payment_body(f"qp9-{rail}", method=rail,
                                                             auth_code=code(rail, "9")))
    assert retried.status == 200 and retried.body["id"] == pid, retried.body
    assert (await ledger_order(sims[rail], settled))["charges"] == 1


async def test_alipay_face_code_is_sent_as_security_code(wallet_gateway: Gateway,
                                                         alipay_sim: Sim) -> None:
    client, _ = await wallet_gateway.merchant()
    payment = await create(client, payment_body("qp-face", method="alipay",
                                                auth_code="fp0123456789abcdef1"))
    assert payment["status"] == "succeeded", payment
    order = await ledger_order(alipay_sim, payment)
    assert order["charges"] == 1 and order["charged"] == 1000
    # What the simulated gateway recorded about the trade.pay (scene is part of it).
    trade = alipay_sim.runtime.ledger._trades[rail_order(payment)]
    assert "security_code" in trade.fingerprint
    bar = await create(client, payment_body("qp-bar", method="alipay",
                                            auth_code=code("alipay", "1")))
    assert "bar_code" in alipay_sim.runtime.ledger._trades[rail_order(bar)].fingerprint


# --------------------------------------------------------------------------- 4. refunds
async def refund_status(client: Client, rid: str) -> str:
    reply = await client.get(f"/v1/refunds/{rid}")
    assert reply.status == 200, reply.body
    status: str = reply.body["status"]
    return status


@pytest.mark.parametrize("rail", WALLETS)
async def test_refunds(wallet_gateway: Gateway, sims: dict[str, Sim], receiver: Receiver,
                       rail: str) -> None:
    client, _ = await wallet_gateway.merchant()
    payment = await create(client, payment_body(f"rf-{rail}", method=rail,
                                                auth_code=code(rail, "1"),
                                                notify_url=receiver.url()))
    assert payment["status"] == "succeeded", payment
    pid = payment["id"]

    partial = await client.post(f"/v1/payments/{pid}/refunds",
                                {"amount": 300, "out_refund_no": "r1", "reason": "broken cup"})
    assert partial.status == 201, partial.body
    assert partial.body["amount"] == 300 and partial.body["payment_id"] == pid
    assert partial.body["status"] in ("processing", "succeeded")

    async def partial_done() -> bool:
        return await refund_status(client, partial.body["id"]) == "succeeded"

    await eventually(partial_done)
    fetched = (await client.get(f"/v1/payments/{pid}")).body
    assert fetched["status"] == "partially_refunded"
    assert fetched["refunded_amount"] == 300
    delivery = await receiver.next_of("refund.succeeded")
    assert delivery.event["data"]["id"] == partial.body["id"]
    order = await ledger_order(sims[rail], payment)
    assert order["charged"] == 1000 and order["refunded"] == 300 and order["charges"] == 1

    # Above what is left: refused before the rail sees it.
    over = await client.post(f"/v1/payments/{pid}/refunds",
                             {"amount": 701, "out_refund_no": "r2"})
    assert over.status == 422, over.body
    assert over.body["error"]["code"] == "refund_exceeds_amount"
    assert (await ledger_order(sims[rail], payment))["refunded"] == 300

    # The rest: fully refunded.
    rest = await client.post(f"/v1/payments/{pid}/refunds",
                             {"amount": 700, "out_refund_no": "r3"})
    assert rest.status == 201, rest.body

    async def rest_done() -> bool:
        return await refund_status(client, rest.body["id"]) == "succeeded"

    await eventually(rest_done)
    fetched = (await client.get(f"/v1/payments/{pid}")).body
    assert fetched["status"] == "refunded" and fetched["refunded_amount"] == 1000
    order = await ledger_order(sims[rail], payment)
    assert order["charged"] == 1000 and order["refunded"] == 1000 and order["charges"] == 1
    # The same out_refund_no again: the same refund, no second movement.
    repeat = await client.post(f"/v1/payments/{pid}/refunds",
                               {"amount": 300, "out_refund_no": "r1", "reason": "broken cup"})
    assert repeat.status == 200 and repeat.body["id"] == partial.body["id"], repeat.body
    assert (await ledger_order(sims[rail], payment))["refunded"] == 1000


# --------------------------------------------------------------------------- 5. notifications
async def native_on(client: Client, rail: str, otn: str, **extra: Any) -> dict[str, Any]:
    payment = await create(client, wallet_body(rail, otn, "native", **extra))
    assert payment["status"] == "requires_action"
    return payment


async def assert_untouched(client: Client, sim: Sim, redis_client: aioredis.Redis,
                           gateway: Gateway, payment: dict[str, Any]) -> None:
    assert await status_of(client, payment["id"]) == "requires_action"
    assert await outbox(redis_client, gateway) == []
    order = (await ledger_orders(sim)).get(rail_order(payment), {"charges": 0})
    assert order["charges"] == 0


@pytest.mark.parametrize("rail", WALLETS)
async def test_genuine_notification_settles(quiet_wallet_gateway: Gateway,
                                            sims: dict[str, Sim],
                                            redis_client: aioredis.Redis, rail: str) -> None:
    client, _ = await quiet_wallet_gateway.merchant()
    sim = sims[rail]
    payment = await native_on(client, rail, f"ntf-{rail}")
    await sim_control(sim, rail_order(payment))
    await sim.runtime.notifications_settled()

    fetched = (await client.get(f"/v1/payments/{payment['id']}")).body
    assert fetched["status"] == "succeeded", fetched
    assert fetched["rail_reference"]
    events = await outbox(redis_client, quiet_wallet_gateway)
    assert [(e["type"], e["data"]["id"]) for e in events] == [
        ("payment.succeeded", payment["id"])]
    order = await ledger_order(sim, payment)
    assert order["charges"] == 1 and order["charged"] == 1000


@pytest.mark.parametrize("scene", ["jsapi", "h5"])
async def test_alipay_failed_notification_settles_failed(
    quiet_wallet_gateway: Gateway, alipay_sim: Sim, redis_client: aioredis.Redis, scene: str
) -> None:
    client, _ = await quiet_wallet_gateway.merchant()
    payment = await create(client, wallet_body("alipay", f"ntf-fail-{scene}", scene))
    if scene == "h5":  # opened in the browser first, as the payer would
        async with alipay_sim.session.post(f"{alipay_sim.base_url}/sim/present",
                                           data=payment["action"]["url"].encode()) as resp:
            assert resp.status == 200, await resp.text()
    await sim_control(alipay_sim, rail_order(payment), "fail")
    await alipay_sim.runtime.notifications_settled()
    assert await status_of(client, payment["id"]) == "failed"
    events = await outbox(redis_client, quiet_wallet_gateway)
    assert [e["type"] for e in events] == ["payment.failed"]
    order = await ledger_order(alipay_sim, payment)
    assert order["status"] == "TRADE_CLOSED" and order["charges"] == 0


async def test_wechat_rejects_tampered_forged_and_stale_notifications(
    quiet_wallet_gateway: Gateway, wechat_sim: Sim, redis_client: aioredis.Redis
) -> None:
    gw = quiet_wallet_gateway
    client, _ = await gw.merchant()
    payment = await native_on(client, "wechatpay", "ntf-wx-bad")
    creds = wechat_sim.runtime.credentials
    platform_key, key_id = creds.platform_private_key, creds.platform_public_key_id
    assert platform_key is not None
    now = time.time()
    envelope = wechat_envelope(creds.apiv3_key, wechat_transaction(creds, rail_order(payment)))
    genuine = json.dumps(envelope).encode()

    rejected: list[tuple[str, bytes, dict[str, str]]] = []
    # Tampered in transit: one byte of the ciphertext flipped, signature left as it was.
    sealed = bytearray(base64.b64decode(envelope["resource"]["ciphertext"]))
    sealed[len(sealed) // 2] ^= 0x01
    flipped = {**envelope, "resource": {**envelope["resource"],
                                        "ciphertext": base64.b64encode(sealed).decode()}}
    flipped_body = json.dumps(flipped).encode()
    rejected.append(("tampered", flipped_body,
                     wechat_signed(platform_key, key_id, genuine, now=now)))
    # The same flipped ciphertext, even signed by WeChat: GCM's tag catches it.
    rejected.append(("tampered+resigned", flipped_body,
                     wechat_signed(platform_key, key_id, flipped_body, now=now)))
    # Forged: signed with a key that is not WeChat's (same serial claimed).
    rejected.append(("forged", genuine, wechat_signed(wrong_key(), key_id, genuine, now=now)))
    # Forged: encrypted with another APIv3 key, signed by WeChat.
    other = json.dumps(wechat_envelope(b"A" * 32, wechat_transaction(
        creds, rail_order(payment)))).encode()
    rejected.append(("wrong-apiv3-key", other, wechat_signed(platform_key, key_id, other,
                                                              now=now)))
    # Stale: genuinely signed 301 s ago (a replay).
    rejected.append(("stale", genuine, wechat_signed(platform_key, key_id, genuine,
                                                     now=now - 301)))
    # Genuine, but for another amount than the payment's.
    cheap = json.dumps(wechat_envelope(creds.apiv3_key, wechat_transaction(
        creds, rail_order(payment), amount=1))).encode()
    rejected.append(("amount", cheap, wechat_signed(platform_key, key_id, cheap, now=now)))
    # Unsigned.
    rejected.append(("unsigned", genuine, {"Content-Type": "application/json"}))

    for label, body, headers in rejected:
        status, answer = await post_notify(gw, "wechatpay", body, headers)
        assert 400 <= status < 500, (label, status, answer)
        assert orjson.loads(answer)["code"] == "FAIL", label
    await assert_untouched(client, wechat_sim, redis_client, gw, payment)

    # The payer really pays: the simulator's own notification settles it.
    await sim_control(wechat_sim, rail_order(payment))
    await wechat_sim.runtime.notifications_settled()
    assert await status_of(client, payment["id"]) == "succeeded"
    # A genuine duplicate is acknowledged with 204 and changes nothing.
    status, answer = await post_notify(gw, "wechatpay", genuine, wechat_signed(
        platform_key, key_id, genuine, now=time.time()))
    assert (status, answer) == (204, b"")
    events = await outbox(redis_client, gw)
    assert [e["type"] for e in events] == ["payment.succeeded"]
    assert (await ledger_order(wechat_sim, payment))["charges"] == 1


async def test_alipay_rejects_tampered_and_forged_notifications(
    quiet_wallet_gateway: Gateway, alipay_sim: Sim, redis_client: aioredis.Redis
) -> None:
    gw = quiet_wallet_gateway
    client, _ = await gw.merchant()
    payment = await native_on(client, "alipay", "ntf-ali-bad")
    creds = alipay_creds(alipay_sim)
    assert creds.alipay_private_key is not None
    fields = alipay_fields(creds, rail_order(payment))
    genuine = alipay_signed(creds.alipay_private_key, fields)

    rejected: list[tuple[str, dict[str, str]]] = [
        # Tampered: the signed form with total_amount changed.
        ("tampered-amount", {**genuine, "total_amount": "0.01"}),
        ("tampered-status", {**alipay_signed(creds.alipay_private_key, {
            **fields, "trade_status": "WAIT_BUYER_PAY"}), "trade_status": "TRADE_SUCCESS"}),
        # Forged: signed with a key that is not Alipay's.
        ("forged", alipay_signed(wrong_key(), fields)),
        # Signed by Alipay, but with the app's key pair mixed up.
        ("app-key", alipay_signed(creds.app_private_key, fields)),
        # Genuine signature, but for another amount than the payment's.
        ("amount", alipay_signed(creds.alipay_private_key, {
            **fields, "total_amount": "0.01", "receipt_amount": "0.01",
            "buyer_pay_amount": "0.01"})),
        # Genuine signature, but for another app.
        ("other-app", alipay_signed(creds.alipay_private_key, {
            **fields, "app_id": "2021000000000001"})),
        ("unsigned", {k: v for k, v in genuine.items() if k != "sign"}),
        ("sign-type", {**genuine, "sign_type": "RSA"}),
    ]
    for label, params in rejected:
        status, answer = await post_notify(gw, "alipay", form(params), FORM)
        assert answer == b"fail", (label, status, answer)
    await assert_untouched(client, alipay_sim, redis_client, gw, payment)

    await sim_control(alipay_sim, rail_order(payment))
    await alipay_sim.runtime.notifications_settled()
    assert await status_of(client, payment["id"]) == "succeeded"
    # A genuine duplicate is acknowledged with exactly `success` and changes nothing.
    status, answer = await post_notify(gw, "alipay", form(genuine), FORM)
    assert (status, answer) == (200, b"success")
    events = await outbox(redis_client, gw)
    assert [e["type"] for e in events] == ["payment.succeeded"]
    assert (await ledger_order(alipay_sim, payment))["charges"] == 1


# --------------------------------------------------------------------------- 6. dropped
@pytest.mark.parametrize("scene", ["native", "jsapi"])
@pytest.mark.parametrize("rail", WALLETS)
async def test_dropped_notification_is_made_up_by_query(
    wallet_gateway: Gateway, sims: dict[str, Sim], receiver: Receiver, rail: str, scene: str
) -> None:
    client, _ = await wallet_gateway.merchant()
    sim = sims[rail]
    await sim.faults(drop_notify_rate=1.0)
    payment = await create(client, wallet_body(rail, f"drop-{rail}-{scene}", scene,
                                               notify_url=receiver.url()))
    assert payment["status"] == "requires_action"
    await sim_control(sim, rail_order(payment))

    await wait_status(client, payment["id"], "succeeded")
    delivery = await receiver.next_of("payment.succeeded")
    assert delivery.event["data"]["id"] == payment["id"]
    order = await ledger_order(sim, payment)
    assert order["charges"] == 1 and order["charged"] == 1000
