"""The official PyPI SDK `wechatpayv3`, unchanged, against the WeChat Pay simulator.

The SDK is synchronous (requests), so its calls run in a thread while the simulator and
the notification receiver serve on the event loop. Public-key mode: the SDK fetches no
platform certificates and checks every 2xx answer against `platform_public_key.pem`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import wechatpayv3
from aiohttp import web
from aiohttp.test_utils import TestServer

from adapters.base import NotificationKind, RailStatus
from adapters.simkit.runtime import SimulatorOptions
from adapters.wechatpay import protocol
from adapters.wechatpay.adapter import WeChatPayAdapter
from adapters.wechatpay.simulator.app import create_app

pytestmark = pytest.mark.asyncio

WAIT = 10.0
SUB = "1900000109"


class Receiver:
    def __init__(self) -> None:
        self.queue: asyncio.Queue[tuple[dict[str, str], bytes]] = asyncio.Queue()

    async def handle(self, request: web.Request) -> web.Response:
        self.queue.put_nowait((dict(request.headers), await request.read()))
        return web.Response(status=204)

    async def next(self) -> tuple[dict[str, str], bytes]:
        return await asyncio.wait_for(self.queue.get(), WAIT)


class Env:
    def __init__(self, keys: Path, base_url: str, notify_url: str, receiver: Receiver) -> None:
        self.keys = keys
        self.base_url = base_url
        self.notify_url = notify_url
        self.receiver = receiver
        self.creds = protocol.load_bundle(keys)

    def sdk(self, pay_type: Any, *, partner: bool = False) -> Any:
        """A client built from the bundle files exactly as a merchant would."""
        text = {
            name: (self.keys / name).read_text().strip()
            for name in (
                "mchid.txt",
                "appid.txt",
                "apiv3_key.txt",
                "merchant_private_key.pem",
                "merchant_cert_serial.txt",
                "platform_public_key.pem",
                "platform_public_key_id.txt",
            )
        }
        client = wechatpayv3.WeChatPay(
            wechatpay_type=pay_type,
            mchid=text["mchid.txt"],
            private_key=text["merchant_private_key.pem"],
            cert_serial_no=text["merchant_cert_serial.txt"],
            appid=text["appid.txt"],
            apiv3_key=text["apiv3_key.txt"],
            notify_url=self.notify_url,
            partner_mode=partner,
            public_key=text["platform_public_key.pem"],
            public_key_id=text["platform_public_key_id.txt"],
            timeout=(5, 10),
        )
        client._core._gate_way = self.base_url  # the SDK has no host option
        return client

    async def sim(self, path: str, payload: object = None) -> int:
        async with aiohttp.ClientSession() as session, session.post(
            self.base_url + path, json=payload
        ) as resp:
            return resp.status


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("wxsdk") / "keys"
    protocol.load_or_create_bundle(path)
    return path


@pytest.fixture
async def env(keys: Path) -> AsyncIterator[Env]:
    options = SimulatorOptions(time_scale=0.02, hang_seconds=0.5, seed=3)
    simulator = TestServer(create_app(protocol.load_bundle(keys), options), host="127.0.0.1")
    receiver = Receiver()
    app = web.Application()
    app.router.add_post("/notify", receiver.handle)
    notify = TestServer(app, host="127.0.0.1")
    await simulator.start_server()
    await notify.start_server()
    base_url = str(simulator.make_url("")).rstrip("/")
    yield Env(keys, base_url, str(notify.make_url("/notify")), receiver)
    await notify.close()
    await simulator.close()


def loaded(text: str | bytes) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(text)
    return parsed


async def test_native_order_query_pay_notify_refund(env: Env) -> None:
    sdk = env.sdk(wechatpayv3.WeChatPayType.NATIVE)
    status, text = await asyncio.to_thread(
        sdk.pay, description="茶 tea", out_trade_no="sdk_native_1", amount={"total": 880}
    )
    assert status == 200 and loaded(text)["code_url"].startswith("weixin://")
    status, text = await asyncio.to_thread(sdk.query, out_trade_no="sdk_native_1")
    assert (status, loaded(text)["trade_state"]) == (200, "NOTPAY")

    assert await env.sim("/sim/orders/sdk_native_1/pay") == 200
    headers, body = await env.receiver.next()
    note = await asyncio.to_thread(sdk.callback, headers, body)
    assert note is not None and note["event_type"] == "TRANSACTION.SUCCESS"
    tx = note["resource"]
    assert (tx["out_trade_no"], tx["trade_state"], tx["amount"]["total"]) == (
        "sdk_native_1",
        "SUCCESS",
        880,
    )
    # The router's adapter agrees with the SDK on the very same delivery.
    adapter = WeChatPayAdapter("wechatpay", env.base_url, env.creds)
    assert adapter.verify_notification(headers, body).rail_order_no == "sdk_native_1"

    status, text = await asyncio.to_thread(
        sdk.refund,
        out_refund_no="sdk_refund_1",
        amount={"refund": 300, "total": 880, "currency": "CNY"},
        out_trade_no="sdk_native_1",
        reason="broken cup",
    )
    assert (status, loaded(text)["status"]) == (200, "PROCESSING")
    headers, body = await env.receiver.next()
    refund_note = await asyncio.to_thread(sdk.callback, headers, body)
    assert refund_note is not None and refund_note["event_type"] == "REFUND.SUCCESS"
    assert refund_note["resource"]["refund_status"] == "SUCCESS"
    status, text = await asyncio.to_thread(sdk.query_refund, out_refund_no="sdk_refund_1")
    assert (status, loaded(text)["status"]) == (200, "SUCCESS")

    status, text = await asyncio.to_thread(sdk.close, out_trade_no="sdk_native_1")
    assert (status, loaded(text)["code"]) == (400, "ORDERPAID")


async def test_tampered_notification_is_rejected_by_the_sdk(env: Env) -> None:
    sdk = env.sdk(wechatpayv3.WeChatPayType.NATIVE)
    await asyncio.to_thread(
        sdk.pay, description="x", out_trade_no="sdk_native_2", amount={"total": 1}
    )
    await env.sim("/sim/orders/sdk_native_2/pay")
    headers, body = await env.receiver.next()
    forged = body.replace(b"TRANSACTION.SUCCESS", b"TRANSACTION.SUCCESS ")
    assert await asyncio.to_thread(sdk.callback, headers, forged) is None


async def test_close_and_codepay_reverse_with_204_and_202(env: Env) -> None:
    native = env.sdk(wechatpayv3.WeChatPayType.NATIVE)
    await asyncio.to_thread(
        native.pay, description="x", out_trade_no="sdk_close_1", amount={"total": 5}
    )
    status, _ = await asyncio.to_thread(native.close, out_trade_no="sdk_close_1")
    assert status == 204  # verified by the SDK over the empty body

    codepay = env.sdk(wechatpayv3.WeChatPayType.CODEPAY)
    status, text = await asyncio.to_thread(
        codepay.pay,
        description="x",
        out_trade_no="sdk_codepay_1",
        amount={"total": 5},
        payer={"auth_code": "134567890123456786"},
        scene_info={"store_info": {"out_id": "S01"}},
        pay_type=wechatpayv3.WeChatPayType.CODEPAY,
    )
    assert (status, loaded(text)["trade_state"]) == (200, "USERPAYING")
    status, text = await asyncio.to_thread(codepay.codepay_reverse, out_trade_no="sdk_codepay_1")
    assert (status, loaded(text)["out_trade_no"]) == (200, "sdk_codepay_1")
    status, text = await asyncio.to_thread(codepay.query, out_trade_no="sdk_codepay_1")
    assert loaded(text)["trade_state"] == "REVOKED"


async def test_userpaying_as_202_is_verified_by_the_sdk(keys: Path) -> None:
    options = SimulatorOptions(time_scale=0.02)
    app = create_app(protocol.load_bundle(keys), options, userpaying_as_202=True)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        env = Env(keys, str(server.make_url("")).rstrip("/"), "http://127.0.0.1:9/n", Receiver())
        codepay = env.sdk(wechatpayv3.WeChatPayType.CODEPAY)
        status, text = await asyncio.to_thread(
            codepay.pay,
            description="x",
            out_trade_no="sdk_codepay_2",
            amount={"total": 5},
            payer={"auth_code": "134567890123456785"},
            scene_info={"store_info": {"out_id": "S01"}},
            pay_type=wechatpayv3.WeChatPayType.CODEPAY,
        )
        assert (status, loaded(text)["code"]) == (202, "USERPAYING")
    finally:
        await server.close()


async def test_partner_mode_jsapi(env: Env) -> None:
    sdk = env.sdk(wechatpayv3.WeChatPayType.JSAPI, partner=True)
    status, text = await asyncio.to_thread(
        sdk.pay,
        description="x",
        out_trade_no="sdk_partner_1",
        amount={"total": 9},
        payer={"sp_openid": "oSp"},
        sub_mchid=SUB,
    )
    assert status == 200 and loaded(text)["prepay_id"].startswith("wx")
    status, text = await asyncio.to_thread(sdk.query, out_trade_no="sdk_partner_1", sub_mchid=SUB)
    assert (status, loaded(text)["sub_mchid"]) == (200, SUB)
    assert await env.sim(f"/sim/orders/sdk_partner_1/pay?sub_mchid={SUB}") == 200
    headers, body = await env.receiver.next()
    note = await asyncio.to_thread(sdk.callback, headers, body)
    assert note is not None and note["resource"]["sub_mchid"] == SUB


async def test_sdk_keeps_the_ledger_straight(env: Env) -> None:
    sdk = env.sdk(wechatpayv3.WeChatPayType.CODEPAY)
    for _ in range(3):
        status, _text = await asyncio.to_thread(
            sdk.pay,
            description="x",
            out_trade_no="sdk_codepay_3",
            amount={"total": 7},
            payer={"auth_code": "134567890123456781"},
            scene_info={"store_info": {"out_id": "S01"}},
            pay_type=wechatpayv3.WeChatPayType.CODEPAY,
        )
        assert status == 200
    async with aiohttp.ClientSession() as session, session.get(env.base_url + "/sim/ledger") as r:
        ledger = await r.json()
    assert ledger["orders"]["sdk_codepay_3"] == {
        "status": "SUCCESS",
        "charged": 7,
        "charges": 1,
        "refunded": 0,
    }


# --------------------------------------------------------------------------- transfer bills
REPORT = [
    {"info_type": "活动名称", "info_content": "新会员有礼"},
    {"info_type": "奖励说明", "info_content": "注册会员抽奖"},
]


async def test_transfer_bill_with_a_name_is_paid_queried_and_notified(env: Env) -> None:
    sdk = env.sdk(wechatpayv3.WeChatPayType.MINIPROG)
    status, text = await asyncio.to_thread(
        sdk.mch_transfer_bills,
        out_bill_no="sdkbill1",
        transfer_scene_id="1000",
        openid="oSdkPayee0000000000000000001",
        transfer_amount=200_000,  # from 2,000 CNY the SDK insists on a name, and encrypts it
        transfer_remark="新会员有礼",
        user_name="张三",
        transfer_scene_report_infos=REPORT,
    )
    bill = loaded(text)
    assert (status, bill["state"]) == (200, "WAIT_USER_CONFIRM") and bill["package_info"]
    headers, body = await env.receiver.next()  # the simulated payee confirmed
    note = await asyncio.to_thread(sdk.callback, headers, body)
    assert note is not None and note["event_type"] == "MCHTRANSFER.BILL.FINISHED"
    assert (note["resource"]["out_bill_no"], note["resource"]["state"]) == ("sdkbill1", "SUCCESS")
    ours = WeChatPayAdapter("wechatpay", env.base_url, env.creds).verify_notification(headers, body)
    assert (ours.kind, ours.rail_order_no, ours.result.status) == (
        NotificationKind.PAYOUT, "sdkbill1", RailStatus.SUCCEEDED)
    status, text = await asyncio.to_thread(sdk.mch_transfer_bills_query, out_bill_no="sdkbill1")
    queried = loaded(text)
    assert (status, queried["state"], queried["transfer_amount"]) == (200, "SUCCESS", 200_000)
    assert queried["transfer_bill_no"] == bill["transfer_bill_no"]
    status, text = await asyncio.to_thread(
        sdk.mch_transfer_bills_query, transfer_bill_no=bill["transfer_bill_no"])
    assert (status, loaded(text)["out_bill_no"]) == (200, "sdkbill1")


async def test_transfer_bill_with_the_wrong_name_fails(env: Env) -> None:
    payee = "oSdkPayee0000000000000000003"
    assert await env.sim("/sim/payees", {"id": payee, "name": "张三"}) == 200
    sdk = env.sdk(wechatpayv3.WeChatPayType.MINIPROG)
    status, text = await asyncio.to_thread(
        sdk.mch_transfer_bills, out_bill_no="sdkbill2", transfer_scene_id="1000", openid=payee,
        transfer_amount=500, transfer_remark="奖励", user_name="李四",
        transfer_scene_report_infos=REPORT)
    bill = loaded(text)
    assert (status, bill["state"], bill["fail_reason"]) == (200, "FAIL", "NAME_NOT_CORRECT")


async def test_transfer_bill_cancelled_before_the_payee_confirms(keys: Path) -> None:
    server = TestServer(create_app(protocol.load_bundle(keys), SimulatorOptions(time_scale=100.0)),
                        host="127.0.0.1")
    await server.start_server()
    try:
        env = Env(keys, str(server.make_url("")).rstrip("/"), "http://127.0.0.1:9/n", Receiver())
        sdk = env.sdk(wechatpayv3.WeChatPayType.MINIPROG)
        await asyncio.to_thread(
            sdk.mch_transfer_bills, out_bill_no="sdkbill3", transfer_scene_id="1000",
            openid="oSdkPayee0000000000000000004", transfer_amount=100, transfer_remark="奖励",
            transfer_scene_report_infos=REPORT)
        cancel, query = sdk.mch_transfer_bills_cancel, sdk.mch_transfer_bills_query
        status, text = await asyncio.to_thread(cancel, out_bill_no="sdkbill3")
        assert (status, loaded(text)["state"]) == (200, "CANCELLED")
        status, text = await asyncio.to_thread(query, out_bill_no="sdkbill3")
        assert (loaded(text)["state"], loaded(text)["fail_reason"]) == ("CANCELLED", "MCH_CANCEL")
    finally:
        await server.close()
