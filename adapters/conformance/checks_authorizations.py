"""Checks of pre-authorisation (hold, capture, release), whatever the rail.

A hold may freeze the payer's money (a deposit) or, for a payer whose credit meets the
`min_score` asked for, hold nothing (`deposit_free`); the simulator's ledger lists each
under `authorizations` (SANDBOX.md) by its `rail_auth_no`, with what it `frozen`,
`captured` and `released`. A payer confirms a waiting hold through the kit's
`confirm_authorization`; a capture is a payment under its own number, in `orders`.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from adapters.base import RailError, RailResult, RailStatus
from adapters.commerce_ops import AuthorizationQuery, Authorize, Capture, Release
from adapters.conformance.checks import _describe, _is_definitive_refusal, check
from adapters.conformance.env import RailEnv
from adapters.conformance.kit import ConformanceError, expect

HOLD = 5000
_WAITING = frozenset({RailStatus.REQUIRES_ACTION, RailStatus.PROCESSING})


def _authorize(env: RailEnv, *, high: bool) -> Authorize:
    if env.kit.credit_payer is None:
        raise ConformanceError(f"rail {env.kit.name} names no credit payers "
                               "(RailKit.credit_payer)")
    return Authorize(
        rail_auth_no="au" + uuid.uuid4().hex[:22],
        amount=HOLD,
        currency="CNY",
        scene=env.kit.authorization_scene,
        description="conformance",
        payer=dict(env.kit.credit_payer(high)),
        notify_url=env.receiver.url,
        min_score=env.kit.credit_min_score,
    )


async def _confirmed(env: RailEnv, op: Authorize, first: RailResult) -> RailResult:
    """The payer confirms a waiting hold; AuthorizationQuery until it is settled."""
    if first.status is RailStatus.REQUIRES_ACTION:
        await env.kit.confirm_authorization(env.session, str(env.sim_url), op.rail_auth_no,
                                            first)
    if first.status not in _WAITING:
        return first
    return await env.until(AuthorizationQuery(op.rail_auth_no),
                           lambda r: r.status not in _WAITING, "authorization")


async def _held(env: RailEnv) -> tuple[Authorize, RailResult]:
    """A confirmed hold on a payer of high credit."""
    op = _authorize(env, high=True)
    held = await _confirmed(env, op, await env.call(op))
    expect(held.status is RailStatus.SUCCEEDED,
           f"a confirmed hold on a high-score payer is {held.status.value}")
    return op, held


async def _ledger(env: RailEnv) -> dict[str, Any]:
    async with env.session.get(f"{env.sim_url}/sim/ledger") as resp:
        body: dict[str, Any] = await resp.json()
    return body


async def _hold_row(env: RailEnv, rail_auth_no: str) -> dict[str, Any] | None:
    row: dict[str, Any] | None = (await _ledger(env)).get("authorizations", {}).get(rail_auth_no)
    return row


def _capture(op: Authorize, held: RailResult, amount: int) -> Capture:
    return Capture(rail_auth_no=op.rail_auth_no, rail_reference=held.rail_reference or "",
                   rail_order_no="cp" + uuid.uuid4().hex[:22], amount=amount, currency="CNY",
                   description="conformance")


async def _captured(env: RailEnv, capture: Capture) -> RailResult | RailError:
    """Where a capture ends: its own answer, repeated (same number) while PROCESSING."""
    outcome = await env.outcome(capture)
    if isinstance(outcome, RailError) or outcome.status is not RailStatus.PROCESSING:
        return outcome
    return await env.until(capture, lambda r: r.status is not RailStatus.PROCESSING, "capture")


async def _expect_captured_once(env: RailEnv, op: Authorize, capture: Capture) -> None:
    ledger = await _ledger(env)
    row = ledger.get("authorizations", {}).get(op.rail_auth_no)
    expect(row is not None and row["captured"] == capture.amount,
           f"ledger of hold {op.rail_auth_no} (captured {capture.amount}): {row}")
    payment = ledger["orders"].get(capture.rail_order_no)
    expect(payment is not None and payment["charges"] == 1
           and payment["charged"] == capture.amount,
           f"ledger of the capture's payment {capture.rail_order_no}: {payment}")


@check("simulator", "authorizations")
async def check_authorization_confirmed(env: RailEnv) -> None:
    """A hold on a high-score payer, once confirmed, is SUCCEEDED by AuthorizationQuery;
    the ledger freezes its amount, or nothing when the result says `deposit_free`."""
    op, held = await _held(env)
    row = await _hold_row(env, op.rail_auth_no)
    frozen = 0 if held.deposit_free else op.amount
    expect(row is not None and row["frozen"] == frozen and row["captured"] == 0,
           f"ledger of hold {op.rail_auth_no} (deposit_free={held.deposit_free}): {row}")


@check("simulator", "authorizations")
async def check_capture_within_hold(env: RailEnv) -> None:
    """A capture of part of a hold ends SUCCEEDED with the rail's payment reference; the
    ledger shows it captured and charged once. A capture above the hold is refused."""
    op, held = await _held(env)
    over = await _captured(env, _capture(op, held, op.amount + 1))
    expect(_is_definitive_refusal(over), f"a capture above the hold gave {_describe(over)}")
    capture = _capture(op, held, 3000)
    result = await _captured(env, capture)
    expect(isinstance(result, RailResult) and result.status is RailStatus.SUCCEEDED
           and bool(result.rail_reference), f"a capture within the hold gave "
                                            f"{_describe(result)}")
    await _expect_captured_once(env, op, capture)


@check("simulator", "authorizations")
async def check_capture_idempotent(env: RailEnv) -> None:
    """The same Capture sent again (in turn, concurrently, after it succeeded) is never
    refused and captures once."""
    op, held = await _held(env)
    capture = _capture(op, held, 2000)
    repeats = [await env.outcome(capture), await env.outcome(capture)]
    repeats += await asyncio.gather(*(env.outcome(capture) for _ in range(3)))
    for outcome in repeats:
        expect(not _is_definitive_refusal(outcome), f"a repeated capture gave "
                                                    f"{_describe(outcome)}")
    final = await _captured(env, capture)
    expect(isinstance(final, RailResult) and final.status is RailStatus.SUCCEEDED,
           f"the capture settled as {_describe(final)}")
    await _expect_captured_once(env, op, capture)


@check("simulator", "authorizations")
async def check_release(env: RailEnv) -> None:
    """Releasing a whole confirmed hold is not refused, and the ledger shows it released
    and nothing captured."""
    op, held = await _held(env)
    release = Release(rail_auth_no=op.rail_auth_no, rail_reference=held.rail_reference or "",
                      rail_request_no="rl" + uuid.uuid4().hex[:22], amount=op.amount,
                      reason="conformance")
    outcome = await env.outcome(release)
    expect(isinstance(outcome, RailResult)
           and outcome.status in (RailStatus.SUCCEEDED, RailStatus.CLOSED),
           f"releasing a hold gave {_describe(outcome)}")
    row = await _hold_row(env, op.rail_auth_no)
    expect(row is not None and row["released"] == op.amount and row["captured"] == 0,
           f"ledger of released hold {op.rail_auth_no}: {row}")


@check("simulator", "authorizations")
async def check_low_score_not_deposit_free(env: RailEnv) -> None:
    """A low-score payer asked for `min_score` is refused definitively (nothing held), or
    held as a deposit: never deposit-free, and the ledger agrees."""
    op = _authorize(env, high=False)
    outcome = await env.outcome(op)
    if _is_definitive_refusal(outcome):
        row = await _hold_row(env, op.rail_auth_no)
        expect(row is None or (row["frozen"] == 0 and row["captured"] == 0),
               f"a refused hold left {row} in the ledger")
        return
    expect(isinstance(outcome, RailResult), f"a low-score hold gave {_describe(outcome)}")
    assert isinstance(outcome, RailResult)
    expect(not outcome.deposit_free, "a low-score payer was held deposit-free")
    held = await _confirmed(env, op, outcome)
    expect(held.status is RailStatus.SUCCEEDED and not held.deposit_free,
           f"a low-score hold settled as {held.status.value}, deposit_free={held.deposit_free}")
    row = await _hold_row(env, op.rail_auth_no)
    expect(row is not None and row["frozen"] == op.amount,
           f"ledger of a low-score deposit {op.rail_auth_no}: {row}")
