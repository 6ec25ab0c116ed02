"""Payouts on the bank rail: signed credit transfers through the real adapter and
RailClient, against the bank simulator on loopback, with the bank's signed `transfer.*`
notifications delivered to a merchant endpoint."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from adapters.bank.adapter import create_adapter
from adapters.base import (
    Notification,
    NotificationKind,
    PayoutQuery,
    RailError,
    RailErrorCode,
    RailStatus,
)
from tests.conftest import Sim
from tests.payout_harness import PayoutRail, payout, payout_no
from tests.simharness import Receiver

pytestmark = pytest.mark.asyncio

WAIT = 5.0  # upper bound for a notification; the bank settles in 0.1 s here
ACCOUNT = "6222020000000001"  # paid
FROZEN = "6222020000000002"  # last digit 2: the account cannot receive
LOST = "6222020000000009"  # last digit 9: taken, but the answer never comes


@pytest.fixture
def rail(bank_sim: Sim) -> PayoutRail:
    return PayoutRail.on(bank_sim, create_adapter)


@pytest.fixture
async def merchant() -> AsyncIterator[Receiver]:
    """The merchant's notification endpoint: acknowledges everything, records it."""
    receiver = Receiver([], web.Response(status=200), WAIT)
    app = web.Application()
    app.router.add_post("/notify", receiver.handle)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    receiver.url = str(server.make_url("/notify"))
    yield receiver
    await server.close()


async def _notified(rail: PayoutRail, merchant: Receiver) -> Notification:
    headers, body = await merchant.next()
    note = rail.adapter.verify_notification(headers, body)
    assert note.kind is NotificationKind.PAYOUT
    return note


async def test_taken_then_paid_and_notified(rail: PayoutRail, merchant: Receiver) -> None:
    op = payout(ACCOUNT, amount=2500, notify_url=merchant.url)
    taken = await rail.call(op)
    assert (taken.status, taken.amount) == (RailStatus.PROCESSING, 2500)
    note = await _notified(rail, merchant)
    assert (note.rail_order_no, note.result.status, note.result.amount) == (
        op.rail_payout_no, RailStatus.SUCCEEDED, 2500)
    assert note.result.rail_reference == taken.rail_reference
    queried = await rail.call(PayoutQuery(op.rail_payout_no))
    assert (queried.status, queried.amount) == (RailStatus.SUCCEEDED, 2500)
    row = (await rail.payouts())[op.rail_payout_no]
    assert row == {"status": "SUCCEEDED", "paid": 2500, "payouts": 1, "amount": 2500,
                   "payee": ACCOUNT}


async def test_frozen_account_is_refused_and_nothing_is_paid(
    rail: PayoutRail, merchant: Receiver
) -> None:
    op = payout(FROZEN, notify_url=merchant.url)
    refused = await rail.call(op)
    assert (refused.status, refused.failure_code) == (RailStatus.FAILED, "ACCOUNT_FROZEN")
    assert refused.failure_message
    note = await _notified(rail, merchant)
    assert (note.result.status, note.result.failure_code) == (RailStatus.FAILED,
                                                             "ACCOUNT_FROZEN")
    queried = await rail.call(PayoutQuery(op.rail_payout_no))
    assert (queried.status, queried.failure_code) == (RailStatus.FAILED, "ACCOUNT_FROZEN")
    row = (await rail.payouts())[op.rail_payout_no]
    assert (row["status"], row["paid"], row["payouts"]) == ("FAILED", 0, 0)


async def test_lost_answer_is_learnt_by_query_and_never_paid_twice(
    rail: PayoutRail, merchant: Receiver
) -> None:
    op = payout(LOST, amount=700, notify_url=merchant.url)
    lost = await rail.outcome(op)
    assert isinstance(lost, RailError) and not lost.definitive
    assert lost.code == RailErrorCode.TIMEOUT
    await _notified(rail, merchant)  # the bank settled it meanwhile
    queried = await rail.call(PayoutQuery(op.rail_payout_no))
    assert (queried.status, queried.amount) == (RailStatus.SUCCEEDED, 700)
    retried = await rail.call(op)  # the same number gives the same transfer back
    assert (retried.status, retried.rail_reference) == (RailStatus.SUCCEEDED,
                                                        queried.rail_reference)
    row = (await rail.payouts())[op.rail_payout_no]
    assert (row["paid"], row["payouts"]) == (700, 1)


