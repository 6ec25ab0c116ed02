"""Payouts on WeChat Pay (transfer bills): the adapter's bodies, refusals and state table,
and the simulator driven as a real HTTP server through the adapter."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any, Protocol

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from adapters.base import (
    AdapterConfig,
    HttpRequest,
    HttpResponse,
    NotificationKind,
    Payout,
    PayoutQuery,
    RailError,
    RailStatus,
)
from adapters.simkit.runtime import SimulatorOptions
from adapters.wechatpay import payouts, protocol
from adapters.wechatpay.adapter import PartnerIds, WeChatPayAdapter, create_adapter
from adapters.wechatpay.protocol import WeChatPayCredentials
from adapters.wechatpay.sensitive import decrypt_field, encrypt_field
from adapters.wechatpay.simulator.app import SIM_KEY, TRANSFER_BILLS, create_app
from adapters.wechatpay.wire import TransferBill, TransferBillState
from tests.simharness import Receiver, SimHarness

FAST = SimulatorOptions(time_scale=0.02, hang_seconds=0.3, seed=7)
WAIT = 5.0
PAID = "oPayee0000000000000000000001"  # the last character decides (SANDBOX.md)
FROZEN = "oPayee0000000000000000000002"
LOST = "oPayee0000000000000000000009"


class WeChat(SimHarness):
    adapter: WeChatPayAdapter

    def __init__(self, server: TestServer, session: aiohttp.ClientSession,
                 creds: WeChatPayCredentials, stack: AsyncExitStack) -> None:
        super().__init__(server, session, stack, WAIT)
        self.creds = creds
        self.base_url = str(server.make_url("")).rstrip("/")
        self.adapter = WeChatPayAdapter("wechatpay", self.base_url, creds)

    async def raw(self, method: str, path: str, payload: object = None,
                  **headers: str) -> tuple[int, dict[str, Any]]:
        """A merchant-signed call with `headers` added (or replacing the signed ones)."""
        body = b"" if payload is None else json.dumps(payload).encode()
        signed = protocol.sign_request(self.creds, method, path, body, now=time.time())
        request = HttpRequest(method, self.base_url + path, {**signed, **headers}, body)
        response = await self.exchange(request)
        return response.status, json.loads(response.body) if response.body else {}

    async def receiver(self) -> Receiver:
        return await self.serve_receiver(Receiver([], web.Response(status=204), WAIT))

    async def settled(self) -> None:
        await asyncio.wait_for(self.server.app[SIM_KEY].notifications_settled(), WAIT)

    async def payout_row(self, no: str) -> dict[str, Any]:
        row: dict[str, Any] = (await self.ledger())["payouts"][no]
        return row


class StartWeChat(Protocol):
    def __call__(self, options: SimulatorOptions) -> Awaitable[WeChat]: ...


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("wxpayouts") / "keys"
    protocol.load_or_create_bundle(path)
    return path


@pytest.fixture(scope="module")
def creds(keys: Path) -> WeChatPayCredentials:
    return protocol.load_bundle(keys)


@pytest.fixture
async def start_wechat(creds: WeChatPayCredentials) -> AsyncIterator[StartWeChat]:
    async with AsyncExitStack() as stack:

        async def start(options: SimulatorOptions) -> WeChat:
            server = TestServer(create_app(creds, options), host="127.0.0.1", port=0)
            await server.start_server()
            stack.push_async_callback(server.close)
            session = aiohttp.ClientSession()
            stack.push_async_callback(session.close)
            return WeChat(server, session, creds, stack)

        yield start


@pytest.fixture
async def wx(start_wechat: StartWeChat) -> WeChat:
    return await start_wechat(FAST)


def payout(no: str, payee: str = PAID, amount: int = 1000, notify_url: str = "",
           name: str | None = None, remark: str = "新会员有礼") -> Payout:
    return Payout(no, amount, "CNY", payee, remark, notify_url, name)


# --------------------------------------------------------------------------- the adapter
def test_payout_body_carries_the_scene_report_and_an_encrypted_name(
        creds: WeChatPayCredentials) -> None:
    adapter = WeChatPayAdapter("wechatpay", "http://127.0.0.1:9", creds)
    op = payout("po0001", amount=250_000, name="张三", remark="x" * 40,
                notify_url="https://router.example/v1/notify/wechatpay")
    request = adapter.build(op)
    assert isinstance(request, HttpRequest)
    assert request.url == "http://127.0.0.1:9" + TRANSFER_BILLS
    assert request.headers[protocol.H_SERIAL] == creds.platform_public_key_id
    body = json.loads(request.body)
    assert {k: body[k] for k in ("appid", "out_bill_no", "openid", "transfer_amount")} == {
        "appid": creds.appid, "out_bill_no": "po0001", "openid": PAID, "transfer_amount": 250_000}
    assert body["transfer_remark"] == "x" * 32 and body["transfer_scene_id"] == "1000"
    assert body["transfer_scene_report_infos"] == [
        {"info_type": "活动名称", "info_content": "x" * 32},
        {"info_type": "奖励说明", "info_content": "x" * 32},
    ]
    assert body["notify_url"] == "https://router.example/v1/notify/wechatpay"
    assert creds.platform_private_key is not None
    assert decrypt_field(creds.platform_private_key, body["user_name"]) == "张三"
    nameless = adapter.build(payout("po0002"))
    assert isinstance(nameless, HttpRequest) and "user_name" not in json.loads(nameless.body)
    query = adapter.build(PayoutQuery("po0001"))
    assert isinstance(query, HttpRequest) and query.method == "GET"
    assert query.url.endswith(f"{TRANSFER_BILLS}/out-bill-no/po0001")


@pytest.mark.parametrize(("op", "param"), [
    (Payout("po0003", 100, "USD", PAID, "r", ""), "currency"),
    (payout("po0004", amount=200_000), "name"),
    (payout("po_0005"), None),  # WeChat takes letters and digits only
    (payout("po0006", payee=""), "payee"),
    (payout("po0007", amount=0), "amount"),
])
def test_payouts_wechat_cannot_take_are_refused_before_sending(
        creds: WeChatPayCredentials, op: Payout, param: str | None) -> None:
    adapter = WeChatPayAdapter("wechatpay", "http://127.0.0.1:9", creds)
    with pytest.raises(RailError) as info:
        adapter.build(op)
    assert (info.value.code, info.value.definitive, info.value.param) == (
        "INVALID_REQUEST", True, param)


def test_partner_rails_refuse_payouts(creds: WeChatPayCredentials) -> None:
    ids = PartnerIds(creds.mchid, creds.appid, "1900000109")
    adapter = WeChatPayAdapter("wechatpay", "http://127.0.0.1:9", creds, partner=ids)
    for op in (payout("po0008"), PayoutQuery("po0008")):
        with pytest.raises(RailError) as info:
            adapter.build(op)
        assert info.value.definitive and "partner" in info.value.message


def test_transfer_scene_options(keys: Path) -> None:
    def built(**options: object) -> dict[str, Any]:
        adapter = create_adapter(AdapterConfig("wechatpay", "http://127.0.0.1:9", keys, options))
        request = adapter.build(payout("po0009", remark="佣金"))
        assert isinstance(request, HttpRequest)
        parsed: dict[str, Any] = json.loads(request.body)
        return parsed

    body = built(transfer_scene_id=1005, transfer_scene_report_types=["岗位类型", "报酬说明"])
    assert body["transfer_scene_id"] == "1005"
    assert [i["info_type"] for i in body["transfer_scene_report_infos"]] == ["岗位类型", "报酬说明"]
    with pytest.raises(ValueError, match="transfer_scene_report_types"):
        built(transfer_scene_id="1005")


@pytest.mark.parametrize("state", list(TransferBillState))
def test_every_bill_state_maps(state: TransferBillState) -> None:
    result = payouts.bill_result(TransferBill(out_bill_no="po1", transfer_bill_no="1330",
                                              state=state, transfer_amount=500))
    expected = {
        TransferBillState.SUCCESS: (RailStatus.SUCCEEDED, None, 500),
        TransferBillState.FAIL: (RailStatus.FAILED, "FAIL", None),
        TransferBillState.CANCELLED: (RailStatus.FAILED, "MCH_CANCEL", None),
    }.get(state, (RailStatus.PROCESSING, None, 500))
    assert (result.status, result.failure_code, result.amount) == expected
    assert result.rail_reference == "1330"


def test_a_bill_notice_of_another_merchant_is_unverifiable(creds: WeChatPayCredentials) -> None:
    adapter = WeChatPayAdapter("wechatpay", "http://127.0.0.1:9", creds)
    assert creds.platform_private_key is not None
    for owner in ({"mch_id": "1999999999"}, {}):
        plain = {**owner, "out_bill_no": "po1", "transfer_bill_no": "1330", "state": "SUCCESS"}
        resource = protocol.encrypt_resource(creds.apiv3_key, json.dumps(plain).encode(),
                                             associated_data="mch_payment",
                                             original_type="mch_payment")
        body = json.dumps({"event_type": payouts.BILL_FINISHED, "resource": resource,
                           "resource_type": "encrypt-resource"}).encode()
        headers = protocol.sign_response(creds.platform_private_key,
                                         creds.platform_public_key_id, body, now=time.time())
        with pytest.raises(RailError) as info:
            adapter.verify_notification(headers, body)
        assert info.value.code == "NOTIFICATION_UNVERIFIABLE"


# --------------------------------------------------------------------------- the simulator
async def test_a_paid_payout_waits_for_the_payee_then_succeeds_and_notifies(wx: WeChat) -> None:
    receiver = await wx.receiver()
    first = await wx.call(payout("po1001", notify_url=receiver.url))
    assert first.status is RailStatus.PROCESSING and first.rail_reference
    headers, body = await receiver.next()
    assert b"po1001" not in body  # the bill travels encrypted
    note = wx.adapter.verify_notification(headers, body)
    assert (note.kind, note.rail_order_no, note.result.status, note.result.amount) == (
        NotificationKind.PAYOUT, "po1001", RailStatus.SUCCEEDED, 1000)
    queried = await wx.call(PayoutQuery("po1001"))
    assert (queried.status, queried.rail_reference) == (RailStatus.SUCCEEDED, first.rail_reference)
    assert await wx.payout_row("po1001") == {
        "status": "SUCCESS", "paid": 1000, "payouts": 1, "amount": 1000, "payee": PAID}


async def test_a_frozen_payee_fails_at_once_and_is_notified(wx: WeChat) -> None:
    receiver = await wx.receiver()
    result = await wx.call(payout("po1002", payee=FROZEN, notify_url=receiver.url))
    assert (result.status, result.failure_code) == (RailStatus.FAILED, "ACCOUNT_FROZEN")
    note = wx.adapter.verify_notification(*await receiver.next())
    assert (note.result.status, note.result.failure_code) == (RailStatus.FAILED, "ACCOUNT_FROZEN")
    assert (await wx.payout_row("po1002"))["paid"] == 0


async def test_a_lost_answer_is_paid_and_only_a_query_tells(wx: WeChat) -> None:
    request = wx.adapter.build(payout("po1003", payee=LOST))
    assert isinstance(request, HttpRequest)
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await wx.exchange(request)
    assert (await wx.call(PayoutQuery("po1003"))).status is RailStatus.SUCCEEDED
    assert (await wx.call(payout("po1003", payee=LOST))).status is RailStatus.SUCCEEDED
    assert (await wx.payout_row("po1003"))["payouts"] == 1


async def test_a_bill_number_pays_once(wx: WeChat) -> None:
    receiver = await wx.receiver()
    op = payout("po1004", notify_url=receiver.url)
    results = await asyncio.gather(*(wx.call(op) for _ in range(20)))
    assert len({r.rail_reference for r in results}) == 1
    err = await wx.refused(payout("po1004", amount=999, notify_url=receiver.url))
    assert (err.code, err.definitive) == ("INVALID_REQUEST", True)
    await receiver.next()  # paid
    assert (await wx.call(op)).status is RailStatus.SUCCEEDED
    await wx.settled()
    assert receiver.queue.empty()  # one bill, one notification
    assert list((await wx.ledger())["payouts"]) == ["po1004"]
    assert (await wx.payout_row("po1004"))["payouts"] == 1


async def test_names_are_checked_against_the_payee(wx: WeChat) -> None:
    assert (await wx.sim("POST", "/sim/payees", {"id": PAID, "name": "张三"}))[0] == 200
    wrong = await wx.call(payout("po1005", name="李四"))
    assert (wrong.status, wrong.failure_code) == (RailStatus.FAILED, "NAME_NOT_CORRECT")
    right = await wx.call(payout("po1006", amount=300_000, name="张三"))
    assert right.status is RailStatus.PROCESSING
    assert (await wx.sim("POST", "/sim/payees", {"id": PAID}))[0] == 400


async def test_the_simulator_refuses_what_wechat_refuses(wx: WeChat) -> None:
    assert wx.creds.platform_private_key is not None
    name = encrypt_field(wx.creds.platform_public_key, "张三")
    base = {"appid": wx.creds.appid, "out_bill_no": "po1007", "openid": PAID,
            "transfer_amount": 200_000, "transfer_remark": "r", "transfer_scene_id": "1000",
            "transfer_scene_report_infos": [{"info_type": "活动名称", "info_content": "a"},
                                            {"info_type": "奖励说明", "info_content": "b"}]}
    cases: list[tuple[dict[str, Any], dict[str, str], int, str]] = [
        ({}, {}, 400, "PARAM_ERROR"),  # 2,000 CNY without a name
        ({"user_name": "not-a-cipher"}, {}, 400, "PARAM_ERROR"),
        ({"user_name": name}, {protocol.H_SERIAL: "PUB_KEY_ID_0199"}, 400, "PARAM_ERROR"),
        ({"user_name": name, "transfer_scene_id": "1999"}, {}, 400, "INVALID_REQUEST"),
        ({"user_name": name, "transfer_scene_report_infos": [
            {"info_type": "活动名称", "info_content": "a"}]}, {}, 400, "PARAM_ERROR"),
        ({"user_name": name, "appid": "wx0000000000000000"}, {}, 400, "APPID_MCHID_NOT_MATCH"),
        ({"user_name": name, "out_bill_no": "po_1007"}, {}, 400, "PARAM_ERROR"),
    ]
    for change, headers, status, code in cases:
        answer = await wx.raw("POST", TRANSFER_BILLS, {**base, **change}, **headers)
        assert answer[0] == status and answer[1]["code"] == code, (change, answer)
    assert (await wx.ledger())["payouts"] == {}
    ok, bill = await wx.raw("POST", TRANSFER_BILLS, {**base, "user_name": name})
    assert (ok, bill["state"]) == (200, "WAIT_USER_CONFIRM") and bill["package_info"]


async def test_unknown_bills_and_system_errors(wx: WeChat) -> None:
    missing = await wx.call(PayoutQuery("po1008"))
    assert (missing.status, missing.failure_code) == (RailStatus.NOT_FOUND, "NOT_FOUND")
    await wx.faults(error_rate=1.0)
    for op in (payout("po1008"), PayoutQuery("po1008")):
        err = await wx.refused(op)
        assert (err.code, err.definitive) == ("SYSTEM_ERROR", False)
    await wx.faults()
    assert "po1008" not in (await wx.ledger())["payouts"]


async def test_cancel_before_the_payee_confirms(start_wechat: StartWeChat) -> None:
    wx = await start_wechat(SimulatorOptions(time_scale=100.0))  # the payee never gets to it
    receiver = await wx.receiver()
    assert (await wx.call(payout("po1009", notify_url=receiver.url))).status is (
        RailStatus.PROCESSING)
    path = f"{TRANSFER_BILLS}/out-bill-no/po1009/cancel"
    for _ in range(2):  # a cancelled bill answers the same again
        status, answer = await wx.raw("POST", path)
        assert (status, answer["state"]) == (200, "CANCELLED")
    cancelled = await wx.call(PayoutQuery("po1009"))
    assert (cancelled.status, cancelled.failure_code) == (RailStatus.FAILED, "MCH_CANCEL")
    note = wx.adapter.verify_notification(*await receiver.next())
    assert (note.rail_order_no, note.result.failure_code) == ("po1009", "MCH_CANCEL")
    frozen = await wx.call(payout("po1010", payee=FROZEN))
    assert frozen.status is RailStatus.FAILED
    status, answer = await wx.raw("POST", f"{TRANSFER_BILLS}/out-bill-no/po1010/cancel")
    assert (status, answer["code"]) == (400, "INVALID_REQUEST")
    assert (await wx.raw("POST", f"{TRANSFER_BILLS}/out-bill-no/po1011/cancel"))[0] == 404
    assert (await wx.payout_row("po1009"))["payouts"] == 0


async def test_a_bill_answer_about_another_bill_is_not_applied(wx: WeChat) -> None:
    await wx.call(payout("po1013"))
    request = wx.adapter.build(PayoutQuery("po1013"))
    assert isinstance(request, HttpRequest)
    answer: HttpResponse = await wx.exchange(request)
    with pytest.raises(RailError) as info:
        wx.adapter.parse(PayoutQuery("po1012"), answer)
    assert (info.value.code, info.value.definitive) == ("MALFORMED_RESPONSE", False)
