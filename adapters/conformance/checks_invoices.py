"""Checks of e-invoices (fapiao), whatever the rail.

An invoice is issued for a paid order (`IssueInvoice.rail_reference` is the rail's
transaction id of the payment); the rail may issue it at once or later (an InvoiceQuery
tells), and once issued its `rail_reference` is the invoice's number. Reversing it
(`ReverseInvoice` with that number) ends it CLOSED. The simulator's ledger lists each
invoice under `invoices` (SANDBOX.md) with its `total` and `tax` (fen).
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any, Final

from adapters.base import RailError, RailResult, RailStatus
from adapters.commerce_ops import (
    InvoiceBuyer,
    InvoiceItem,
    InvoiceQuery,
    IssueInvoice,
    ReverseInvoice,
)
from adapters.conformance.checks import (
    PAYER_CODE_SCENE,
    _describe,
    _is_definitive_refusal,
    check,
)
from adapters.conformance.env import RailEnv
from adapters.conformance.kit import ConformanceError, expect

TOTAL: Final = 10_600  # 106.00 CNY, tax included
RATE_BP: Final = 600  # 6 %
TAX: Final = 600  # 10600 x 600 / 10600


async def _paid_order(env: RailEnv, amount: int = TOTAL) -> tuple[str, str]:
    """A paid order: its number and the rail's transaction id."""
    op = env.charge(PAYER_CODE_SCENE, code="1", amount=amount)
    result = await env.call(op)
    expect(result.status is RailStatus.SUCCEEDED and bool(result.rail_reference),
           f"the order to invoice was not paid: {result}")
    return op.rail_order_no, str(result.rail_reference)


def _invoice(order: tuple[str, str], total: int = TOTAL) -> IssueInvoice:
    return IssueInvoice(
        rail_invoice_no="fp" + uuid.uuid4().hex[:18],
        rail_order_no=order[0],
        rail_reference=order[1],
        buyer=InvoiceBuyer("individual", "张三", email="buyer@example.com"),
        items=(InvoiceItem("信息技术服务", total, RATE_BP),),
        total=total,
        tax=TAX if total == TOTAL else 0,
    )


def _query(op: IssueInvoice) -> InvoiceQuery:
    return InvoiceQuery(op.rail_invoice_no, rail_reference=op.rail_reference)


async def _ledger_invoice(env: RailEnv, no: str) -> dict[str, Any] | None:
    async with env.session.get(f"{env.sim_url}/sim/ledger") as resp:
        body: dict[str, Any] = await resp.json()
    invoices: dict[str, dict[str, Any]] = body.get("invoices", {})
    return invoices.get(no)


async def _issued(env: RailEnv, op: IssueInvoice) -> RailResult:
    outcome = await env.outcome(op)
    expect(isinstance(outcome, RailResult) and outcome.status in (
        RailStatus.PROCESSING, RailStatus.SUCCEEDED), f"issuing gave {_describe(outcome)}")
    done = await env.until(_query(op), lambda r: r.status is not RailStatus.PROCESSING,
                           "invoice")
    expect(done.status is RailStatus.SUCCEEDED and bool(done.rail_reference),
           f"the invoice settled as {done}")
    return done


@check("simulator", "invoices")
async def check_invoice_issue_and_reverse(env: RailEnv) -> None:
    """An invoice for a paid order becomes SUCCEEDED with its number (the ledger shows its
    total and tax); reversing it with that number ends it CLOSED."""
    op = _invoice(await _paid_order(env))
    issued = await _issued(env, op)
    entry = await _ledger_invoice(env, op.rail_invoice_no)
    expect(entry is not None and entry["total"] == TOTAL and entry["tax"] == TAX,
           f"ledger row of invoice {op.rail_invoice_no} (total {TOTAL}, tax {TAX}): {entry}")
    reverse = ReverseInvoice(op.rail_invoice_no, "SALES_RETURN", rail_reference=op.rail_reference,
                             invoice_number=issued.rail_reference)
    outcome = await env.outcome(reverse)
    expect(isinstance(outcome, RailResult) and outcome.status in (
        RailStatus.PROCESSING, RailStatus.CLOSED), f"reversing gave {_describe(outcome)}")
    closed = await env.until(_query(op), lambda r: r.status is not RailStatus.PROCESSING,
                             "reversed invoice")
    expect(closed.status is RailStatus.CLOSED, f"the reversed invoice is {closed.status.value}")


@check("simulator", "invoices")
async def check_invoice_idempotent(env: RailEnv) -> None:
    """The same IssueInvoice sent again (in turn and concurrently) is never refused and
    issues one invoice."""
    op = _invoice(await _paid_order(env))
    outcomes = [await env.outcome(op)]
    outcomes += await asyncio.gather(*(env.outcome(op) for _ in range(3)))
    for outcome in outcomes:
        expect(not _is_definitive_refusal(outcome), f"a repeated invoice gave "
                                                    f"{_describe(outcome)}")
    await _issued(env, op)
    expect(await _ledger_invoice(env, op.rail_invoice_no) is not None, "no invoice in ledger")


@check("simulator", "invoices")
async def check_invoice_needs_a_paid_order(env: RailEnv) -> None:
    """An invoice for a payment the rail never made is refused definitively; an invoice
    above what was paid too; neither is in the ledger."""
    unknown = _invoice((env.order_no(), "4200000000" + uuid.uuid4().hex[:18].upper()))
    too_much = _invoice(await _paid_order(env, amount=100))
    for op in (unknown, too_much):
        outcome = await env.outcome(op)
        expect(_is_definitive_refusal(outcome), f"{op.rail_invoice_no} gave {_describe(outcome)}")
        expect(await _ledger_invoice(env, op.rail_invoice_no) is None,
               f"refused invoice {op.rail_invoice_no} is in the ledger")


@check("simulator", "invoices")
async def check_invoice_query_unknown(env: RailEnv) -> None:
    """An InvoiceQuery for an invoice never issued gives NOT_FOUND."""
    order = await _paid_order(env)
    result = await env.call(InvoiceQuery("fp" + uuid.uuid4().hex[:18], rail_reference=order[1]))
    expect(result.status is RailStatus.NOT_FOUND, f"query of an unknown invoice gave {result}")


@check("simulator", "invoices")
async def check_invoice_unknown_stays_unknown(env: RailEnv) -> None:
    """With `error_rate: 1.0` IssueInvoice is RailError(definitive=False) and nothing is
    issued."""
    op = _invoice(await _paid_order(env))
    await env.set_faults(error_rate=1.0)
    try:
        outcome = await env.outcome(op)
    finally:
        await env.set_faults()
    if not isinstance(outcome, RailError) or outcome.definitive:
        raise ConformanceError(f"an invoice under a rail system error gave {_describe(outcome)}")
    expect(await _ledger_invoice(env, op.rail_invoice_no) is None, "an invoice was issued")
