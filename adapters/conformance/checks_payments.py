"""Checks of charges: every scene, every payer code, reverse, unknown outcomes, idempotency."""

from __future__ import annotations

import asyncio

from adapters.base import Close, Operation, Query, RailError, RailResult, RailStatus, Reverse
from adapters.conformance.checks import (
    PAYER_CODE_SCENE,
    _check_shape,
    _describe,
    _is_definitive_refusal,
    _ledger_charges,
    _unsettled,
    check,
)
from adapters.conformance.env import RailEnv
from adapters.conformance.kit import expect


@check()
async def check_scenes_charge(env: RailEnv) -> None:
    """Every scene in `adapter.scenes` charges and gives the right shape."""
    expect(bool(env.adapter.scenes), "the adapter offers no scene")
    for scene in sorted(env.adapter.scenes):
        op = env.charge(scene, code="1" if scene == PAYER_CODE_SCENE else None)
        result = await env.call(op)
        _check_shape(op, result)
        if scene == PAYER_CODE_SCENE:
            expect(result.status is RailStatus.SUCCEEDED,
                   f"{scene} with a paying code gave {result.status.value}")
        elif env.kit.has("actions"):
            expect(result.status is RailStatus.REQUIRES_ACTION and result.action is not None,
                   f"{scene} gave {result.status.value} with action {result.action}: "
                   "a wallet scene must ask the payer to act")
        else:
            expect(result.status is RailStatus.SUCCEEDED,
                   f"{scene} on an in-process rail gave {result.status.value}")


@check("simulator", "actions")
async def check_scenes_pay(env: RailEnv) -> None:
    """Every wallet scene: the payer pays at the rail, then Query gives SUCCEEDED."""
    for scene in sorted(env.adapter.scenes - {PAYER_CODE_SCENE}):
        op = env.charge(scene)
        result = await env.call(op)
        await env.present(scene, result)
        await env.payer_pays(op.rail_order_no)
        paid = await env.call(Query(op.rail_order_no))
        _check_shape(Query(op.rail_order_no), paid)
        expect(paid.status is RailStatus.SUCCEEDED,
               f"{scene}: query after payment gave {paid.status.value}")
        expect(paid.amount in (None, op.amount), f"{scene}: amount {paid.amount} != {op.amount}")
        expect(await _ledger_charges(env, op.rail_order_no) == 1,
               f"{scene}: the ledger does not show exactly one charge")
        # Closing a paid order must never read as "closed, nothing kept".
        close = await env.outcome(Close(op.rail_order_no))
        expect(isinstance(close, RailError) or close.status is RailStatus.SUCCEEDED,
               f"{scene}: close of a paid order gave {_describe(close)}")
        expect(await _ledger_charges(env, op.rail_order_no) == 1, f"{scene}: charge undone")


@check("simulator", "actions")
async def check_scenes_fail_and_close(env: RailEnv) -> None:
    """A wallet order the payer fails is never SUCCEEDED; an open one closes (CLOSED)."""
    for scene in sorted(env.adapter.scenes - {PAYER_CODE_SCENE}):
        op = env.charge(scene)
        await env.present(scene, await env.call(op))
        await env.payer_fails(op.rail_order_no)
        failed = await env.call(Query(op.rail_order_no))
        expect(failed.status in (RailStatus.FAILED, RailStatus.CLOSED),
               f"{scene}: query after the payer failed gave {failed.status.value}")
        again = await env.outcome(Close(op.rail_order_no))
        expect(not isinstance(again, RailResult) or again.status is not RailStatus.SUCCEEDED,
               f"{scene}: close of a failed order gave succeeded")
        # An order left open: Close gives CLOSED and a Query agrees (or no longer sees it).
        op = env.charge(scene)
        await env.present(scene, await env.call(op))
        closed = await env.call(Close(op.rail_order_no))
        expect(closed.status is RailStatus.CLOSED, f"{scene}: close gave {closed.status.value}")
        seen = await env.call(Query(op.rail_order_no))
        expect(seen.status in (RailStatus.CLOSED, RailStatus.NOT_FOUND),
               f"{scene}: query after close gave {seen.status.value}")
        expect(await _ledger_charges(env, op.rail_order_no) == 0, f"{scene}: closed but charged")


