"""Alipay simulator driven as a real HTTP server, through the real adapter and RSA2 signing."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from adapters.alipay import protocol
from adapters.alipay.adapter import AlipayAdapter
from adapters.alipay.protocol import AlipayCredentials
from adapters.alipay.simulator.app import SIM_KEY, create_app
from adapters.alipay.simulator.runtime import Runtime
from adapters.base import (
    Charge,
    Close,
    HttpRequest,
    Notification,
    Query,
    RailError,
    RailResult,
    RailStatus,
    Refund,
    RefundQuery,
    Reverse,
)
from adapters.simkit.runtime import SimulatorOptions
from tests.simharness import Receiver, SimHarness

pytestmark = pytest.mark.asyncio

FAST = SimulatorOptions(time_scale=0.02, hang_seconds=0.3, seed=7)
WAIT = 3.0  # upper bound for anything awaited; runs take a fraction of it


class Alipay(SimHarness):
    """One running simulator plus a client and an adapter speaking to it."""

    adapter: AlipayAdapter

    def __init__(
        self,
        server: TestServer,
        session: aiohttp.ClientSession,
        creds: AlipayCredentials,
        stack: AsyncExitStack,
    ) -> None:
        super().__init__(server, session, stack, WAIT)
        self.creds = creds
        self.base_url = str(server.make_url(""))
        seller = protocol.sandbox_seller_id(creds.app_id)
        self.adapter = AlipayAdapter("alipay", self.base_url, creds, seller_id=seller)

    @property
    def runtime(self) -> Runtime:
        return self.server.app[SIM_KEY]

    async def gateway(
        self, query: dict[str, str], form: dict[str, str] | None = None
    ) -> dict[str, Any]:
        """A hand-made gateway call; returns the whole parsed answer."""
        url = self.server.make_url("/gateway.do").with_query(query)
        data = protocol.urlencode_params(form) if form else None
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        async with self.session.post(url, data=data, headers=headers) as resp:
            assert resp.status == 200
            answer: dict[str, Any] = json.loads(await resp.read())
            return answer

    async def receiver(self, bodies: list[bytes] | None = None) -> Receiver:
        scripted = [web.Response(body=b) for b in bodies or []]
        return await self.serve_receiver(Receiver(scripted, web.Response(body=b"success"), WAIT))

    async def notification(self, receiver: Receiver) -> Notification:
        headers, body = await receiver.next()
        return self.adapter.verify_notification(headers, body)


StartAlipay = Callable[[SimulatorOptions], Awaitable[Alipay]]


@pytest.fixture(scope="module")
def creds(tmp_path_factory: pytest.TempPathFactory) -> AlipayCredentials:
    # RSA key generation is the slow part: one bundle for the module.
    return protocol.load_or_create_bundle(tmp_path_factory.mktemp("alipay") / "keys")


@pytest.fixture
async def start_alipay(creds: AlipayCredentials) -> AsyncIterator[StartAlipay]:
    async with AsyncExitStack() as stack:

        async def start(options: SimulatorOptions) -> Alipay:
            server = TestServer(create_app(creds, options), host="127.0.0.1", port=0)
            await server.start_server()
            stack.push_async_callback(server.close)
            session = aiohttp.ClientSession()
            stack.push_async_callback(session.close)
            return Alipay(server, session, creds, stack)

        yield start


@pytest.fixture
async def alipay(start_alipay: StartAlipay) -> Alipay:
    return await start_alipay(FAST)


NOTIFY = "http://127.0.0.1:9/unused"  # a port nothing listens on: deliveries just fail


def charge(
    no: str, scene: str, amount: int = 1000, notify_url: str = NOTIFY, **payer: str
) -> Charge:
    metadata = {"return_url": "https://shop.test/done"} if scene == "h5" else {}
    return Charge(no, amount, "CNY", scene, "tea", payer, notify_url, metadata)


def quickpay(no: str, auth_code: str, amount: int = 1000, notify_url: str = NOTIFY) -> Charge:
    return charge(no, "quickpay", amount, notify_url, auth_code=auth_code)


def refund(no: str, refund_no: str, amount: int) -> Refund:
    return Refund(no, refund_no, amount, 1000, "CNY", "returned", NOTIFY)


async def eventually(check: Callable[[], Awaitable[bool]]) -> None:
    # Only for state the simulator changes on its own timer: nothing to await there.
    deadline = time.monotonic() + WAIT
    while not await check():
        assert time.monotonic() < deadline, "condition never became true"
        await asyncio.sleep(0.01)


def ledger_row(status: str, charged: int, charges: int, refunded: int) -> dict[str, Any]:
    return {"status": status, "charged": charged, "charges": charges, "refunded": refunded}


# --------------------------------------------------------------------------- payer codes
async def test_payer_code_pays_once_and_repeats_are_refused(alipay: Alipay) -> None:
    first = await alipay.call(quickpay("o1", "283456789012345671"))
    assert (first.status, first.amount) == (RailStatus.SUCCEEDED, 1000)
    assert first.rail_reference and len(first.rail_reference) == 28
    again = await alipay.refused(quickpay("o1", "283456789012345671"))
    assert (again.code, again.definitive) == ("ACQ.TRADE_HAS_SUCCESS", False)
    other = await alipay.refused(quickpay("o1", "283456789012345671", amount=999))
    assert (other.code, other.definitive) == ("ACQ.CONTEXT_INCONSISTENT", True)
    queried = await alipay.call(Query("o1"))
    assert (queried.status, queried.rail_reference) == (RailStatus.SUCCEEDED, first.rail_reference)
    assert (await alipay.ledger())["orders"]["o1"] == ledger_row("TRADE_SUCCESS", 1000, 1, 0)


async def test_concurrent_identical_payments_take_money_once(alipay: Alipay) -> None:
    op = quickpay("race", "283456789012345670")
    outcomes = await asyncio.gather(*(alipay.call(op) for _ in range(20)), return_exceptions=True)
    paid = [o for o in outcomes if isinstance(o, RailResult)]
    refused = [o for o in outcomes if isinstance(o, RailError)]
    assert len(paid) == 1 and paid[0].status is RailStatus.SUCCEEDED
    assert {(e.code, e.definitive) for e in refused} == {("ACQ.TRADE_HAS_SUCCESS", False)}
    assert len(refused) == 19
    totals = (await alipay.ledger())["totals"]
    assert totals == {"orders": 1, "charged": 1000, "charges": 1, "refunded": 0}


async def test_face_code_and_wave_code_scene(alipay: Alipay) -> None:
    assert (await alipay.call(quickpay("face", "fp1234567890"))).status is RailStatus.SUCCEEDED
    # The outdated `wave_code` scene (all the Python SDK knows besides bar_code) is accepted.
    answer = await alipay.gateway(
        signed_query(alipay.creds, "alipay.trade.pay", {
            "out_trade_no": "wave", "scene": "wave_code", "auth_code": "283456789012345671",
            "subject": "tea", "total_amount": 12,
        })
    )
    assert answer["alipay_trade_pay_response"]["code"] == "10000"
    assert answer["alipay_trade_pay_response"]["total_amount"] == "12.00"


async def test_declined_code_moves_no_money(alipay: Alipay) -> None:
    err = await alipay.refused(quickpay("o2", "283456789012345672"))
    assert (err.code, err.definitive) == ("ACQ.BUYER_BALANCE_NOT_ENOUGH", True)
    assert (await alipay.call(Query("o2"))).status is RailStatus.CLOSED
    assert (await alipay.ledger())["orders"]["o2"] == ledger_row("TRADE_CLOSED", 0, 0, 0)


async def test_confirming_code_pays_by_itself_and_notifies(alipay: Alipay) -> None:
    receiver = await alipay.receiver()
    result = await alipay.call(quickpay("o5", "283456789012345675", notify_url=receiver.url))
    assert result.status is RailStatus.PROCESSING and result.rail_reference
    note = await alipay.notification(receiver)
    assert (note.kind, note.rail_order_no, note.result.status, note.result.amount) == (
        "payment", "o5", RailStatus.SUCCEEDED, 1000)
    assert (await alipay.call(Query("o5"))).status is RailStatus.SUCCEEDED
    assert (await alipay.ledger())["orders"]["o5"]["charges"] == 1


async def test_never_confirming_code_is_cancelled_and_stays_closed(alipay: Alipay) -> None:
    op = quickpay("o6", "283456789012345676")
    assert (await alipay.call(op)).status is RailStatus.PROCESSING
    assert (await alipay.call(op)).status is RailStatus.PROCESSING  # same answer again
    # WAIT_BUYER_PAY: the adapter cannot tell a confirming payer from an open QR.
    assert (await alipay.call(Query("o6"))).status is RailStatus.REQUIRES_ACTION
    assert (await alipay.call(Reverse("o6"))).status is RailStatus.CLOSED
    assert (await alipay.call(Reverse("o6"))).status is RailStatus.CLOSED  # idempotent
    err = await alipay.refused(op)
    assert (err.code, err.definitive) == ("ACQ.TRADE_HAS_CLOSE", True)
    assert (await alipay.call(Query("o6"))).status is RailStatus.CLOSED
    assert (await alipay.ledger())["orders"]["o6"] == ledger_row("TRADE_CLOSED", 0, 0, 0)


async def test_lost_answer_code_charges_then_drops_the_connection(alipay: Alipay) -> None:
    receiver = await alipay.receiver()
    op = quickpay("o9", "283456789012345679", notify_url=receiver.url)
    request = alipay.adapter.build(op)
    assert isinstance(request, HttpRequest)
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await alipay.exchange(request)
    assert (await alipay.ledger())["orders"]["o9"]["charges"] == 1
    assert (await alipay.notification(receiver)).result.status is RailStatus.SUCCEEDED
    assert (await alipay.call(Query("o9"))).status is RailStatus.SUCCEEDED
    err = await alipay.refused(op)  # the lost attempt again: paid, proves nothing by itself
    assert (err.code, err.definitive) == ("ACQ.TRADE_HAS_SUCCESS", False)
    assert (await alipay.ledger())["totals"]["charges"] == 1


async def test_cancel_before_payment_blocks_the_late_payment(alipay: Alipay) -> None:
    assert (await alipay.call(Reverse("late"))).status is RailStatus.CLOSED
    err = await alipay.refused(quickpay("late", "283456789012345671"))
    assert (err.code, err.definitive) == ("ACQ.TRADE_HAS_CLOSE", True)
    assert (await alipay.ledger())["totals"]["charged"] == 0


async def test_cancel_of_a_paid_trade_returns_the_money(alipay: Alipay) -> None:
    await alipay.call(quickpay("paid", "283456789012345671"))
    answer = await alipay.gateway(
        signed_query(alipay.creds, "alipay.trade.cancel", {"out_trade_no": "paid"})
    )
    assert answer["alipay_trade_cancel_response"]["action"] == "refund"
    assert (await alipay.call(Reverse("paid"))).status is RailStatus.CLOSED
    assert (await alipay.ledger())["orders"]["paid"] == ledger_row("TRADE_CLOSED", 1000, 1, 1000)


# --------------------------------------------------------------------------- payer scenes
async def test_precreate_exists_only_once_paid_and_notifies(alipay: Alipay) -> None:
    receiver = await alipay.receiver()
    op = charge("q1", "native", notify_url=receiver.url)
    first = await alipay.call(op)
    assert first.status is RailStatus.REQUIRES_ACTION and first.action is not None
    qr = first.action.data["qr_code"]
    assert str(qr).startswith("https://qr.alipay.com/")
    again = await alipay.call(op)
    assert again.action is not None and again.action.data["qr_code"] == qr
    err = await alipay.refused(charge("q1", "native", amount=1001, notify_url=receiver.url))
    assert (err.code, err.definitive) == ("ACQ.CONTEXT_INCONSISTENT", True)
    assert (await alipay.call(Query("q1"))).status is RailStatus.NOT_FOUND

    status, view = await alipay.sim("POST", "/sim/orders/q1/pay")
    assert (status, view["trade_status"]) == (200, "TRADE_SUCCESS")
    note = await alipay.notification(receiver)
    assert (note.kind, note.rail_order_no, note.result.status, note.result.amount) == (
        "payment", "q1", RailStatus.SUCCEEDED, 1000)
    assert (await alipay.call(Query("q1"))).status is RailStatus.SUCCEEDED
    assert (await alipay.sim("POST", "/sim/orders/q1/pay"))[0] == 409
    paid_again = await alipay.refused(op)
    assert paid_again.code == "ACQ.TRADE_HAS_SUCCESS"


async def test_payer_failure_closes_and_notifies(alipay: Alipay) -> None:
    receiver = await alipay.receiver()
    await alipay.call(charge("q2", "native", notify_url=receiver.url))
    assert (await alipay.sim("POST", "/sim/orders/q2/fail"))[0] == 200
    note = await alipay.notification(receiver)
    assert (note.kind, note.result.status) == ("payment", RailStatus.CLOSED)
    assert (await alipay.call(Query("q2"))).status is RailStatus.CLOSED
    assert (await alipay.sim("POST", "/sim/orders/unknown/fail"))[0] == 404


async def test_close_of_an_open_qr_and_of_a_paid_trade(alipay: Alipay) -> None:
    await alipay.call(charge("q3", "native"))
    assert (await alipay.call(Close("q3"))).status is RailStatus.CLOSED
    assert (await alipay.call(Close("q3"))).status is RailStatus.CLOSED
    assert (await alipay.sim("POST", "/sim/orders/q3/pay"))[0] == 409
    assert (await alipay.call(Close("nothing"))).status is RailStatus.NOT_FOUND
    await alipay.call(quickpay("q4", "283456789012345671"))
    err = await alipay.refused(Close("q4"))
    assert (err.code, err.definitive) == ("ACQ.TRADE_STATUS_ERROR", True)
    assert (await alipay.ledger())["orders"]["q3"] == ledger_row("TRADE_CLOSED", 0, 0, 0)


@pytest.mark.parametrize(
    ("scene", "payer"),
    [("jsapi", {"buyer_id": "2088000000000001"}),
     ("mini_program", {"buyer_open_id": "074a1CcTG1LelxKe4xQC0zgNdId0nxi95b5lsNpazWYoCo5",
                       "op_app_id": "2021000000000001"})],
)
async def test_create_gives_a_trade_no_for_the_page(
    alipay: Alipay, scene: str, payer: dict[str, str]
) -> None:
    receiver = await alipay.receiver()
    op = Charge("c1", 1000, "CNY", scene, "tea", payer, receiver.url)
    result = await alipay.call(op)
    assert result.status is RailStatus.REQUIRES_ACTION and result.action is not None
    assert result.action.type == "sdk_params"
    assert result.action.data == {"trade_no": result.rail_reference}
    assert (await alipay.call(Query("c1"))).status is RailStatus.REQUIRES_ACTION
    await alipay.sim("POST", "/sim/orders/c1/pay")
    assert (await alipay.notification(receiver)).result.status is RailStatus.SUCCEEDED


async def test_app_order_string_is_learnt_when_presented(alipay: Alipay) -> None:
    receiver = await alipay.receiver()
    built = alipay.adapter.build(charge("a1", "app", notify_url=receiver.url))
    assert isinstance(built, RailResult) and built.action is not None
    order_string = str(built.action.data["order_string"])
    assert (await alipay.sim("POST", "/sim/orders/a1/pay"))[0] == 404  # not presented yet
    assert (await alipay.call(Query("a1"))).status is RailStatus.NOT_FOUND

    tampered = order_string.replace("total_amount%22%3A%2210.00", "total_amount%22%3A%220.01")
    assert tampered != order_string
    status, answer = await alipay.sim("POST", "/sim/present", tampered)
    assert answer["alipay_trade_app_pay_response"]["sub_code"] == "isv.invalid-signature"

    status, answer = await alipay.sim("POST", "/sim/present", order_string)
    assert status == 200
    assert answer["alipay_trade_app_pay_response"]["code"] == "10000"
    assert (await alipay.sim("POST", "/sim/present", order_string))[0] == 200  # idempotent
    assert (await alipay.call(Query("a1"))).status is RailStatus.REQUIRES_ACTION
    await alipay.sim("POST", "/sim/orders/a1/pay")
    note = await alipay.notification(receiver)
    assert (note.rail_order_no, note.result.status) == ("a1", RailStatus.SUCCEEDED)


async def test_wap_url_opened_by_the_browser(alipay: Alipay) -> None:
    built = alipay.adapter.build(charge("w1", "h5"))
    assert isinstance(built, RailResult) and built.action is not None
    url = str(built.action.data["url"])
    assert url.startswith(alipay.base_url + "/gateway.do?")
    params = dict(parse_qsl(urlsplit(url).query))
    assert params["return_url"] == "https://shop.test/done"
    async with alipay.session.get(url) as resp:
        answer = json.loads(await resp.read())
    assert answer["alipay_trade_wap_pay_response"]["code"] == "10000"
    # The sandbox control takes the whole URL too.
    assert (await alipay.sim("POST", "/sim/present", url))[0] == 200
    assert (await alipay.sim("POST", "/sim/orders/w1/pay"))[0] == 200
    assert (await alipay.ledger())["orders"]["w1"] == ledger_row("TRADE_SUCCESS", 1000, 1, 0)


async def test_present_refuses_what_is_not_an_order_string(alipay: Alipay) -> None:
    assert (await alipay.sim("POST", "/sim/present", "method=alipay.trade.query"))[0] == 400
    assert (await alipay.sim("POST", "/sim/present", "a=1&a=2"))[0] == 400


# --------------------------------------------------------------------------- refunds
async def test_refunds_partial_repeat_cap_and_full(alipay: Alipay) -> None:
    receiver = await alipay.receiver()
    await alipay.call(quickpay("r1", "283456789012345671", notify_url=receiver.url))
    assert (await alipay.notification(receiver)).kind == "payment"

    first = await alipay.call(refund("r1", "rf1", 300))
    assert (first.status, first.amount, first.refunded_amount) == (RailStatus.SUCCEEDED, 300, 300)
    note = await alipay.notification(receiver)
    assert (note.kind, note.rail_refund_no, note.result.refunded_amount) == ("refund", "rf1", 300)
    assert note.result.status is RailStatus.SUCCEEDED

    repeat = await alipay.call(refund("r1", "rf1", 300))  # fund_change N: nothing moved
    assert (repeat.status, repeat.refunded_amount) == (RailStatus.PROCESSING, 300)
    assert (await alipay.call(RefundQuery("r1", "rf1"))).status is RailStatus.SUCCEEDED
    assert (await alipay.call(RefundQuery("r1", "nope"))).status is RailStatus.NOT_FOUND

    over = await alipay.refused(refund("r1", "rf2", 701))
    assert (over.code, over.definitive) == ("ACQ.REFUND_AMT_NOT_EQUAL_TOTAL", True)
    assert (await alipay.call(refund("r1", "rf3", 700))).status is RailStatus.SUCCEEDED
    last = await alipay.notification(receiver)
    assert (last.rail_refund_no, last.result.refunded_amount) == ("rf3", 1000)
    assert (await alipay.call(Query("r1"))).status is RailStatus.CLOSED  # fully refunded
    assert (await alipay.ledger())["orders"]["r1"] == ledger_row("TRADE_CLOSED", 1000, 1, 1000)


async def test_refund_of_unpaid_or_unknown_trades(alipay: Alipay) -> None:
    await alipay.call(quickpay("u6", "283456789012345676"))
    err = await alipay.refused(refund("u6", "rf1", 100))
    assert (err.code, err.definitive) == ("ACQ.TRADE_STATUS_ERROR", True)
    err = await alipay.refused(refund("ghost", "rf1", 100))
    assert (err.code, err.definitive) == ("ACQ.TRADE_NOT_EXIST", True)
    assert (await alipay.call(RefundQuery("ghost", "rf1"))).status is RailStatus.NOT_FOUND


async def test_at_most_fifty_refunds_per_trade(alipay: Alipay) -> None:
    await alipay.call(quickpay("many", "283456789012345671", amount=100))
    results = await asyncio.gather(*(alipay.call(refund("many", f"r{i}", 1)) for i in range(50)))
    assert {r.status for r in results} == {RailStatus.SUCCEEDED}
    err = await alipay.refused(refund("many", "r50", 1))
    assert (err.code, err.definitive) == ("ACQ.INVALID_PARAMETER", True)
    assert (await alipay.ledger())["orders"]["many"]["refunded"] == 50


# --------------------------------------------------------------------------- authentication
async def test_wrong_key_and_wrong_app_are_refused(alipay: Alipay, tmp_path: Path) -> None:
    other = protocol.load_or_create_bundle(tmp_path / "other")
    forged = AlipayCredentials(
        alipay.creds.app_id, other.app_private_key, other.app_public_key,
        alipay.creds.alipay_public_key)
    err = await alipay.refused(Query("x"), AlipayAdapter("a", alipay.base_url, forged))
    assert (err.code, err.definitive) == ("isv.invalid-signature", True)
    stranger = AlipayCredentials(
        other.app_id, alipay.creds.app_private_key, alipay.creds.app_public_key,
        alipay.creds.alipay_public_key)
    err = await alipay.refused(Query("x"), AlipayAdapter("a", alipay.base_url, stranger))
    assert (err.code, err.definitive) == ("isv.invalid-app-id", True)
    # An adapter holding another Alipay public key cannot trust any answer.
    wrong_trust = AlipayCredentials(
        alipay.creds.app_id, alipay.creds.app_private_key, alipay.creds.app_public_key,
        other.alipay_public_key)
    err = await alipay.refused(Query("x"), AlipayAdapter("a", alipay.base_url, wrong_trust))
    assert (err.code, err.definitive) == ("UNVERIFIABLE_RESPONSE", False)


async def test_missing_parameters_and_split_query_body(alipay: Alipay) -> None:
    params = signed_query(alipay.creds, "alipay.trade.query", {"out_trade_no": "x"})
    unsigned = {k: v for k, v in params.items() if k != "sign"}
    answer = await alipay.gateway(unsigned)
    assert answer["alipay_trade_query_response"]["code"] == "40001"
    assert answer["alipay_trade_query_response"]["sub_code"] == "isv.missing-signature"
    assert "sign" in answer  # refusals are signed too
    no_method = {k: v for k, v in params.items() if k != "method"}
    assert (await alipay.gateway(no_method))["error_response"]["code"] == "40001"
    # Java SDK style: protocol params in the query, biz_content in the form body.
    biz = {"biz_content": params.pop("biz_content")}
    answer = await alipay.gateway(params, biz)
    assert answer["alipay_trade_query_response"]["sub_code"] == "ACQ.TRADE_NOT_EXIST"
    dup = await alipay.gateway(params, {**biz, "method": "alipay.trade.query"})
    assert dup["error_response"]["code"] == "40002"


# --------------------------------------------------------------------------- notifications
async def test_notification_resent_until_exactly_success(start_alipay: StartAlipay) -> None:
    alipay = await start_alipay(SimulatorOptions(time_scale=0.0002, hang_seconds=0.3, seed=1))
    receiver = await alipay.receiver([b"fail", b"success\n", b"success"])
    await alipay.call(charge("n1", "native", notify_url=receiver.url))
    await alipay.sim("POST", "/sim/orders/n1/pay")
    notes = [await alipay.notification(receiver) for _ in range(3)]
    assert {(n.rail_order_no, n.result.status) for n in notes} == {("n1", RailStatus.SUCCEEDED)}
    await alipay.runtime.notifications_settled()
    assert receiver.queue.empty()


async def test_notification_form_is_signed_and_has_no_empty_fields(alipay: Alipay) -> None:
    receiver = await alipay.receiver()
    await alipay.call(charge("n3", "native", notify_url=receiver.url))
    await alipay.sim("POST", "/sim/orders/n3/pay")
    headers, body = await receiver.next()
    assert headers["Content-Type"].startswith("application/x-www-form-urlencoded")
    fields = dict(parse_qsl(body.decode(), keep_blank_values=True))
    assert all(fields.values())
    assert fields["sign_type"] == "RSA2" and fields["notify_type"] == "trade_status_sync"
    assert fields["seller_id"] == protocol.sandbox_seller_id(alipay.creds.app_id)
    assert json.loads(fields["fund_bill_list"])[0]["amount"] == "10.00"


# --------------------------------------------------------------------------- helpers
def signed_query(creds: AlipayCredentials, method: str, biz: dict[str, Any]) -> dict[str, str]:
    params = {
        "app_id": creds.app_id,
        "method": method,
        "charset": "utf-8",
        "sign_type": "RSA2",
        "timestamp": protocol.format_time(time.time()),
        "version": "1.0",
        "biz_content": json.dumps(biz, separators=(",", ":")),
    }
    return protocol.sign_params(creds.app_private_key, params)
