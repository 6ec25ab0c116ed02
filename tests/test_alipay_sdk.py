"""The official `python-alipay-sdk`, unchanged, against the simulator.

The SDK is synchronous (urllib): its calls run in worker threads while the simulator
serves on the test's event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import aiohttp
import alipay as alipay_sdk
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from adapters.alipay import protocol
from adapters.alipay.adapter import AlipayAdapter
from adapters.alipay.simulator.app import create_app
from adapters.base import RailStatus
from adapters.simkit.runtime import SimulatorOptions

pytestmark = pytest.mark.asyncio

WAIT = 5.0


class Sandbox:
    def __init__(self, server: TestServer, keys: Path, notify_url: str) -> None:
        self.server = server
        self.keys = keys
        self.notify_url = notify_url
        self.notes: asyncio.Queue[bytes] = asyncio.Queue()

    def sdk(self) -> Any:
        """An SDK client built only from the bundle files, pointed at the simulator."""
        client = alipay_sdk.AliPay(
            appid=(self.keys / "app_id.txt").read_text().strip(),
            app_notify_url=self.notify_url,
            app_private_key_string=(self.keys / "app_private_key.pem").read_text(),
            alipay_public_key_string=(self.keys / "alipay_public_key.pem").read_text(),
            sign_type="RSA2",
        )
        client._gateway = str(self.server.make_url("/gateway.do"))  # the documented override
        return client

    async def post(self, path: str, body: str | None = None) -> int:
        async with (
            aiohttp.ClientSession() as session,
            session.post(self.server.make_url(path), data=body) as resp,
        ):
            return resp.status


@pytest.fixture
async def sandbox(tmp_path: Path) -> AsyncIterator[Sandbox]:
    keys = tmp_path / "keys"
    creds = protocol.load_or_create_bundle(keys)
    options = SimulatorOptions(time_scale=0.02, hang_seconds=0.5, seed=3)
    server = TestServer(create_app(creds, options), host="127.0.0.1", port=0)
    await server.start_server()

    notes: asyncio.Queue[bytes] = asyncio.Queue()

    async def receive(request: web.Request) -> web.Response:
        notes.put_nowait(await request.read())
        return web.Response(text="success")

    receiver_app = web.Application()
    receiver_app.router.add_post("/notify", receive)
    receiver = TestServer(receiver_app, host="127.0.0.1", port=0)
    await receiver.start_server()
    box = Sandbox(server, keys, str(receiver.make_url("/notify")))
    box.notes = notes
    yield box
    await receiver.close()
    await server.close()


async def test_sdk_precreate_query_pay_notify_refund(sandbox: Sandbox) -> None:
    sdk = sandbox.sdk()
    created = await asyncio.to_thread(
        sdk.api_alipay_trade_precreate, subject="奶茶", out_trade_no="sdk_1", total_amount="10.00"
    )
    assert created["code"] == "10000" and created["qr_code"].startswith("https://qr.alipay.com/")

    before = await asyncio.to_thread(sdk.api_alipay_trade_query, out_trade_no="sdk_1")
    assert (before["code"], before["sub_code"]) == ("40004", "ACQ.TRADE_NOT_EXIST")

    assert await sandbox.post("/sim/orders/sdk_1/pay") == 200
    body = await asyncio.wait_for(sandbox.notes.get(), WAIT)
    data = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    signature = data.pop("sign")
    assert sdk.verify(dict(data), signature) is True
    assert data["trade_status"] == "TRADE_SUCCESS" and data["total_amount"] == "10.00"
    # The router's adapter accepts the very same bytes.
    adapter = AlipayAdapter("alipay", "http://unused", protocol.load_bundle(sandbox.keys))
    note = adapter.verify_notification({}, body)
    assert (note.rail_order_no, note.result.status) == ("sdk_1", RailStatus.SUCCEEDED)
    tampered = dict(data, total_amount="0.01")
    assert sdk.verify(tampered, signature) is False

    after = await asyncio.to_thread(sdk.api_alipay_trade_query, out_trade_no="sdk_1")
    assert (after["trade_status"], after["total_amount"]) == ("TRADE_SUCCESS", "10.00")

    refunded = await asyncio.to_thread(
        sdk.api_alipay_trade_refund,
        refund_amount="3.00",
        out_trade_no="sdk_1",
        out_request_no="sdk_1_r1",
    )
    assert (refunded["code"], refunded["fund_change"], refunded["refund_fee"]) == (
        "10000", "Y", "3.00")
    again = await asyncio.to_thread(
        sdk.api_alipay_trade_refund,
        refund_amount="3.00",
        out_trade_no="sdk_1",
        out_request_no="sdk_1_r1",
    )
    assert again["fund_change"] == "N"
    queried = await asyncio.to_thread(
        sdk.api_alipay_trade_fastpay_refund_query, "sdk_1_r1", out_trade_no="sdk_1"
    )
    assert queried["refund_status"] == "REFUND_SUCCESS"


async def test_sdk_pay_cancel_and_wap_order(sandbox: Sandbox) -> None:
    sdk = sandbox.sdk()
    paid = await asyncio.to_thread(
        sdk.api_alipay_trade_pay, "sdk_2", "wave_code", "283456789012345671", "tea",
        total_amount=12,
    )
    assert (paid["code"], paid["total_amount"]) == ("10000", "12.00")
    waiting = await asyncio.to_thread(
        sdk.api_alipay_trade_pay, "sdk_3", "bar_code", "283456789012345676", "tea",
        total_amount="1.00",
    )
    assert waiting["code"] == "10003"
    cancelled = await asyncio.to_thread(sdk.api_alipay_trade_cancel, out_trade_no="sdk_3")
    assert (cancelled["retry_flag"], cancelled["action"]) == ("N", "close")

    # wap.pay with the SDK's product code QUICK_WAP_PAY, presented as a browser would.
    order = sdk.api_alipay_trade_wap_pay(
        subject="tea", out_trade_no="sdk_4", total_amount="2.50", return_url="https://shop.test/"
    )
    assert await sandbox.post("/sim/present", order) == 200
    assert await sandbox.post("/sim/orders/sdk_4/pay") == 200
    state = await asyncio.to_thread(sdk.api_alipay_trade_query, out_trade_no="sdk_4")
    assert (state["trade_status"], state["total_amount"]) == ("TRADE_SUCCESS", "2.50")


async def test_sdk_transfer_and_query_through_its_generic_call(sandbox: Sandbox) -> None:
    """`server_api` signs any method and verifies the signed answer (it raises otherwise):
    the SDK's own `api_alipay_fund_trans_uni_transfer` lives on its certificate-mode class."""
    sdk = sandbox.sdk()
    transfer = {
        "out_biz_no": "sdk_po_1",
        "trans_amount": "12.50",
        "product_code": "TRANS_ACCOUNT_NO_PWD",
        "biz_scene": "DIRECT_TRANSFER",
        "order_title": "佣金",
        "payee_info": {"identity": "2088102177846881", "identity_type": "ALIPAY_USER_ID"},
    }
    paid = await asyncio.to_thread(sdk.server_api, "alipay.fund.trans.uni.transfer", transfer)
    assert (paid["code"], paid["status"], paid["out_biz_no"]) == ("10000", "SUCCESS", "sdk_po_1")
    again = await asyncio.to_thread(sdk.server_api, "alipay.fund.trans.uni.transfer", transfer)
    assert again["order_id"] == paid["order_id"]
    query = {key: transfer[key] for key in ("out_biz_no", "product_code", "biz_scene")}
    state = await asyncio.to_thread(sdk.server_api, "alipay.fund.trans.common.query", query)
    assert (state["status"], state["trans_amount"], state["order_id"]) == (
        "SUCCESS", "12.50", paid["order_id"])

    frozen = dict(transfer, out_biz_no="sdk_po_2",
                  payee_info={"identity": "2088102177846882", "identity_type": "ALIPAY_USER_ID"})
    refused = await asyncio.to_thread(sdk.server_api, "alipay.fund.trans.uni.transfer", frozen)
    assert (refused["code"], refused["sub_code"]) == ("40004", "PAYEE_ACCOUNT_STATUS_ERROR")

    async with (
        aiohttp.ClientSession() as session,
        session.get(sandbox.server.make_url("/sim/ledger")) as resp,
    ):
        payouts = (await resp.json())["payouts"]
    assert (payouts["sdk_po_1"]["paid"], payouts["sdk_po_1"]["payouts"]) == (1250, 1)
    assert (payouts["sdk_po_2"]["paid"], payouts["sdk_po_2"]["payouts"]) == (0, 0)
