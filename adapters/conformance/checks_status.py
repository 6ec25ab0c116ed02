"""Checks of the statuses results carry: their shape, and the mapping of every rail status."""

from __future__ import annotations

from adapters.base import Close, Operation, Query, RailStatus, RefundQuery, Reverse
from adapters.conformance.checks import PAYER_CODE_SCENE, _check_shape, check
from adapters.conformance.env import RailEnv
from adapters.conformance.kit import expect


@check()
async def check_status_values(env: RailEnv) -> None:
    """Every result of a tour of the flows is a base.RailStatus with a consistent shape."""
    paid = env.charge(PAYER_CODE_SCENE, code="1")
    ops: list[Operation] = [paid, env.charge(PAYER_CODE_SCENE, code="2"), Query(paid.rail_order_no)]
    ops += [env.charge(s) for s in sorted(env.adapter.scenes - {PAYER_CODE_SCENE})]
    ops.append(env.refund(paid.rail_order_no, 100, paid.amount))
    if env.kit.has("reverse"):
        ops.append(Reverse(paid.rail_order_no))
    for op in ops:
        await env.outcome(op)
    expect(bool(env.results), "no operation gave a result")
    for op, result in env.results:
        _check_shape(op, result)


@check("simulator", "stateful")
async def check_status_mapping(env: RailEnv) -> None:
    """Every order status the rail has maps (on Query) to the RailStatus its README gives."""
    kit = env.kit
    observed: dict[str, RailStatus] = {}

    async def observe(no: str) -> None:
        result = await env.call(Query(no))
        _check_shape(Query(no), result)
        entry = await env.ledger_order(no)
        expect(entry is not None, f"the ledger has no order {no}")
        assert entry is not None
        rail_status = str(entry["status"])
        expected = kit.status_table.get(rail_status)
        expect(expected is not None, f"rail status {rail_status!r} is not in the kit's table")
        expect(result.status is expected, f"rail status {rail_status} gave "
                                          f"{result.status.value}, expected {expected}")
        observed[rail_status] = result.status

    waiting = env.charge(kit.waiting_scene)
    await env.present(kit.waiting_scene, await env.call(waiting))
    await observe(waiting.rail_order_no)  # open, the payer must act
    await env.call(Close(waiting.rail_order_no))
    await observe(waiting.rail_order_no)  # closed unpaid
    failing = env.charge(kit.waiting_scene)
    await env.present(kit.waiting_scene, await env.call(failing))
    await env.payer_fails(failing.rail_order_no)
    await observe(failing.rail_order_no)  # the payer's payment failed
    paid = env.charge(PAYER_CODE_SCENE, code="1")
    await env.call(paid)
    await observe(paid.rail_order_no)  # paid
    refund = env.refund(paid.rail_order_no, 100, paid.amount)
    await env.call(refund)
    await env.until(RefundQuery(paid.rail_order_no, refund.rail_refund_no),
                    lambda r: r.status is not RailStatus.PROCESSING, "refund")
    await observe(paid.rail_order_no)  # paid, partly refunded
    declined = env.charge(PAYER_CODE_SCENE, code="2")
    await env.outcome(declined)
    await observe(declined.rail_order_no)  # declined
    if kit.has("timed_codes"):
        confirming = env.charge(PAYER_CODE_SCENE, code="6")
        await env.call(confirming)
        await observe(confirming.rail_order_no)  # the payer is confirming
        if kit.has("reverse"):
            await env.call(Reverse(confirming.rail_order_no))
            await observe(confirming.rail_order_no)  # reversed
    missing = set(kit.status_table) - set(observed) - set(kit.unreachable_statuses)
    expect(not missing, f"rail statuses never reached by the flows: {sorted(missing)}")
