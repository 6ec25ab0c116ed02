"""Bank simulator driven as a real HTTP server, through the real adapter and signing."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from adapters.bank import protocol
from adapters.bank.adapter import BankAdapter
from adapters.bank.protocol import BankCredentials
from adapters.bank.simulator.app import SIM_KEY, create_app
from adapters.base import (
    Charge,
    Close,
    HttpRequest,
    HttpResponse,
    Notification,
    Query,
    RailStatus,
    Refund,
    RefundQuery,
    Reverse,
)
from adapters.simkit.runtime import SimulatorOptions
from tests.simharness import Receiver, SimHarness

pytestmark = pytest.mark.asyncio

FAST = SimulatorOptions(time_scale=0.01, hang_seconds=0.3, seed=7)
WAIT = 3.0  # upper bound for anything awaited; runs take a fraction of it


class Bank(SimHarness):
    """One running simulator plus a client speaking to it."""

    adapter: BankAdapter

    def __init__(
        self,
        server: TestServer,
        session: aiohttp.ClientSession,
        creds: BankCredentials,
        stack: AsyncExitStack,
    ) -> None:
        super().__init__(server, session, stack, WAIT)
        self.creds = creds
        self.adapter = BankAdapter("bank", str(server.make_url("")), creds)

    async def raw(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        *,
        creds: BankCredentials | None = None,
        now: float | None = None,
    ) -> tuple[int, dict[str, Any], HttpResponse]:
        signer = creds or self.creds
        headers = protocol.sign_request(signer, method, path, body, now=now or time.time())
        url = str(self.server.make_url(path))
        response = await self.exchange(HttpRequest(method, url, headers, body))
        return response.status, json.loads(response.body), response

    async def receiver(self, statuses: list[int] | None = None) -> Receiver:
        scripted = [web.Response(status=s) for s in statuses or []]
        return await self.serve_receiver(Receiver(scripted, web.Response(status=200), WAIT))


StartBank = Callable[[SimulatorOptions], Awaitable[Bank]]


@pytest.fixture
def creds(tmp_path: Path) -> BankCredentials:
    return protocol.load_or_create_bundle(tmp_path / "keys")


@pytest.fixture
async def start_bank(creds: BankCredentials) -> AsyncIterator[StartBank]:
    async with AsyncExitStack() as stack:

        async def start(options: SimulatorOptions) -> Bank:
            server = TestServer(create_app(creds, options), host="127.0.0.1", port=0)
            await server.start_server()
            stack.push_async_callback(server.close)
            session = aiohttp.ClientSession()
            stack.push_async_callback(session.close)
            return Bank(server, session, creds, stack)

        yield start


@pytest.fixture
async def bank(start_bank: StartBank) -> Bank:
    return await start_bank(FAST)


def quickpay(order_no: str, auth_code: str, amount: int = 1000) -> Charge:
    payer = {"auth_code": auth_code}
    return Charge(order_no, amount, "CNY", "quickpay", "coffee", payer, "http://unused.test/")


def native(order_no: str, notify_url: str, amount: int = 1000) -> Charge:
    return Charge(order_no, amount, "CNY", "native", "tea", {}, notify_url)


def refund(order_no: str, refund_no: str, amount: int, notify_url: str) -> Refund:
    return Refund(order_no, refund_no, amount, 1000, "CNY", "returned", notify_url)


async def eventually(check: Callable[[], Awaitable[bool]]) -> None:
    # Only for state the simulator changes on its own timer: nothing to await there.
    deadline = time.monotonic() + WAIT
    while not await check():
        assert time.monotonic() < deadline, "condition never became true"
        await asyncio.sleep(0.01)


# --------------------------------------------------------------------------- payer codes
async def test_charge_succeeds_once_and_is_idempotent(bank: Bank) -> None:
    first = await bank.call(quickpay("o1", "134567890123456781"))
    assert (first.status, first.amount) == (RailStatus.SUCCEEDED, 1000)
    again = await bank.call(quickpay("o1", "134567890123456781"))
    assert again.rail_reference == first.rail_reference
    err = await bank.refused(quickpay("o1", "134567890123456781", amount=999))
    assert (err.code, err.definitive) == ("DUPLICATE_ORDER_NO", True)
    ledger = await bank.ledger()
    assert ledger["orders"]["o1"] == {
        "status": "SUCCESS",
        "charged": 1000,
        "charges": 1,
        "refunded": 0,
    }


async def test_concurrent_identical_charges_take_money_once(bank: Bank) -> None:
    op = quickpay("race", "134567890123456780")
    results = await asyncio.gather(*(bank.call(op) for _ in range(25)))
    assert {r.status for r in results} == {RailStatus.SUCCEEDED}
    assert len({r.rail_reference for r in results}) == 1
    assert (await bank.ledger())["totals"] == {
        "orders": 1,
        "charged": 1000,
        "charges": 1,
        "refunded": 0,
    }


async def test_declined_code_records_failed_order(bank: Bank) -> None:
    err = await bank.refused(quickpay("o2", "134567890123456782"))
    assert (err.code, err.definitive) == ("INSUFFICIENT_FUNDS", True)
    queried = await bank.call(Query("o2"))
    assert (queried.status, queried.failure_code) == (RailStatus.FAILED, "INSUFFICIENT_FUNDS")
    assert (await bank.ledger())["orders"]["o2"]["charged"] == 0


async def test_confirming_code_pays_by_itself(bank: Bank) -> None:
    assert (await bank.call(quickpay("o5", "134567890123456785"))).status is RailStatus.PROCESSING

    async def paid() -> bool:
        return (await bank.call(Query("o5"))).status is RailStatus.SUCCEEDED

    await eventually(paid)
    assert (await bank.ledger())["orders"]["o5"]["charges"] == 1


async def test_never_confirming_code_is_reversed_and_stays_closed(bank: Bank) -> None:
    op = quickpay("o6", "134567890123456786")
    assert (await bank.call(op)).status is RailStatus.PROCESSING
    assert (await bank.call(Query("o6"))).status is RailStatus.PROCESSING
    assert (await bank.call(Reverse("o6"))).status is RailStatus.CLOSED
    assert (await bank.call(Reverse("o6"))).status is RailStatus.CLOSED  # idempotent
    err = await bank.refused(op)
    assert (err.code, err.definitive) == ("ORDER_CLOSED", True)
    assert (await bank.ledger())["orders"]["o6"] == {
        "status": "REVERSED",
        "charged": 0,
        "charges": 0,
        "refunded": 0,
    }


async def test_lost_answer_code_charges_then_drops_the_connection(bank: Bank) -> None:
    op = quickpay("o9", "134567890123456789")
    request = bank.adapter.build(op)
    assert isinstance(request, HttpRequest)
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await bank.exchange(request)
    assert (await bank.ledger())["orders"]["o9"]["charges"] == 1
    assert (await bank.call(Query("o9"))).status is RailStatus.SUCCEEDED
    retried = await bank.call(op)  # the same attempt again is answered normally
    assert retried.status is RailStatus.SUCCEEDED
    assert (await bank.ledger())["totals"]["charges"] == 1


async def test_reverse_before_charge_blocks_the_late_charge(bank: Bank) -> None:
    assert (await bank.call(Reverse("late"))).status is RailStatus.CLOSED
    err = await bank.refused(quickpay("late", "134567890123456781"))
    assert err.code == "ORDER_CLOSED"
    assert (await bank.ledger())["totals"]["charged"] == 0


async def test_reverse_of_paid_order_refunds_everything(bank: Bank) -> None:
    await bank.call(quickpay("paid", "134567890123456781"))
    result = await bank.call(Reverse("paid"))
    assert (result.status, result.refunded_amount) == (RailStatus.CLOSED, 1000)
    assert (await bank.ledger())["orders"]["paid"] == {
        "status": "REVERSED",
        "charged": 1000,
        "charges": 1,
        "refunded": 1000,
    }


# --------------------------------------------------------------------------- QR orders
async def test_qr_order_paid_by_payer_notifies(bank: Bank) -> None:
    receiver = await bank.receiver()
    waiting = await bank.call(native("q1", receiver.url))
    assert waiting.status is RailStatus.REQUIRES_ACTION and waiting.action is not None
    qr = str(waiting.action.data["qr_code"])
    assert qr == f"bankqr://pay/q1?sig={protocol.qr_signature(bank.creds.hmac_key, 'q1')}"
    status, order = await bank.sim("POST", "/sim/orders/q1/pay")
    assert (status, order["status"], order["charged"]) == (200, "SUCCESS", 1000)

    headers, body = await receiver.next()
    note = bank.adapter.verify_notification(headers, body)
    assert (note.kind, note.rail_order_no, note.result.status) == (
        "payment",
        "q1",
        RailStatus.SUCCEEDED,
    )
    assert json.loads(body)["event"] == "order.paid"
    assert (await bank.sim("POST", "/sim/orders/q1/pay"))[0] == 409


async def test_qr_order_failed_by_payer_notifies(bank: Bank) -> None:
    receiver = await bank.receiver()
    await bank.call(native("q2", receiver.url))
    assert (await bank.sim("POST", "/sim/orders/q2/fail"))[0] == 200
    note = bank.adapter.verify_notification(*await receiver.next())
    assert (note.result.status, note.result.failure_code) == (RailStatus.FAILED, "CARD_DECLINED")
    assert (await bank.sim("POST", "/sim/orders/nope/fail"))[0] == 404


async def test_close_rules(bank: Bank) -> None:
    receiver = await bank.receiver()
    await bank.call(native("q3", receiver.url))
    assert (await bank.call(Close("q3"))).status is RailStatus.CLOSED
    assert (await bank.call(Close("q3"))).status is RailStatus.CLOSED
    assert (await bank.refused(native("q3", receiver.url))).code == "ORDER_CLOSED"
    assert (await bank.sim("POST", "/sim/orders/q3/pay"))[0] == 409

    await bank.call(quickpay("p3", "134567890123456781"))
    err = await bank.refused(Close("p3"))
    assert (err.code, err.definitive) == ("ORDER_PAID", True)
    err = await bank.refused(Close("ghost"))
    assert (err.code, err.definitive) == ("ORDER_NOT_FOUND", True)
    assert (await bank.call(Query("ghost"))).status is RailStatus.NOT_FOUND


# --------------------------------------------------------------------------- refunds
async def test_refund_lifecycle(bank: Bank) -> None:
    receiver = await bank.receiver()
    await bank.call(quickpay("r", "134567890123456781"))
    first = await bank.call(refund("r", "rf1", 400, receiver.url))
    assert (first.status, first.amount) == (RailStatus.PROCESSING, 400)
    replay = await bank.call(refund("r", "rf1", 400, receiver.url))
    assert replay.rail_reference == first.rail_reference

    note: Notification = bank.adapter.verify_notification(*await receiver.next())
    assert (note.kind, note.rail_refund_no, note.result.status) == (
        "refund",
        "rf1",
        RailStatus.SUCCEEDED,
    )
    assert (await bank.call(RefundQuery("r", "rf1"))).status is RailStatus.SUCCEEDED
    assert (await bank.call(Query("r"))).refunded_amount == 400

    err = await bank.refused(refund("r", "rf1", 300, receiver.url))
    assert err.code == "DUPLICATE_REFUND_NO"
    err = await bank.refused(refund("r", "rf2", 601, receiver.url))
    assert (err.code, err.definitive) == ("REFUND_EXCEEDS_AMOUNT", True)
    assert (await bank.call(refund("r", "rf2", 600, receiver.url))).status is RailStatus.PROCESSING
    await receiver.next()
    assert (await bank.ledger())["orders"]["r"] == {
        "status": "SUCCESS",
        "charged": 1000,
        "charges": 1,
        "refunded": 1000,
    }


async def test_refund_needs_a_paid_order(bank: Bank) -> None:
    await bank.call(quickpay("unpaid", "134567890123456786"))
    err = await bank.refused(refund("unpaid", "rfx", 1, "http://n.test/"))
    assert (err.code, err.definitive) == ("ORDER_NOT_PAID", True)
    assert (await bank.call(RefundQuery("unpaid", "rfx"))).status is RailStatus.NOT_FOUND


# --------------------------------------------------------------------------- authentication
async def test_requests_must_be_signed_fresh_and_ours(bank: Bank) -> None:
    body = json.dumps({"order_no": "s1", "amount": 1, "currency": "CNY", "auth_code": "1"}).encode()
    other = BankCredentials("BANK9999999999", bank.creds.hmac_key)
    forged_key = BankCredentials(bank.creds.merchant_id, b"\x00" * 32)
    for kwargs in ({"creds": other}, {"creds": forged_key}, {"now": time.time() - 400}):
        status, payload, response = await bank.raw("POST", "/v1/charges", body, **kwargs)
        assert (status, payload["code"]) == (401, "SIGNATURE_INVALID")
        assert protocol.verify_response_headers(
            bank.creds.hmac_key, 401, response.headers, response.body, now=time.time()
        )
    headers = protocol.sign_request(bank.creds, "POST", "/v1/charges", body, now=time.time())
    url = str(bank.server.make_url("/v1/charges"))
    tampered = await bank.exchange(HttpRequest("POST", url, headers, body.replace(b"1,", b"9,")))
    assert tampered.status == 401
    assert (await bank.ledger())["totals"]["orders"] == 0


async def test_invalid_bodies_are_rejected(bank: Bank) -> None:
    base = {"order_no": "v1", "amount": 100, "currency": "CNY", "auth_code": "1"}
    for bad in (
        {**base, "currency": "USD"},
        {**base, "amount": "100"},
        {**base, "amount": True},
        {**base, "amount": -1},
        {**base, "order_no": "has space"},
        {**base, "auth_code": ""},
    ):
        status, payload, _ = await bank.raw("POST", "/v1/charges", json.dumps(bad).encode())
        assert (status, payload["code"]) == (400, "INVALID_REQUEST"), bad
    status, payload, _ = await bank.raw("POST", "/v1/charges", b"[not json")
    assert (status, payload["code"]) == (400, "INVALID_REQUEST")
    assert (await bank.ledger())["totals"]["orders"] == 0


# --------------------------------------------------------------------------- notifications
async def test_unacknowledged_notifications_are_retried(bank: Bank) -> None:
    receiver = await bank.receiver(statuses=[500, 503])
    await bank.call(native("n1", receiver.url))
    await bank.sim("POST", "/sim/orders/n1/pay")
    bodies = [json.loads((await receiver.next())[1]) for _ in range(3)]
    assert len({b["id"] for b in bodies}) == 1 and bodies[0]["event"] == "order.paid"


async def test_notifications_give_up_after_ten_tries(start_bank: StartBank) -> None:
    bank = await start_bank(SimulatorOptions(time_scale=1e-5, seed=1))
    receiver = await bank.receiver(statuses=[500] * 50)
    await bank.call(native("g1", receiver.url))
    await bank.sim("POST", "/sim/orders/g1/pay")
    sim = bank.server.app[SIM_KEY]
    await asyncio.wait_for(sim.notifications_settled(), WAIT)
    assert receiver.queue.qsize() == 10


# --------------------------------------------------------------------------- lifecycle
async def test_shutdown_is_prompt_with_a_hanging_request(creds: BankCredentials) -> None:
    server = TestServer(
        create_app(creds, SimulatorOptions(hang_seconds=30)), host="127.0.0.1", port=0
    )
    await server.start_server()
    adapter = BankAdapter("bank", str(server.make_url("")), creds)
    request = adapter.build(quickpay("h1", "134567890123456789"))
    assert isinstance(request, HttpRequest)
    async with aiohttp.ClientSession() as session:
        call = asyncio.ensure_future(
            session.post(request.url, data=request.body, headers=dict(request.headers))
        )

        async def applied() -> bool:
            return "h1" in server.app[SIM_KEY].ledger.snapshot()["orders"]  # type: ignore[operator]

        await eventually(applied)
        started = time.monotonic()
        await server.close()
        assert time.monotonic() - started < 2
        with pytest.raises(aiohttp.ClientError):
            await asyncio.wait_for(call, WAIT)


async def test_quoted_path_segments_still_verify(bank: Bank) -> None:
    # The signature covers the raw request target; quoting must survive the client.
    assert (await bank.call(Query("odd no/with?chars"))).status is RailStatus.NOT_FOUND


async def test_unpaid_qr_order_expires(bank: Bank) -> None:
    receiver = await bank.receiver()
    body = {
        "order_no": "x1",
        "amount": 50,
        "currency": "CNY",
        "description": "",
        "notify_url": receiver.url,
        "expire_seconds": 1,
    }
    status, order, _ = await bank.raw("POST", "/v1/qr-orders", json.dumps(body).encode())
    assert (status, order["status"]) == (200, "WAITING")

    async def closed() -> bool:
        return (await bank.call(Query("x1"))).status is RailStatus.CLOSED

    await eventually(closed)
    assert (await bank.sim("POST", "/sim/orders/x1/pay"))[0] == 409
