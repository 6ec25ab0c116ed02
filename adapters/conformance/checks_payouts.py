"""Checks of payouts (money to a payee's wallet or account), whatever the rail.

The payee's identity decides the outcome by its last character (SANDBOX.md, "Payouts"):
`2` is a frozen account, `9` is paid but the answer is lost, anything else is paid. A rail
may settle a payout at once or later (then a PayoutQuery, or its notification, tells);
either way unknown must stay unknown and a payout is never paid twice.
"""

from __future__ import annotations

import asyncio

from adapters.base import NotificationKind, Payout, PayoutQuery, RailError, RailResult, RailStatus
from adapters.conformance.checks import _describe, _is_definitive_refusal, check
from adapters.conformance.env import RailEnv
from adapters.conformance.kit import expect

PAID, FROZEN, ANSWER_LOST = "1", "2", "9"  # the payee identity's last character
ACCOUNT_FROZEN = "ACCOUNT_FROZEN"
NAME_NOT_CORRECT = "NAME_NOT_CORRECT"
_PAYOUT_STATUSES = frozenset({RailStatus.PROCESSING, RailStatus.SUCCEEDED, RailStatus.FAILED})


def _settled(result: RailResult) -> bool:
    return result.status is not RailStatus.PROCESSING


def _check_payout_shape(op: Payout, result: RailResult) -> None:
    where = f"payout {op.rail_payout_no}"
    expect(result.status in _PAYOUT_STATUSES, f"{where}: a payout cannot be "
                                              f"{result.status.value}")
    if result.status is RailStatus.FAILED:
        expect(bool(result.failure_code), f"{where}: FAILED without a failure_code")
    if result.status is RailStatus.SUCCEEDED:
        expect(result.amount in (None, op.amount), f"{where}: paid {result.amount}, "
                                                   f"not {op.amount}")


async def _final(env: RailEnv, op: Payout) -> RailResult | RailError:
    """Where `op` ends: the call's own answer, or PayoutQuery until it is settled."""
    outcome = await env.outcome(op)
    if isinstance(outcome, RailError):
        return outcome
    _check_payout_shape(op, outcome)
    if _settled(outcome):
        return outcome
    settled = await env.until(PayoutQuery(op.rail_payout_no), _settled, "payout")
    _check_payout_shape(op, settled)
    return settled


def _refused_for(outcome: RailResult | RailError, code: str) -> bool:
    """FAILED with `code`, or a definitive RailError with it."""
    if isinstance(outcome, RailError):
        return outcome.definitive and outcome.code == code
    return outcome.status is RailStatus.FAILED and outcome.failure_code == code


def _succeeded(outcome: RailResult | RailError) -> bool:
    return isinstance(outcome, RailResult) and outcome.status is RailStatus.SUCCEEDED


async def _expect_paid_once(env: RailEnv, op: Payout) -> None:
    entry = await env.ledger_payout(op.rail_payout_no)
    expect(entry is not None and entry["payouts"] == 1 and entry["paid"] == op.amount,
           f"ledger of payout {op.rail_payout_no} (paid once, {op.amount}): {entry}")


async def _expect_nothing_paid(env: RailEnv, op: Payout) -> None:
    entry = await env.ledger_payout(op.rail_payout_no)
    expect(entry is None or (entry["payouts"] == 0 and entry["paid"] == 0),
           f"ledger of payout {op.rail_payout_no} (nothing paid): {entry}")


@check("payouts")
async def check_payout_paid(env: RailEnv) -> None:
    """A payout to a paying payee ends SUCCEEDED (at once, or by query) for its amount;
    the rail's ledger shows it paid exactly once."""
    op = env.payout(PAID, amount=1234)
    final = await _final(env, op)
    expect(_succeeded(final), f"a payout to a paying payee gave {_describe(final)}")
    if env.kit.has("simulator"):
        await _expect_paid_once(env, op)


@check("payouts")
async def check_payout_frozen(env: RailEnv) -> None:
    """A frozen payee (...2): FAILED with ACCOUNT_FROZEN, as a result or a definitive
    RailError, and nothing paid."""
    op = env.payout(FROZEN)
    final = await _final(env, op)
    expect(_refused_for(final, ACCOUNT_FROZEN),
           f"a payout to a frozen account gave {_describe(final)}")
    if env.kit.has("simulator"):
        await _expect_nothing_paid(env, op)


