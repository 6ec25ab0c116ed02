"""Pre-authorisation on the Alipay rail (fund authorisation): freezes in person and online,
Zhima credit, captures through `alipay.trade.pay`, unfreezes and the detail query, through
the real adapter and RailClient against the simulator on loopback; and the official SDK's
generic call."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import alipay as alipay_sdk
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from adapters.alipay.adapter import create_adapter
from adapters.base import Notification, NotificationKind, RailError, RailResult, RailStatus
from adapters.commerce_ops import AuthorizationQuery, Authorize, Capture, Release
from tests.conftest import Sim
from tests.payout_harness import PayoutRail

pytestmark = pytest.mark.asyncio

WAIT = 5.0
GOOD_PAYER = "2088102177846881"  # scores 700
LOW_PAYER = "2088102177846883"  # ends in 3: scores 500


def number(prefix: str) -> str:
    return prefix + uuid.uuid4().hex[:22]


def code(last: str) -> str:
    """A payer code whose last digit decides (SANDBOX.md)."""
    return "28345678901234567" + last


@dataclass
class Notes:
    url: str
    bodies: asyncio.Queue[bytes]

    async def next(self, rail: PayoutRail) -> Notification:
        body = await asyncio.wait_for(self.bodies.get(), WAIT)
        return rail.adapter.verify_notification({}, body)


@pytest.fixture
def rail(alipay_sim: Sim) -> PayoutRail:
    return PayoutRail.on(alipay_sim, create_adapter)


@pytest.fixture
async def notes() -> AsyncIterator[Notes]:
    bodies: asyncio.Queue[bytes] = asyncio.Queue()

    async def receive(request: web.Request) -> web.Response:
        bodies.put_nowait(await request.read())
        return web.Response(text="success")

    app = web.Application()
    app.router.add_post("/notify", receive)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    yield Notes(str(server.make_url("/notify")), bodies)
    await server.close()


def authorize(scene: str, amount: int = 10_000, *, min_score: int | None = None,
              notify_url: str = "", **payer: str) -> Authorize:
    return Authorize(number("au"), amount, "CNY", scene, "deposit", payer, notify_url,
                     min_score=min_score)


async def row(rail: PayoutRail, op: Authorize) -> dict[str, Any]:
    rows: dict[str, Any] = (await rail.sim.ledger())["authorizations"]
    return dict(rows[op.rail_auth_no])


async def control(rail: PayoutRail, op: Authorize, action: str) -> int:
    url = f"{rail.sim.base_url}/sim/authorizations/{op.rail_auth_no}/{action}"
    async with rail.sim.session.post(url) as resp:
        return resp.status


async def present(rail: PayoutRail, held: RailResult) -> None:
    """Open the order string as the wallet does."""
    assert held.action is not None
    async with rail.sim.session.post(f"{rail.sim.base_url}/sim/present",
                                     data=str(held.action.data["order_string"])) as resp:
        assert resp.status == 200 and '"10000"' in await resp.text()


async def until_settled(rail: PayoutRail, op: Authorize) -> RailResult:
    for _ in range(100):
        state = await rail.call(AuthorizationQuery(op.rail_auth_no))
        if state.status not in (RailStatus.PROCESSING, RailStatus.REQUIRES_ACTION):
            return state
        await asyncio.sleep(0.05)
    raise AssertionError(f"authorisation {op.rail_auth_no} never settled")


# --------------------------------------------------------------------------- in person
async def test_in_person_freeze_holds_the_amount(rail: PayoutRail) -> None:
    op = authorize("quickpay", auth_code=code("1"))
    held = await rail.call(op)
    assert (held.status, held.amount, held.deposit_free) == (RailStatus.SUCCEEDED, 10_000, False)
    assert held.rail_reference is not None and len(held.rail_reference) == 28
    state = await rail.call(AuthorizationQuery(op.rail_auth_no))
    assert (state.status, state.amount, state.deposit_free, state.rail_reference) == (
        RailStatus.SUCCEEDED, 10_000, False, held.rail_reference)
    assert await row(rail, op) == {"status": "AUTHORIZED", "amount": 10_000, "frozen": 10_000,
                                   "captured": 0, "released": 0, "rest": 10_000,
                                   "credit": False, "score": 700}


async def test_credit_decides_whether_anything_is_frozen(rail: PayoutRail) -> None:
    trusted = authorize("quickpay", min_score=600, auth_code=code("1"))
    free = await rail.call(trusted)
    assert (free.status, free.deposit_free) == (RailStatus.SUCCEEDED, True)
    assert (await rail.call(AuthorizationQuery(trusted.rail_auth_no))).deposit_free is True
    assert (await row(rail, trusted))["frozen"] == 0 and (await row(rail, trusted))["credit"]
    low = authorize("quickpay", min_score=600, auth_code=code("3"))  # a payer scoring 500
    held = await rail.call(low)
    assert (held.status, held.deposit_free) == (RailStatus.SUCCEEDED, False)
    assert (await row(rail, low))["frozen"] == 10_000 and (await row(rail, low))["score"] == 500


async def test_payer_codes_decide_the_freeze(rail: PayoutRail) -> None:
    declined = authorize("quickpay", auth_code=code("2"))
    refused = await rail.outcome(declined)
    assert isinstance(refused, RailError) and refused.definitive
    assert refused.code == "PAYER_BALANCE_NOT_ENOUGH"
    assert (await rail.call(AuthorizationQuery(declined.rail_auth_no))).status is (
        RailStatus.CLOSED)
    assert (await row(rail, declined))["frozen"] == 0

    confirming = authorize("quickpay", auth_code=code("5"))
    assert (await rail.call(confirming)).status is RailStatus.PROCESSING
    assert (await until_settled(rail, confirming)).status is RailStatus.SUCCEEDED

    waiting = authorize("quickpay", auth_code=code("6"))
    assert (await rail.call(waiting)).status is RailStatus.PROCESSING
    assert (await rail.call(AuthorizationQuery(waiting.rail_auth_no))).status is (
        RailStatus.REQUIRES_ACTION)
    assert await control(rail, waiting, "confirm") == 200
    assert await control(rail, waiting, "confirm") == 409  # no longer waiting
    assert (await rail.call(AuthorizationQuery(waiting.rail_auth_no))).status is (
        RailStatus.SUCCEEDED)

    lost = authorize("quickpay", amount=500, auth_code=code("9"))
    unknown = await rail.outcome(lost)
    assert isinstance(unknown, RailError) and not unknown.definitive
    learnt = await rail.call(AuthorizationQuery(lost.rail_auth_no))
    again = await rail.call(lost)  # a retry under the same number: the same authorisation
    assert (learnt.status, again.status) == (RailStatus.SUCCEEDED, RailStatus.SUCCEEDED)
    assert again.rail_reference == learnt.rail_reference
    assert (await row(rail, lost))["frozen"] == 500


# --------------------------------------------------------------------------- online
async def test_online_freeze_waits_for_the_payer_then_notifies(rail: PayoutRail,
                                                               notes: Notes) -> None:
    op = authorize("app", min_score=650, notify_url=notes.url)
    pending = await rail.call(op)
    assert pending.status is RailStatus.REQUIRES_ACTION and pending.action is not None
    assert "alipay.fund.auth.order.app.freeze" in str(pending.action.data["order_string"])
    unseen = await rail.call(AuthorizationQuery(op.rail_auth_no))
    assert unseen.status is RailStatus.NOT_FOUND  # the wallet has not opened it yet
    await present(rail, pending)
    waiting = await rail.call(AuthorizationQuery(op.rail_auth_no))
    assert waiting.status is RailStatus.REQUIRES_ACTION
    assert await control(rail, op, "confirm") == 200
    note = await notes.next(rail)
    assert (note.kind, note.rail_order_no) == (NotificationKind.AUTHORIZATION, op.rail_auth_no)
    assert (note.result.status, note.result.amount, note.result.deposit_free) == (
        RailStatus.SUCCEEDED, 10_000, True)  # the derived payer scores 700
    state = await rail.call(AuthorizationQuery(op.rail_auth_no))
    assert (state.status, state.rail_reference) == (RailStatus.SUCCEEDED,
                                                    note.result.rail_reference)


async def test_declined_online_freeze_closes(rail: PayoutRail, notes: Notes) -> None:
    op = authorize("jsapi", min_score=650, notify_url=notes.url, buyer_id=LOW_PAYER)
    await present(rail, await rail.call(op))
    assert await control(rail, op, "decline") == 200
    note = await notes.next(rail)
    assert (note.kind, note.result.status) == (NotificationKind.AUTHORIZATION, RailStatus.CLOSED)
    assert (await rail.call(AuthorizationQuery(op.rail_auth_no))).status is RailStatus.CLOSED
    assert note.result.rail_reference is not None
    late = await rail.outcome(Capture(op.rail_auth_no, note.result.rail_reference,
                                      number("cp"), 100, "CNY", "late"))
    assert isinstance(late, RailError) and late.definitive
    assert late.code == "ACQ.AUTH_ORDER_HAS_CLOSED"


async def test_online_payer_named_by_the_merchant_is_scored(rail: PayoutRail) -> None:
    op = authorize("mini_program", min_score=650, buyer_id=LOW_PAYER)
    await present(rail, await rail.call(op))
    assert await control(rail, op, "confirm") == 200
    state = await rail.call(AuthorizationQuery(op.rail_auth_no))
    assert (state.status, state.deposit_free) == (RailStatus.SUCCEEDED, False)
    assert (await row(rail, op))["score"] == 500


# --------------------------------------------------------------------------- after the hold
async def test_captures_and_releases_use_the_hold_once(rail: PayoutRail) -> None:
    op = authorize("quickpay", auth_code=code("1"))
    auth_no = (await rail.call(op)).rail_reference
    assert auth_no is not None
    first = Capture(op.rail_auth_no, auth_no, number("cp"), 3000, "CNY", "night 1", final=False)
    paid = await asyncio.gather(*(rail.call(first) for _ in range(3)))
    assert {(p.status, p.amount) for p in paid} == {(RailStatus.SUCCEEDED, 3000)}
    assert len({p.rail_reference for p in paid}) == 1  # one trade, answered again
    order = (await rail.sim.ledger())["orders"][first.rail_order_no]
    assert (order["charged"], order["charges"]) == (3000, 1)

    above = await rail.outcome(Capture(op.rail_auth_no, auth_no, number("cp"), 7001, "CNY", "x"))
    assert isinstance(above, RailError) and above.definitive
    assert above.code == "ACQ.AUTH_AMOUNT_NOT_ENOUGH"

    release = Release(op.rail_auth_no, auth_no, number("rl"), 2000, "checked out early")
    released = await rail.call(release)
    assert (released.status, released.amount) == (RailStatus.SUCCEEDED, 2000)
    assert (await rail.call(release)).status is RailStatus.SUCCEEDED  # once: nothing moves
    too_much = await rail.outcome(Release(op.rail_auth_no, auth_no, number("rl"), 5001, "x"))
    assert isinstance(too_much, RailError) and too_much.definitive
    assert (await rail.call(AuthorizationQuery(op.rail_auth_no))).amount == 5000

    last = await rail.call(Capture(op.rail_auth_no, auth_no, number("cp"), 1000, "CNY", "end"))
    assert last.status is RailStatus.SUCCEEDED  # final: the rest is released with it
    ended = await rail.call(AuthorizationQuery(op.rail_auth_no))
    assert (ended.status, ended.amount) == (RailStatus.SUCCEEDED, 0)
    assert await row(rail, op) == {"status": "FINISH", "amount": 10_000, "frozen": 10_000,
                                   "captured": 4000, "released": 6000, "rest": 0,
                                   "credit": False, "score": 700}


async def test_a_full_release_closes_a_credit_authorisation(rail: PayoutRail) -> None:
    op = authorize("quickpay", amount=800, min_score=600, auth_code=code("1"))
    auth_no = (await rail.call(op)).rail_reference
    assert auth_no is not None
    assert (await rail.call(Release(op.rail_auth_no, auth_no, number("rl"), 800, "done"))
            ).status is RailStatus.SUCCEEDED
    assert (await rail.call(AuthorizationQuery(op.rail_auth_no))).status is RailStatus.CLOSED
    assert (await row(rail, op))["released"] == 800  # the hold ends; no money was held
    assert (await row(rail, op))["frozen"] == 0


async def test_faults_make_outcomes_unknown(rail: PayoutRail) -> None:
    await rail.sim.faults(error_rate=1.0)
    failed = await rail.outcome(authorize("quickpay", auth_code=code("1")))
    assert isinstance(failed, RailError) and not failed.definitive
    assert (await rail.sim.ledger())["authorizations"] == {}  # a system error applies nothing
    await rail.sim.faults(timeout_rate=1.0)
    op = authorize("quickpay", amount=300, auth_code=code("1"))
    lost = await rail.outcome(op)
    assert isinstance(lost, RailError) and not lost.definitive
    await rail.sim.faults()
    learnt = await rail.call(AuthorizationQuery(op.rail_auth_no))
    assert (learnt.status, learnt.amount) == (RailStatus.SUCCEEDED, 300)


async def test_sdk_freezes_through_its_generic_call(rail: PayoutRail) -> None:
    """`server_api` signs any method and verifies the signed answer (it raises otherwise)."""
    keys = rail.sim.keys_dir
    sdk = alipay_sdk.AliPay(
        appid=(keys / "app_id.txt").read_text().strip(), app_notify_url=None,
        app_private_key_string=(keys / "app_private_key.pem").read_text(),
        alipay_public_key_string=(keys / "alipay_public_key.pem").read_text(),
        sign_type="RSA2")
    sdk._gateway = rail.sim.base_url + "/gateway.do"  # the documented override
    freeze = {"out_order_no": "sdk_auth_1", "out_request_no": "sdk_auth_1",
              "auth_code": code("1"), "auth_code_type": "bar_code", "order_title": "押金",
              "amount": "88.00", "product_code": "PRE_AUTH"}
    held = await asyncio.to_thread(sdk.server_api, "alipay.fund.auth.order.freeze", freeze)
    assert (held["code"], held["status"], held["fund_amount"]) == ("10000", "SUCCESS", "88.00")
    query = {"out_order_no": "sdk_auth_1", "out_request_no": "sdk_auth_1"}
    state = await asyncio.to_thread(sdk.server_api, "alipay.fund.auth.operation.detail.query",
                                    query)
    assert (state["order_status"], state["rest_amount"], state["auth_no"]) == (
        "AUTHORIZED", "88.00", held["auth_no"])