async def test_name_must_match_the_account_holder(rail: PayoutRail, merchant: Receiver) -> None:
    await rail.name_payee(ACCOUNT, "Zhang San")
    wrong = await rail.call(payout(ACCOUNT, name="Li Si", notify_url=merchant.url))
    assert (wrong.status, wrong.failure_code) == (RailStatus.FAILED, "NAME_NOT_CORRECT")
    assert (await _notified(rail, merchant)).result.failure_code == "NAME_NOT_CORRECT"
    right = payout(ACCOUNT, name="Zhang San", notify_url=merchant.url)
    assert (await rail.call(right)).status is RailStatus.PROCESSING
    note = await _notified(rail, merchant)
    assert (note.rail_order_no, note.result.status) == (right.rail_payout_no,
                                                        RailStatus.SUCCEEDED)


async def test_same_number_pays_once(rail: PayoutRail, merchant: Receiver) -> None:
    op = payout(ACCOUNT, amount=900, notify_url=merchant.url)
    results = await asyncio.gather(*(rail.call(op) for _ in range(5)))
    assert len({r.rail_reference for r in results}) == 1
    await _notified(rail, merchant)
    again = await rail.call(op)
    assert (again.status, again.rail_reference) == (RailStatus.SUCCEEDED,
                                                    results[0].rail_reference)
    # The number is taken: another amount under it is refused, but that proves nothing
    # about the first transfer, so it is not definitive (a query tells).
    other = await rail.outcome(payout(ACCOUNT, amount=901, no=op.rail_payout_no))
    assert isinstance(other, RailError) and not other.definitive
    assert other.code == "DUPLICATE_TRANSFER_NO"
    row = (await rail.payouts())[op.rail_payout_no]
    assert (row["paid"], row["payouts"]) == (900, 1)
    assert merchant.queue.empty()  # one transfer, one notification


async def test_query_of_an_unknown_number_is_not_found(rail: PayoutRail) -> None:
    missing = await rail.call(PayoutQuery(payout_no()))
    assert (missing.status, missing.failure_code) == (RailStatus.NOT_FOUND,
                                                      "TRANSFER_NOT_FOUND")


async def test_unsupported_currency_is_refused_before_sending(rail: PayoutRail) -> None:
    op = payout(ACCOUNT, currency="USD")
    refused = await rail.outcome(op)
    assert isinstance(refused, RailError) and refused.definitive
    assert (refused.code, refused.param) == (RailErrorCode.INVALID_REQUEST, "currency")
    assert await rail.payouts() == {}


async def test_tampered_notification_is_refused(rail: PayoutRail, merchant: Receiver) -> None:
    await rail.call(payout(FROZEN, notify_url=merchant.url))
    headers, body = await merchant.next()
    forged = body.replace(b'"FAILED"', b'"SUCCEEDED"')
    with pytest.raises(RailError) as info:
        rail.adapter.verify_notification(headers, forged)
    assert info.value.code == RailErrorCode.NOTIFICATION_UNVERIFIABLE


async def test_faults_make_outcomes_unknown(rail: PayoutRail, merchant: Receiver) -> None:
    await rail.sim.faults(error_rate=1.0)
    failed = await rail.outcome(payout(ACCOUNT))
    assert isinstance(failed, RailError) and not failed.definitive
    assert await rail.payouts() == {}  # a system error applies nothing
    await rail.sim.faults(timeout_rate=1.0)
    op = payout(ACCOUNT, amount=321, notify_url=merchant.url)
    timed_out = await rail.outcome(op)
    assert isinstance(timed_out, RailError) and not timed_out.definitive
    await rail.sim.faults()
    await _notified(rail, merchant)
    queried = await rail.call(PayoutQuery(op.rail_payout_no))
    assert (queried.status, queried.amount) == (RailStatus.SUCCEEDED, 321)