@check("simulator", "payouts")
async def check_payout_answer_lost(env: RailEnv) -> None:
    """A payee whose answer is lost (...9): RailError(definitive=False), then PayoutQuery
    gives SUCCEEDED and the ledger shows one payout."""
    op = env.payout(ANSWER_LOST)
    outcome = await env.outcome(op)
    expect(isinstance(outcome, RailError) and not outcome.definitive,
           f"a payout whose answer was lost gave {_describe(outcome)}: unknown must stay "
           "unknown")
    settled = await env.until(PayoutQuery(op.rail_payout_no), _settled, "payout ...9")
    expect(settled.status is RailStatus.SUCCEEDED, f"...9: query gave {settled.status.value}")
    await _expect_paid_once(env, op)


@check("simulator", "payouts")
async def check_payout_idempotent(env: RailEnv) -> None:
    """The same Payout sent again (in turn, concurrently, after it is paid) is never
    refused and pays once."""
    op = env.payout(PAID)
    repeats = [await env.outcome(op), await env.outcome(op)]
    repeats += await asyncio.gather(*(env.outcome(op) for _ in range(3)))
    for outcome in repeats:
        expect(not _is_definitive_refusal(outcome), f"a repeated payout gave "
                                                    f"{_describe(outcome)}")
    final = await env.until(PayoutQuery(op.rail_payout_no), _settled, "payout")
    expect(final.status is RailStatus.SUCCEEDED, f"the payout settled as {final.status.value}")
    again = await env.outcome(op)
    expect(not _is_definitive_refusal(again), f"a payout repeated after it was paid gave "
                                              f"{_describe(again)}")
    await _expect_paid_once(env, op)


@check("simulator", "payouts")
async def check_payout_name_checked(env: RailEnv) -> None:
    """A payout naming someone other than the payee's real name (`POST /sim/payees`) fails
    with NAME_NOT_CORRECT and pays nothing; one with the right name is paid."""
    wrong = env.payout(PAID, name="李四")
    await env.set_payee_name(wrong.payee, "张三")
    refused = await _final(env, wrong)
    expect(_refused_for(refused, NAME_NOT_CORRECT),
           f"a payout with the wrong name gave {_describe(refused)}")
    await _expect_nothing_paid(env, wrong)
    right = env.payout(PAID, name="张三", payee=wrong.payee)
    paid = await _final(env, right)
    expect(_succeeded(paid), f"a payout with the right name gave {_describe(paid)}")
    await _expect_paid_once(env, right)


@check("simulator", "payout_notifications", "payouts")
async def check_payout_notification(env: RailEnv) -> None:
    """A paid payout's notification verifies as a PAYOUT naming the payout, SUCCEEDED;
    every other delivery (resends, duplicates) verifies too."""
    op = env.payout(PAID, amount=1500)
    await env.outcome(op)
    _, _, note = await env.notification(
        lambda n: n.kind is NotificationKind.PAYOUT and n.rail_order_no == op.rail_payout_no,
        "payout")
    expect(note.result.status is RailStatus.SUCCEEDED,
           f"payout notification gave {note.result.status.value}")
    _check_payout_shape(op, note.result)
    expect(note.rail_refund_no is None, "a payout notification names a refund")
    await env.settled()
    while not env.receiver.queue.empty():
        env.adapter.verify_notification(*env.receiver.queue.get_nowait())


@check("stateful", "payouts")
async def check_payout_query_unknown(env: RailEnv) -> None:
    """A PayoutQuery for a payout never sent gives NOT_FOUND (no proof of anything)."""
    result = await env.call(PayoutQuery(env.payout_no()))
    expect(result.status is RailStatus.NOT_FOUND,
           f"query of a payout never sent gave {result.status.value}")


@check("simulator", "payouts")
async def check_payout_unknown_stays_unknown(env: RailEnv) -> None:
    """With `error_rate: 1.0` a Payout and a PayoutQuery are RailError(definitive=False),
    and nothing is paid."""
    op = env.payout(PAID)
    await env.set_faults(error_rate=1.0)
    try:
        for call in (op, PayoutQuery(op.rail_payout_no)):
            outcome = await env.outcome(call)
            expect(isinstance(outcome, RailError) and not outcome.definitive,
                   f"{type(call).__name__} under a rail system error gave {_describe(outcome)}")
    finally:
        await env.set_faults()
    await _expect_nothing_paid(env, op)
