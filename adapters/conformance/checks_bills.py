"""Checks of the rails' daily bills, whatever the rail.

`BillDownload(date)` finds the day's bill (its `rail_reference` is where to fetch it) and
`BillDownload(date, url)` reads it into `RailResult.bill`; a rail may answer a day with
nothing on it at once (an empty `bill`). The simulator's bill of a day lists what its
ledger holds for it (SANDBOX.md): a payment on the day it was paid, a refund on the day
it succeeded, in the rail's day (Asia/Shanghai).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Final

from adapters.base import RailError, RailStatus, RefundQuery
from adapters.commerce_ops import BillDownload, BillLine
from adapters.conformance.checks import PAYER_CODE_SCENE, check
from adapters.conformance.env import RailEnv
from adapters.conformance.kit import ConformanceError, expect

RAIL_DAY: Final = timezone(timedelta(hours=8))  # the rails keep their books in Beijing time
PAID, REFUNDED = 1234, 234
QUIET_DAY: Final = "2001-01-01"  # a day nothing was paid


def rail_today() -> str:
    return datetime.now(RAIL_DAY).date().isoformat()


async def download(env: RailEnv, day: str) -> tuple[BillLine, ...]:
    """Every line of the day's bill, in the two calls of BillDownload."""
    where = await env.call(BillDownload(day))
    expect(where.status is RailStatus.SUCCEEDED, f"finding the bill of {day} gave {where}")
    if where.bill is not None:
        return where.bill  # the rail said at once what the bill holds (nothing, say)
    if not where.rail_reference:
        raise ConformanceError(f"the bill of {day} has no place to fetch it from: {where}")
    bill = await env.call(BillDownload(day, where.rail_reference))
    lines = bill.bill
    if bill.status is not RailStatus.SUCCEEDED or lines is None:
        raise ConformanceError(f"downloading the bill of {day} gave {bill}")
    for line in lines:
        expect(isinstance(line, BillLine) and type(line.amount) is int and line.amount > 0,
               f"a bill line that is not a BillLine of positive minor units: {line!r}")
    return lines


@check("simulator", "refunds", "bills")
async def check_bill_lists_the_day(env: RailEnv) -> None:
    """Today's bill lists a payment paid today (its amount, the rail's reference) and a
    refund of it that succeeded today (its number and amount), each once."""
    charge = env.charge(PAYER_CODE_SCENE, code="1", amount=PAID)
    paid = await env.call(charge)
    expect(paid.status is RailStatus.SUCCEEDED, f"the order to bill was not paid: {paid}")
    refund = env.refund(charge.rail_order_no, REFUNDED, PAID)
    await env.call(refund)
    await env.until(RefundQuery(charge.rail_order_no, refund.rail_refund_no),
                    lambda r: r.status is RailStatus.SUCCEEDED, "refund")
    lines = [line for line in await download(env, rail_today())
             if line.rail_order_no == charge.rail_order_no]
    payments = [line for line in lines if line.kind == "payment"]
    refunds = [line for line in lines if line.kind == "refund"]
    expect(len(payments) == 1 and payments[0].amount == PAID and payments[0].currency == "CNY",
           f"the bill's payment lines of {charge.rail_order_no}: {payments}")
    if paid.rail_reference:
        expect(payments[0].rail_reference == paid.rail_reference,
               f"the bill names the payment {payments[0].rail_reference}, the rail said "
               f"{paid.rail_reference}")
    expect(len(refunds) == 1 and refunds[0].amount == REFUNDED
           and refunds[0].rail_refund_no == refund.rail_refund_no,
           f"the bill's refund lines of {charge.rail_order_no}: {refunds}")


@check("simulator", "bills")
async def check_bill_of_a_quiet_day(env: RailEnv) -> None:
    """The bill of a day without trade holds no line."""
    lines = await download(env, QUIET_DAY)
    expect(lines == (), f"the bill of {QUIET_DAY} lists {lines}")


@check("simulator", "bills")
async def check_bill_unknown_stays_unknown(env: RailEnv) -> None:
    """With `error_rate: 1.0` finding a bill is RailError(definitive=False)."""
    await env.set_faults(error_rate=1.0)
    try:
        outcome = await env.outcome(BillDownload(rail_today()))
    finally:
        await env.set_faults()
    expect(isinstance(outcome, RailError) and not outcome.definitive,
           f"finding a bill under a rail system error gave {outcome!r}")
