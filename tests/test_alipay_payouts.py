"""Payouts on the Alipay rail: `alipay.fund.trans.uni.transfer` and
`alipay.fund.trans.common.query` through the real adapter and RailClient, against the
simulator serving RSA2-signed answers on loopback."""

from __future__ import annotations

import asyncio

import pytest

from adapters.alipay.adapter import create_adapter
from adapters.base import PayoutQuery, RailError, RailErrorCode, RailResult, RailStatus
from tests.conftest import Sim
from tests.payout_harness import PayoutRail, payout, payout_no

pytestmark = pytest.mark.asyncio

PAYEE = "2088102177846881"  # paid at once
FROZEN = "2088102177846882"  # last digit 2: the account cannot receive
LOST = "2088102177846889"  # last digit 9: paid, but the answer never comes


@pytest.fixture
def rail(alipay_sim: Sim) -> PayoutRail:
    return PayoutRail.on(alipay_sim, create_adapter)


async def test_paid_at_once_and_in_the_ledger(rail: PayoutRail) -> None:
    op = payout(PAYEE, amount=1234)
    paid = await rail.call(op)
    assert paid.status is RailStatus.SUCCEEDED and paid.amount == 1234
    assert paid.rail_reference is not None and len(paid.rail_reference) == 32
    queried = await rail.call(PayoutQuery(op.rail_payout_no))
    assert (queried.status, queried.amount, queried.rail_reference) == (
        RailStatus.SUCCEEDED, 1234, paid.rail_reference)
    row = (await rail.payouts())[op.rail_payout_no]
    assert row == {"status": "SUCCESS", "paid": 1234, "payouts": 1, "amount": 1234,
                   "payee": PAYEE}


async def test_frozen_payee_is_refused_and_nothing_is_paid(rail: PayoutRail) -> None:
    op = payout(FROZEN)
    refused = await rail.call(op)
    assert (refused.status, refused.failure_code) == (RailStatus.FAILED, "ACCOUNT_FROZEN")
    assert refused.failure_message  # Alipay's own words are kept
    again = await rail.call(op)  # the same refusal, still nothing paid
    assert (again.status, again.failure_code) == (RailStatus.FAILED, "ACCOUNT_FROZEN")
    queried = await rail.call(PayoutQuery(op.rail_payout_no))
    assert (queried.status, queried.failure_code) == (RailStatus.FAILED, "ACCOUNT_FROZEN")
    row = (await rail.payouts())[op.rail_payout_no]
    assert (row["status"], row["paid"], row["payouts"]) == ("FAIL", 0, 0)


async def test_lost_answer_is_learnt_by_query_and_never_paid_twice(rail: PayoutRail) -> None:
    op = payout(LOST, amount=500)
    lost = await rail.outcome(op)
    assert isinstance(lost, RailError) and not lost.definitive
    assert lost.code == RailErrorCode.TIMEOUT
    queried = await rail.call(PayoutQuery(op.rail_payout_no))
    assert (queried.status, queried.amount) == (RailStatus.SUCCEEDED, 500)
    retried = await rail.call(op)  # a retry under the same number gets the same order
    assert retried.status is RailStatus.SUCCEEDED
    assert retried.rail_reference == queried.rail_reference
    row = (await rail.payouts())[op.rail_payout_no]
    assert (row["paid"], row["payouts"]) == (500, 1)


async def test_name_must_match_the_payee(rail: PayoutRail) -> None:
    await rail.name_payee(PAYEE, "张三")
    wrong = await rail.call(payout(PAYEE, name="李四"))
    assert (wrong.status, wrong.failure_code) == (RailStatus.FAILED, "NAME_NOT_CORRECT")
    assert wrong.failure_message
    right = await rail.call(payout(PAYEE, name="张三"))
    unnamed = await rail.call(payout(PAYEE))  # a payout that carries no name is not checked
    assert right.status is unnamed.status is RailStatus.SUCCEEDED
    rows = await rail.payouts()
    assert sorted(r["paid"] for r in rows.values()) == [0, 1234, 1234]


async def test_same_number_pays_once(rail: PayoutRail) -> None:
    op = payout(PAYEE, amount=800)
    results = await asyncio.gather(*(rail.call(op) for _ in range(5)))
    assert {r.status for r in results} == {RailStatus.SUCCEEDED}
    assert len({r.rail_reference for r in results}) == 1
    # The number is taken: another amount under it is refused, but that refusal proves
    # nothing about the first transfer, so it is not definitive.
    other = await rail.outcome(payout(PAYEE, amount=801, no=op.rail_payout_no))
    assert isinstance(other, RailError) and not other.definitive
    assert other.code == "PAYMENT_INFO_INCONSISTENCY"
    row = (await rail.payouts())[op.rail_payout_no]
    assert (row["paid"], row["payouts"]) == (800, 1)


async def test_query_of_an_unknown_number_is_not_found(rail: PayoutRail) -> None:
    missing = await rail.call(PayoutQuery(payout_no()))
    assert (missing.status, missing.failure_code) == (RailStatus.NOT_FOUND, "ORDER_NOT_EXIST")


async def test_other_currencies_are_refused_before_sending(rail: PayoutRail) -> None:
    op = payout(PAYEE, currency="USD")
    refused = await rail.outcome(op)
    assert isinstance(refused, RailError) and refused.definitive
    assert (refused.code, refused.param) == (RailErrorCode.INVALID_REQUEST, "currency")
    assert op.rail_payout_no not in await rail.payouts()


async def test_faults_make_outcomes_unknown(rail: PayoutRail) -> None:
    await rail.sim.faults(error_rate=1.0)
    failed = await rail.outcome(payout(PAYEE))
    assert isinstance(failed, RailError) and not failed.definitive
    assert await rail.payouts() == {}  # a system error applies nothing
    await rail.sim.faults(timeout_rate=1.0)
    op = payout(PAYEE, amount=321)
    timed_out = await rail.outcome(op)
    assert isinstance(timed_out, RailError) and not timed_out.definitive
    await rail.sim.faults()
    queried: RailResult = await rail.call(PayoutQuery(op.rail_payout_no))
    assert (queried.status, queried.amount) == (RailStatus.SUCCEEDED, 321)
