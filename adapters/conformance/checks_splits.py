"""Checks of profit sharing (a paid order shared with other accounts), whatever the rail.

A rail may settle a split at once or later (then a SplitQuery tells); either way the
splits of one order never exceed its cap (`RailKit.split_max_ratio` of what was paid), a
split over it is refused definitively and leaves nothing in the ledger, and a split
repeated under its number is applied once. The simulator's ledger lists each split under
`splits` (SANDBOX.md) with the order it shares (`order`) and its `amount`.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from adapters.base import RailError, RailResult, RailStatus
from adapters.commerce_ops import Split, SplitQuery, SplitReceiver
from adapters.conformance.checks import (
    PAYER_CODE_SCENE,
    _describe,
    _is_definitive_refusal,
    check,
)
from adapters.conformance.env import RailEnv
from adapters.conformance.kit import ConformanceError, expect

PAID = 10_000  # every check shares an order of 100.00 CNY


async def _paid_order(env: RailEnv) -> tuple[str, str]:
    """A paid order: its number and the rail's transaction id."""
    op = env.charge(PAYER_CODE_SCENE, code="1", amount=PAID)
    result = await env.call(op)
    expect(result.status is RailStatus.SUCCEEDED and bool(result.rail_reference),
           f"the order to share was not paid: {result}")
    return op.rail_order_no, str(result.rail_reference)


def _split(env: RailEnv, order: tuple[str, str], amount: int) -> Split:
    account = env.kit.split_accounts.get("merchant")
    if account is None:
        raise ConformanceError(f"rail {env.kit.name} names no merchant receiver "
                               "(RailKit.split_accounts)")
    return Split(
        rail_order_no=order[0],
        rail_reference=order[1],
        rail_split_no="sp" + uuid.uuid4().hex[:22],
        receivers=(SplitReceiver("merchant", account, amount, "conformance"),),
    )


async def _final(env: RailEnv, op: Split) -> RailResult | RailError:
    """Where `op` ends: its own answer, or SplitQuery until it is no longer PROCESSING."""
    outcome = await env.outcome(op)
    if isinstance(outcome, RailError) or outcome.status is not RailStatus.PROCESSING:
        return outcome
    query = SplitQuery(op.rail_order_no, op.rail_reference, op.rail_split_no)
    return await env.until(query, lambda r: r.status is not RailStatus.PROCESSING, "split")


async def _expect_shared(env: RailEnv, op: Split) -> None:
    final = await _final(env, op)
    expect(isinstance(final, RailResult) and final.status is RailStatus.SUCCEEDED,
           f"a split within the cap gave {_describe(final)}")
    amount = sum(r.amount for r in op.receivers)
    expect(isinstance(final, RailResult) and final.amount in (None, amount),
           f"split of {amount} reported {getattr(final, 'amount', None)}")


async def _ledger_splits(env: RailEnv) -> dict[str, dict[str, Any]]:
    async with env.session.get(f"{env.sim_url}/sim/ledger") as resp:
        body: dict[str, Any] = await resp.json()
    splits: dict[str, dict[str, Any]] = body.get("splits", {})
    return splits


async def _shared_of(env: RailEnv, order_no: str) -> int:
    """What the ledger's splits take of the order `order_no`."""
    splits = (await _ledger_splits(env)).values()
    return sum(int(s["amount"]) for s in splits if s.get("order") == order_no)


@check("simulator", "splits")
async def check_split_within_cap(env: RailEnv) -> None:
    """A split of a paid order within the cap ends SUCCEEDED (at once, or by SplitQuery),
    and the ledger's `splits` shows it against the order."""
    order = await _paid_order(env)
    cap = PAID * env.kit.split_max_ratio // 10_000
    op = _split(env, order, cap // 2)
    await _expect_shared(env, op)
    entry = (await _ledger_splits(env)).get(op.rail_split_no)
    expect(entry is not None and entry["order"] == order[0] and entry["amount"] == cap // 2,
           f"ledger of split {op.rail_split_no} (of {order[0]}, {cap // 2}): {entry}")


@check("simulator", "splits")
async def check_split_over_cap_refused(env: RailEnv) -> None:
    """The splits of one order add up against its cap: one that would pass it is refused
    definitively and recorded nowhere; what is left under the cap can still be shared."""
    order = await _paid_order(env)
    cap = PAID * env.kit.split_max_ratio // 10_000
    await _expect_shared(env, _split(env, order, cap - 100))
    over = await _final(env, _split(env, order, 101))
    expect(_is_definitive_refusal(over), f"a split past the cap gave {_describe(over)}")
    shared = await _shared_of(env, order[0])
    expect(shared == cap - 100, f"ledger shares {shared} of the order, not {cap - 100}")
    await _expect_shared(env, _split(env, order, 100))
    shared = await _shared_of(env, order[0])
    expect(shared == cap, f"ledger shares {shared} of the order, not its cap {cap}")


@check("simulator", "splits")
async def check_split_idempotent(env: RailEnv) -> None:
    """The same Split sent again (in turn, concurrently, after it settled) is never refused
    and shares the order once."""
    order = await _paid_order(env)
    op = _split(env, order, 1000)
    repeats = [await env.outcome(op), await env.outcome(op)]
    repeats += await asyncio.gather(*(env.outcome(op) for _ in range(3)))
    for outcome in repeats:
        expect(not _is_definitive_refusal(outcome), f"a repeated split gave "
                                                    f"{_describe(outcome)}")
    await _expect_shared(env, op)
    again = await env.outcome(op)
    expect(not _is_definitive_refusal(again), f"a split repeated after it settled gave "
                                              f"{_describe(again)}")
    shared = await _shared_of(env, order[0])
    expect(shared == 1000, f"ledger shares {shared} of the order after repeats, not 1000")