@check()
async def check_code_paid(env: RailEnv) -> None:
    """Payer code ...1: SUCCEEDED at once, for the amount charged."""
    op = env.charge(PAYER_CODE_SCENE, code="1", amount=1234)
    result = await env.call(op)
    _check_shape(op, result)
    expect(result.status is RailStatus.SUCCEEDED, f"code 1 gave {result.status.value}")
    expect(result.amount in (None, 1234), f"amount {result.amount} != 1234")
    if env.kit.has("simulator"):
        entry = await env.ledger_order(op.rail_order_no)
        expect(entry is not None and entry["charges"] == 1 and entry["charged"] == 1234,
               f"ledger after code 1: {entry}")


@check()
async def check_code_declined(env: RailEnv) -> None:
    """Payer code ...2: a definitive refusal (FAILED result or RailError(definitive=True))."""
    op = env.charge(PAYER_CODE_SCENE, code="2")
    outcome = await env.outcome(op)
    if isinstance(outcome, RailResult):
        _check_shape(op, outcome)
    expect(_is_definitive_refusal(outcome), f"code 2 gave {_describe(outcome)}")
    if env.kit.has("simulator"):
        expect(await _ledger_charges(env, op.rail_order_no) == 0, "code 2 was charged")


@check("simulator", "timed_codes")
async def check_code_confirming(env: RailEnv) -> None:
    """Payer code ...5: PROCESSING, then a Query gives SUCCEEDED (after ~3 s x time_scale)."""
    op = env.charge(PAYER_CODE_SCENE, code="5")
    result = await env.call(op)
    expect(result.status is RailStatus.PROCESSING, f"code 5 gave {result.status.value}")
    query = Query(op.rail_order_no)
    final_ = await env.until(query, lambda r: not _unsettled(r), "code 5")
    expect(final_.status is RailStatus.SUCCEEDED, f"code 5 settled as {final_.status.value}")
    expect(await _ledger_charges(env, op.rail_order_no) == 1, "code 5: not charged once")


@check("simulator", "timed_codes", "reverse")
async def check_code_never_confirms(env: RailEnv) -> None:
    """Payer code ...6: PROCESSING; Reverse gives CLOSED and nothing is kept."""
    op = env.charge(PAYER_CODE_SCENE, code="6")
    result = await env.call(op)
    expect(result.status is RailStatus.PROCESSING, f"code 6 gave {result.status.value}")
    still = await env.call(Query(op.rail_order_no))
    expect(_unsettled(still), f"code 6: query gave {still.status.value} before any reverse")
    reversed_ = await env.call(Reverse(op.rail_order_no))
    expect(reversed_.status is RailStatus.CLOSED, f"reverse gave {reversed_.status.value}")
    after = await env.call(Query(op.rail_order_no))
    expect(after.status is RailStatus.CLOSED, f"query after reverse gave {after.status.value}")
    entry = await env.ledger_order(op.rail_order_no)
    expect(entry is None or entry["charged"] == entry["refunded"],
           f"code 6 reversed but money kept: {entry}")


@check("simulator", "reverse")
async def check_reverse_paid(env: RailEnv) -> None:
    """Reverse of a paid payer-code charge: CLOSED, and all the money goes back."""
    op = env.charge(PAYER_CODE_SCENE, code="1")
    expect((await env.call(op)).status is RailStatus.SUCCEEDED, "the charge did not succeed")
    reversed_ = await env.call(Reverse(op.rail_order_no))
    expect(reversed_.status is RailStatus.CLOSED, f"reverse gave {reversed_.status.value}")
    again = await env.call(Reverse(op.rail_order_no))
    expect(again.status is RailStatus.CLOSED, f"a second reverse gave {again.status.value}")
    entry = await env.ledger_order(op.rail_order_no)
    expect(entry is not None and entry["charges"] == 1
           and entry["refunded"] == entry["charged"] == op.amount,
           f"ledger after reversing a paid charge: {entry}")


