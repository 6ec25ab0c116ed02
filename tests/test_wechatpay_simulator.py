"""WeChat Pay simulator driven as a real HTTP server, through the real adapter and signing."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any, Protocol

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography.hazmat.primitives.asymmetric import rsa

from adapters.base import (
    Charge,
    Close,
    HttpRequest,
    HttpResponse,
    Query,
    RailError,
    RailStatus,
    Refund,
    RefundQuery,
    Reverse,
)
from adapters.simkit.runtime import SimulatorOptions
from adapters.wechatpay import protocol
from adapters.wechatpay.adapter import PartnerIds, WeChatPayAdapter
from adapters.wechatpay.protocol import WeChatPayCredentials
from adapters.wechatpay.simulator.app import SIM_KEY, create_app
from tests.simharness import Receiver, SimHarness

pytestmark = pytest.mark.asyncio

FAST = SimulatorOptions(time_scale=0.02, hang_seconds=0.3, seed=7)
WAIT = 5.0  # upper bound for anything awaited; runs take a fraction of it
SUB = "1900000109"


class WeChat(SimHarness):
    """One running simulator plus a client speaking to it through the adapter."""

    adapter: WeChatPayAdapter

    def __init__(
        self,
        server: TestServer,
        session: aiohttp.ClientSession,
        creds: WeChatPayCredentials,
        stack: AsyncExitStack,
    ) -> None:
        super().__init__(server, session, stack, WAIT)
        self.creds = creds
        self.base_url = str(server.make_url("")).rstrip("/")
        self.adapter = WeChatPayAdapter("wechatpay", self.base_url, creds)

    def partner_adapter(self, sub_mchid: str = SUB) -> WeChatPayAdapter:
        ids = PartnerIds(self.creds.mchid, self.creds.appid, sub_mchid)
        return WeChatPayAdapter("wechatpay", self.base_url, self.creds, partner=ids)

    async def raw(
        self,
        method: str,
        path: str,
        payload: object = None,
        *,
        creds: WeChatPayCredentials | None = None,
        now: float | None = None,
    ) -> tuple[int, dict[str, Any], HttpResponse]:
        body = b"" if payload is None else json.dumps(payload).encode()
        signer = creds or self.creds
        headers = protocol.sign_request(signer, method, path, body, now=now or time.time())
        response = await self.exchange(HttpRequest(method, self.base_url + path, headers, body))
        parsed = json.loads(response.body) if response.body else {}
        return response.status, parsed, response

    async def receiver(self, statuses: list[int] | None = None) -> Receiver:
        scripted = [web.Response(status=s) for s in statuses or []]
        return await self.serve_receiver(Receiver(scripted, web.Response(status=204), WAIT))

    async def settled(self) -> None:
        await asyncio.wait_for(self.server.app[SIM_KEY].notifications_settled(), WAIT)


class StartWeChat(Protocol):
    def __call__(
        self, options: SimulatorOptions, *, userpaying_as_202: bool = False
    ) -> Awaitable[WeChat]: ...


@pytest.fixture(scope="module")
def creds(tmp_path_factory: pytest.TempPathFactory) -> WeChatPayCredentials:
    # RSA key generation is the slow part: one bundle serves the whole module.
    return protocol.load_or_create_bundle(tmp_path_factory.mktemp("wxsim") / "keys")


@pytest.fixture
async def start_wechat(creds: WeChatPayCredentials) -> AsyncIterator[StartWeChat]:
    async with AsyncExitStack() as stack:

        async def start(options: SimulatorOptions, *, userpaying_as_202: bool = False) -> WeChat:
            app = create_app(creds, options, userpaying_as_202=userpaying_as_202)
            server = TestServer(app, host="127.0.0.1", port=0)
            await server.start_server()
            stack.push_async_callback(server.close)
            session = aiohttp.ClientSession()
            stack.push_async_callback(session.close)
            return WeChat(server, session, creds, stack)

        yield start


@pytest.fixture
async def wx(start_wechat: StartWeChat) -> WeChat:
    return await start_wechat(FAST)


def quickpay(no: str, auth_code: str, amount: int = 1000) -> Charge:
    return Charge(no, amount, "CNY", "quickpay", "coffee", {"auth_code": auth_code}, "")


def payer_scene(no: str, scene: str, notify_url: str, amount: int = 1000, **payer: str) -> Charge:
    return Charge(no, amount, "CNY", scene, "tea", payer, notify_url)


def refund(no: str, refund_no: str, amount: int, notify_url: str = "") -> Refund:
    return Refund(no, refund_no, amount, 1000, "CNY", "returned", notify_url)


def code(digit: str) -> str:
    return "13456789012345678" + digit


async def eventually(check: Callable[[], Awaitable[bool]]) -> None:
    # Only for state the simulator changes on its own timer: nothing to await there.
    deadline = time.monotonic() + WAIT
    while not await check():
        assert time.monotonic() < deadline, "condition never became true"
        await asyncio.sleep(0.01)


# --------------------------------------------------------------------------- codepay digits
async def test_codepay_succeeds_once_and_is_idempotent(wx: WeChat) -> None:
    first = await wx.call(quickpay("cp_0001", code("1")))
    assert (first.status, first.amount) == (RailStatus.SUCCEEDED, 1000)
    assert first.rail_reference and len(first.rail_reference) == 28
    again = await wx.call(quickpay("cp_0001", code("1")))
    assert again.rail_reference == first.rail_reference
    err = await wx.refused(quickpay("cp_0001", code("1"), amount=999))
    assert (err.code, err.definitive) == ("OUT_TRADE_NO_USED", True)
    assert (await wx.ledger())["orders"]["cp_0001"] == {
        "status": "SUCCESS",
        "charged": 1000,
        "charges": 1,
        "refunded": 0,
    }


async def test_concurrent_identical_codepays_take_money_once(wx: WeChat) -> None:
    op = quickpay("cp_race", code("0"))
    results = await asyncio.gather(*(wx.call(op) for _ in range(20)))
    assert {r.status for r in results} == {RailStatus.SUCCEEDED}
    assert len({r.rail_reference for r in results}) == 1
    assert (await wx.ledger())["totals"] == {
        "orders": 1,
        "charged": 1000,
        "charges": 1,
        "refunded": 0,
    }


async def test_declined_code_is_a_definitive_refusal(wx: WeChat) -> None:
    err = await wx.refused(quickpay("cp_0002", code("2")))
    assert (err.code, err.definitive) == ("NOTENOUGH", True)
    assert (await wx.refused(quickpay("cp_0002", code("2")))).code == "NOTENOUGH"
    queried = await wx.call(Query("cp_0002"))
    assert (queried.status, queried.failure_code) == (RailStatus.FAILED, "PAYERROR")
    assert (await wx.ledger())["orders"]["cp_0002"]["charged"] == 0


@pytest.mark.parametrize("as_202", [False, True])
async def test_confirming_code_pays_by_itself(start_wechat: StartWeChat, as_202: bool) -> None:
    wx = await start_wechat(FAST, userpaying_as_202=as_202)
    op = quickpay("cp_0005", code("5"))
    request = wx.adapter.build(op)
    assert isinstance(request, HttpRequest)
    response = await wx.exchange(request)
    assert response.status == (202 if as_202 else 200)
    assert wx.adapter.parse(op, response).status is RailStatus.PROCESSING

    async def paid() -> bool:
        return (await wx.call(Query("cp_0005"))).status is RailStatus.SUCCEEDED

    await eventually(paid)
    assert (await wx.ledger())["orders"]["cp_0005"]["charges"] == 1


@pytest.mark.parametrize("as_202", [False, True])
async def test_never_confirming_code_is_reversed(start_wechat: StartWeChat, as_202: bool) -> None:
    wx = await start_wechat(FAST, userpaying_as_202=as_202)
    op = quickpay("cp_0006", code("6"))
    assert (await wx.call(op)).status is RailStatus.PROCESSING
    assert (await wx.call(Query("cp_0006"))).status is RailStatus.PROCESSING
    assert (await wx.call(Reverse("cp_0006"))).status is RailStatus.CLOSED
    assert (await wx.call(Reverse("cp_0006"))).status is RailStatus.CLOSED  # idempotent
    queried = await wx.call(Query("cp_0006"))
    assert (queried.status, queried.failure_code) == (RailStatus.CLOSED, "REVOKED")
    assert (await wx.call(op)).status is RailStatus.CLOSED  # ORDER_CLOSED on a repeat
    assert (await wx.ledger())["orders"]["cp_0006"] == {
        "status": "REVOKED",
        "charged": 0,
        "charges": 0,
        "refunded": 0,
    }


async def test_lost_answer_code_charges_then_drops_the_connection(wx: WeChat) -> None:
    op = quickpay("cp_0009", code("9"))
    request = wx.adapter.build(op)
    assert isinstance(request, HttpRequest)
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await wx.exchange(request)
    assert (await wx.ledger())["orders"]["cp_0009"]["charges"] == 1
    assert (await wx.call(Query("cp_0009"))).status is RailStatus.SUCCEEDED
    assert (await wx.call(op)).status is RailStatus.SUCCEEDED  # a retry is answered
    assert (await wx.ledger())["totals"]["charges"] == 1


async def test_reverse_of_paid_order_refunds_everything(wx: WeChat) -> None:
    await wx.call(quickpay("cp_paid", code("1")))
    assert (await wx.call(Reverse("cp_paid"))).status is RailStatus.CLOSED
    assert (await wx.ledger())["orders"]["cp_paid"] == {
        "status": "REVOKED",
        "charged": 1000,
        "charges": 1,
        "refunded": 1000,
    }
    err = await wx.refused(Reverse("cp_ghost"))
    assert (err.code, err.definitive) == ("ORDER_NOT_EXIST", True)


# --------------------------------------------------------------------------- payer scenes
async def test_native_order_paid_by_payer_notifies(wx: WeChat) -> None:
    receiver = await wx.receiver()
    waiting = await wx.call(payer_scene("nt_0001", "native", receiver.url))
    assert waiting.status is RailStatus.REQUIRES_ACTION and waiting.action is not None
    assert waiting.action.type == "qr_code"
    assert str(waiting.action.data["qr_code"]).startswith("weixin://wxpay/bizpayurl?pr=")
    assert (await wx.call(Query("nt_0001"))).status is RailStatus.REQUIRES_ACTION

    status, tx = await wx.sim("POST", "/sim/orders/nt_0001/pay")
    assert (status, tx["trade_state"]) == (200, "SUCCESS")
    headers, body = await receiver.next()
    assert headers["Wechatpay-Serial"] == wx.creds.platform_public_key_id
    envelope = json.loads(body)
    assert (envelope["event_type"], envelope["resource_type"]) == (
        "TRANSACTION.SUCCESS",
        "encrypt-resource",
    )
    assert "nt_0001" not in body.decode()  # the transaction travels encrypted
    note = wx.adapter.verify_notification(headers, body)
    assert (note.kind, note.rail_order_no, note.result.status, note.result.amount) == (
        "payment",
        "nt_0001",
        RailStatus.SUCCEEDED,
        1000,
    )
    assert note.result.rail_reference == tx["transaction_id"]
    assert (await wx.call(Query("nt_0001"))).status is RailStatus.SUCCEEDED
    assert (await wx.sim("POST", "/sim/orders/nt_0001/pay"))[0] == 409
    assert (await wx.ledger())["orders"]["nt_0001"]["charges"] == 1


async def test_in_app_scene_answers(wx: WeChat) -> None:
    url = "http://127.0.0.1:9/notify"
    for no, scene in (("js_0001", "jsapi"), ("mp_0001", "mini_program")):
        result = await wx.call(payer_scene(no, scene, url, openid="oUser"))
        assert result.action is not None and result.action.type == "sdk_params"
        data = {k: str(v) for k, v in result.action.data.items()}
        message = f"{data['appId']}\n{data['timeStamp']}\n{data['nonceStr']}\n{data['package']}\n"
        assert data["appId"] == wx.creds.appid and data["package"].startswith("prepay_id=wx")
        assert protocol.rsa_verify(wx.creds.merchant_public_key, message.encode(), data["paySign"])
    app = await wx.call(payer_scene("ap_0001", "app", url))
    assert app.action is not None and app.action.data["package"] == "Sign=WXPay"
    assert app.action.data["partnerid"] == wx.creds.mchid
    h5 = await wx.call(payer_scene("h5_0001", "h5", url, client_ip="203.0.113.9"))
    assert h5.action is not None and h5.action.type == "redirect"
    assert str(h5.action.data["url"]).startswith("https://wx.tenpay.com/")
    assert (await wx.ledger())["totals"]["orders"] == 4


async def test_payer_failure_is_not_notified(wx: WeChat) -> None:
    receiver = await wx.receiver()
    await wx.call(payer_scene("nt_fail", "native", receiver.url))
    status, tx = await wx.sim("POST", "/sim/orders/nt_fail/fail")
    assert (status, tx["trade_state"]) == (200, "PAYERROR")
    await wx.settled()
    assert receiver.queue.empty()
    assert (await wx.call(Query("nt_fail"))).status is RailStatus.FAILED
    assert (await wx.sim("POST", "/sim/orders/nope_01/fail"))[0] == 404


async def test_prepay_idempotency(wx: WeChat) -> None:
    url = "http://127.0.0.1:9/notify"
    first = await wx.call(payer_scene("id_0001", "native", url))
    again = await wx.call(payer_scene("id_0001", "native", url))
    assert first.action == again.action
    js = payer_scene("id_0002", "jsapi", url, openid="o1")
    first_js, again_js = await wx.call(js), await wx.call(js)
    assert first_js.action is not None and again_js.action is not None
    assert first_js.action.data["package"] == again_js.action.data["package"]
    for changed in (
        payer_scene("id_0001", "native", url, amount=1001),
        payer_scene("id_0001", "native", "http://127.0.0.1:9/other"),
        payer_scene("id_0001", "app", url),
    ):
        err = await wx.refused(changed)
        assert (err.code, err.definitive) == ("OUT_TRADE_NO_USED", True)
    await wx.sim("POST", "/sim/orders/id_0001/pay")
    err = await wx.refused(payer_scene("id_0001", "native", url))
    assert (err.code, err.definitive) == ("ORDERPAID", False)  # paid: query, do not fail


async def test_close_rules(wx: WeChat) -> None:
    url = "http://127.0.0.1:9/notify"
    await wx.call(payer_scene("cl_0001", "native", url))
    assert (await wx.call(Close("cl_0001"))).status is RailStatus.CLOSED
    assert (await wx.call(Close("cl_0001"))).status is RailStatus.CLOSED
    queried = await wx.call(Query("cl_0001"))
    assert (queried.status, queried.failure_code) == (RailStatus.CLOSED, "CLOSED")
    assert (await wx.call(payer_scene("cl_0001", "native", url))).status is RailStatus.CLOSED
    assert (await wx.sim("POST", "/sim/orders/cl_0001/pay"))[0] == 409

    await wx.call(quickpay("cl_paid", code("1")))
    err = await wx.refused(Close("cl_paid"))
    assert (err.code, err.definitive) == ("ORDERPAID", True)
    assert (await wx.ledger())["orders"]["cl_paid"]["status"] == "SUCCESS"
    err = await wx.refused(Close("cl_ghost"))
    assert (err.code, err.definitive) == ("ORDER_NOT_EXIST", True)
    assert (await wx.call(Query("cl_ghost"))).status is RailStatus.NOT_FOUND


# --------------------------------------------------------------------------- refunds
async def test_refund_lifecycle(wx: WeChat) -> None:
    receiver = await wx.receiver()
    await wx.call(quickpay("rf_order", code("1")))
    first = await wx.call(refund("rf_order", "rf_1", 400, receiver.url))
    assert (first.status, first.amount) == (RailStatus.PROCESSING, 400)
    replay = await wx.call(refund("rf_order", "rf_1", 400, receiver.url))
    assert replay.rail_reference == first.rail_reference

    headers, body = await receiver.next()
    assert json.loads(body)["event_type"] == "REFUND.SUCCESS"
    note = wx.adapter.verify_notification(headers, body)
    assert (note.kind, note.rail_order_no, note.rail_refund_no) == ("refund", "rf_order", "rf_1")
    assert (note.result.status, note.result.amount) == (RailStatus.SUCCEEDED, 400)
    assert (await wx.call(RefundQuery("rf_order", "rf_1"))).status is RailStatus.SUCCEEDED
    paid = await wx.call(Query("rf_order"))  # trade_state REFUND: still a paid order
    assert paid.status is RailStatus.SUCCEEDED

    err = await wx.refused(refund("rf_order", "rf_1", 300))
    assert (err.code, err.definitive) == ("INVALID_REQUEST", True)
    err = await wx.refused(refund("rf_order", "rf_2", 601))
    assert (err.code, err.definitive) == ("INVALID_REQUEST", True)
    assert (await wx.call(refund("rf_order", "rf_2", 600))).status is RailStatus.PROCESSING

    async def settled() -> bool:
        return (await wx.call(RefundQuery("rf_order", "rf_2"))).status is RailStatus.SUCCEEDED

    await eventually(settled)
    assert (await wx.ledger())["orders"]["rf_order"] == {
        "status": "REFUND",
        "charged": 1000,
        "charges": 1,
        "refunded": 1000,
    }


async def test_refund_needs_a_paid_order(wx: WeChat) -> None:
    await wx.call(quickpay("rf_unpaid", code("6")))
    err = await wx.refused(refund("rf_unpaid", "rf_x", 1))
    assert (err.code, err.definitive) == ("INVALID_REQUEST", True)
    err = await wx.refused(refund("rf_ghost", "rf_y", 1))
    assert (err.code, err.definitive) == ("RESOURCE_NOT_EXISTS", True)
    assert (await wx.call(RefundQuery("rf_unpaid", "rf_x"))).status is RailStatus.NOT_FOUND


async def test_at_most_fifty_refunds_per_order(wx: WeChat) -> None:
    await wx.call(quickpay("rf_many", code("1")))
    for n in range(50):
        await wx.call(refund("rf_many", f"rf_many_{n}", 1))
    err = await wx.refused(refund("rf_many", "rf_many_50", 1))
    assert (err.code, err.definitive) == ("INVALID_REQUEST", True)


# --------------------------------------------------------------------------- authentication
async def test_requests_must_be_signed_fresh_and_ours(wx: WeChat) -> None:
    payload = {
        "appid": wx.creds.appid,
        "mchid": wx.creds.mchid,
        "description": "x",
        "out_trade_no": "sg_0001",
        "notify_url": "http://127.0.0.1:9/n",
        "amount": {"total": 1},
    }
    path = "/v3/pay/transactions/native"
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cases: list[tuple[WeChatPayCredentials, float | None]] = [
        (dataclasses.replace(wx.creds, merchant_private_key=stranger), None),
        (dataclasses.replace(wx.creds, mchid="1999999999"), None),
        (dataclasses.replace(wx.creds, merchant_cert_serial="ABCDEF0123"), None),
        (wx.creds, time.time() - 301),
    ]
    for signer, now in cases:
        status, body, response = await wx.raw("POST", path, payload, creds=signer, now=now)
        assert (status, body["code"]) == (401, "SIGN_ERROR"), signer
        assert protocol.verify_response(
            wx.creds.platform_public_key,
            wx.creds.platform_public_key_id,
            response.headers,
            response.body,
            now=time.time(),
        )
    raw = json.dumps(payload).encode()
    headers = protocol.sign_request(wx.creds, "POST", path, raw, now=time.time())
    tampered = raw.replace(b'"total": 1', b'"total": 9')
    answer = await wx.exchange(HttpRequest("POST", wx.base_url + path, headers, tampered))
    assert answer.status == 401
    unsigned = await wx.exchange(HttpRequest("POST", wx.base_url + path, {}, raw))
    assert unsigned.status == 401
    assert (await wx.ledger())["totals"]["orders"] == 0
    # Through the adapter, a signed 401 is a definitive configuration refusal.
    bad = WeChatPayAdapter(
        "wechatpay", wx.base_url, dataclasses.replace(wx.creds, mchid="1999999999")
    )
    err = await wx.refused(payer_scene("sg_0002", "native", "http://127.0.0.1:9/n"), bad)
    assert (err.code, err.definitive) == ("SIGN_ERROR", True)


async def test_invalid_bodies_are_rejected(wx: WeChat) -> None:
    base = {
        "appid": wx.creds.appid,
        "mchid": wx.creds.mchid,
        "description": "x",
        "out_trade_no": "bd_0001",
        "payer": {"auth_code": code("1")},
        "scene_info": {"store_info": {"out_id": "s"}},
        "amount": {"total": 100, "currency": "CNY"},
    }
    path = "/v3/pay/transactions/codepay"
    for bad, expected in (
        ({**base, "appid": "wxother"}, "APPID_MCHID_NOT_MATCH"),
        ({**base, "mchid": "1999999999"}, "APPID_MCHID_NOT_MATCH"),
        ({**base, "amount": {"total": 100, "currency": "USD"}}, "PARAM_ERROR"),
        ({**base, "amount": {"total": "100"}}, "PARAM_ERROR"),
        ({**base, "amount": {"total": True}}, "PARAM_ERROR"),
        ({**base, "out_trade_no": "bad no"}, "PARAM_ERROR"),
        ({**base, "payer": {}}, "PARAM_ERROR"),
        ({**base, "scene_info": {}}, "PARAM_ERROR"),
        ({**base, "description": ""}, "PARAM_ERROR"),
        ({**base, "time_expire": "tomorrow"}, "PARAM_ERROR"),
    ):
        status, body, _ = await wx.raw("POST", path, bad)
        assert (status, body["code"]) == (400, expected), bad
    native = {**base, "notify_url": "http://127.0.0.1:9/n?x=1"}
    status, body, _ = await wx.raw("POST", "/v3/pay/transactions/native", native)
    assert (status, body["code"]) == (400, "PARAM_ERROR")
    assert (await wx.ledger())["totals"]["orders"] == 0


# --------------------------------------------------------------------------- partner mode
async def test_partner_orders_are_kept_per_sub_merchant(wx: WeChat) -> None:
    receiver = await wx.receiver()
    one, two = wx.partner_adapter(SUB), wx.partner_adapter("1900000222")
    op = payer_scene("pt_0001", "native", receiver.url)
    assert (await wx.call(op, one)).status is RailStatus.REQUIRES_ACTION
    assert (await wx.call(op, two)).status is RailStatus.REQUIRES_ACTION
    assert (await wx.sim("POST", "/sim/orders/pt_0001/pay"))[0] == 404  # ambiguous
    assert (await wx.sim("POST", f"/sim/orders/pt_0001/pay?sub_mchid={SUB}"))[0] == 200
    delivered = await receiver.next()
    note = one.verify_notification(*delivered)
    assert (note.rail_order_no, note.result.status) == ("pt_0001", RailStatus.SUCCEEDED)
    with pytest.raises(RailError):  # the other sub-merchant's adapter must not accept it
        two.verify_notification(*delivered)
    assert (await wx.call(Query("pt_0001"), one)).status is RailStatus.SUCCEEDED
    assert (await wx.call(Query("pt_0001"), two)).status is RailStatus.REQUIRES_ACTION
    assert (await wx.call(Query("pt_0001"))).status is RailStatus.NOT_FOUND  # direct scope
    assert (await wx.call(refund("pt_0001", "pt_rf_1", 100), one)).status is RailStatus.PROCESSING
    assert (await wx.call(RefundQuery("pt_0001", "pt_rf_1"), two)).status is RailStatus.NOT_FOUND
    assert (await wx.call(Close("pt_0001"), two)).status is RailStatus.CLOSED
    orders = (await wx.ledger())["orders"]
    assert orders[f"{SUB}/pt_0001"]["charges"] == 1
    assert orders["1900000222/pt_0001"]["status"] == "CLOSED"


async def test_partner_codepay_and_reverse(wx: WeChat) -> None:
    adapter = wx.partner_adapter()
    assert (await wx.call(quickpay("pt_cp_01", code("6")), adapter)).status is RailStatus.PROCESSING
    assert (await wx.call(Reverse("pt_cp_01"), adapter)).status is RailStatus.CLOSED
    assert (await wx.ledger())["orders"][f"{SUB}/pt_cp_01"]["status"] == "REVOKED"


# --------------------------------------------------------------------------- notifications
async def test_unacknowledged_notifications_are_resent(wx: WeChat) -> None:
    receiver = await wx.receiver(statuses=[500, 400])
    await wx.call(payer_scene("nf_0001", "native", receiver.url))
    await wx.sim("POST", "/sim/orders/nf_0001/pay")
    attempts = [await receiver.next() for _ in range(3)]
    assert len({json.loads(body)["id"] for _, body in attempts}) == 1
    for headers, body in attempts:  # each attempt is signed afresh and verifies
        assert wx.adapter.verify_notification(headers, body).rail_order_no == "nf_0001"
    assert len({headers["Wechatpay-Nonce"] for headers, _ in attempts}) == 3


async def test_notifications_give_up_after_the_schedule(start_wechat: StartWeChat) -> None:
    wx = await start_wechat(SimulatorOptions(time_scale=1e-6, seed=1))
    receiver = await wx.receiver(statuses=[500] * 50)
    await wx.call(payer_scene("nf_0003", "native", receiver.url))
    await wx.sim("POST", "/sim/orders/nf_0003/pay")
    await wx.settled()
    assert receiver.queue.qsize() == 16


# --------------------------------------------------------------------------- lifecycle
async def test_shutdown_is_prompt_with_a_hanging_request(creds: WeChatPayCredentials) -> None:
    server = TestServer(
        create_app(creds, SimulatorOptions(hang_seconds=30)), host="127.0.0.1", port=0
    )
    await server.start_server()
    adapter = WeChatPayAdapter("wechatpay", str(server.make_url("")), creds)
    request = adapter.build(quickpay("hang_0001", code("9")))
    assert isinstance(request, HttpRequest)
    async with aiohttp.ClientSession() as session:
        call = asyncio.ensure_future(
            session.post(request.url, data=request.body, headers=dict(request.headers))
        )

        async def applied() -> bool:
            orders: dict[str, object] = server.app[SIM_KEY].ledger.snapshot()["orders"]  # type: ignore[assignment]
            return "hang_0001" in orders

        await eventually(applied)
        started = time.monotonic()
        await server.close()
        assert time.monotonic() - started < 2
        with pytest.raises(aiohttp.ClientError):
            await asyncio.wait_for(call, WAIT)


async def test_simulator_refuses_a_bundle_without_the_platform_key(
    creds: WeChatPayCredentials,
) -> None:
    merchant_only = dataclasses.replace(creds, platform_private_key=None)
    with pytest.raises(ValueError, match="platform_private_key"):
        create_app(merchant_only)