@check("simulator", "timed_codes")
async def check_code_withheld(env: RailEnv) -> None:
    """Payer code ...9: the answer is lost, so RailError(definitive=False); Query: SUCCEEDED."""
    op = env.charge(PAYER_CODE_SCENE, code="9")
    outcome = await env.outcome(op)
    expect(isinstance(outcome, RailError) and not outcome.definitive,
           f"code 9 (no answer) gave {_describe(outcome)}: an unknown outcome must stay unknown")
    settled = await env.call(Query(op.rail_order_no))
    expect(settled.status is RailStatus.SUCCEEDED, f"code 9: query gave {settled.status.value}")
    expect(await _ledger_charges(env, op.rail_order_no) == 1, "code 9: not charged once")


@check("simulator")
async def check_unknown_stays_unknown(env: RailEnv) -> None:
    """With `error_rate: 1.0` every operation is RailError(definitive=False)."""
    await env.set_faults(error_rate=1.0)
    paid = env.charge(PAYER_CODE_SCENE, code="1")
    ops: list[Operation] = [paid, Query(paid.rail_order_no)]
    if env.kit.has("actions"):
        ops.append(env.charge(env.kit.waiting_scene))
    if env.kit.has("reverse"):
        ops.append(Reverse(paid.rail_order_no))
    ops.append(env.refund(paid.rail_order_no, 100, paid.amount))
    try:
        for op in ops:
            outcome = await env.outcome(op)
            expect(isinstance(outcome, RailError) and not outcome.definitive,
                   f"{type(op).__name__} under a rail system error gave {_describe(outcome)}")
    finally:
        await env.set_faults()
    expect(await _ledger_charges(env, paid.rail_order_no) == 0,
           "a charge answered with a system error was applied")


@check("stateful")
async def check_query_unknown_order(env: RailEnv) -> None:
    """A Query for an order never created gives NOT_FOUND (no proof of anything)."""
    result = await env.call(Query(env.order_no()))
    expect(result.status is RailStatus.NOT_FOUND, f"query of no order gave {result.status.value}")


@check("simulator")
async def check_idempotent_charge(env: RailEnv) -> None:
    """The same Charge repeated (in turn and concurrently) never charges twice."""
    op = env.charge(PAYER_CODE_SCENE, code="1")
    first = await env.call(op)
    expect(first.status is RailStatus.SUCCEEDED, f"code 1 gave {first.status.value}")
    repeats = [await env.outcome(op)]
    repeats += await asyncio.gather(*(env.outcome(op) for _ in range(3)))
    for outcome in repeats:
        # Paid already: the repeat may be SUCCEEDED or unknown, never a refusal.
        ok = (isinstance(outcome, RailResult) and outcome.status is RailStatus.SUCCEEDED) or (
            isinstance(outcome, RailError) and not outcome.definitive)
        expect(ok, f"a repeated paid charge gave {_describe(outcome)}")
    expect(await _ledger_charges(env, op.rail_order_no) == 1, "charged more than once")
    if env.kit.has("actions"):
        wallet = env.charge(env.kit.waiting_scene)
        outcomes = await asyncio.gather(*(env.outcome(wallet) for _ in range(3)))
        for outcome in outcomes:
            expect(isinstance(outcome, RailResult)
                   and outcome.status is RailStatus.REQUIRES_ACTION,
                   f"a repeated {wallet.scene} charge gave {_describe(outcome)}")
        await env.payer_pays(wallet.rail_order_no)
        again = await env.outcome(wallet)
        # The order is paid: the repeat may say so or be unknown, never refuse or fail it.
        expect(not _is_definitive_refusal(again),
               f"a repeated {wallet.scene} charge after payment gave {_describe(again)}")
        expect(await _ledger_charges(env, wallet.rail_order_no) == 1,
               f"{wallet.scene}: charged more than once")
