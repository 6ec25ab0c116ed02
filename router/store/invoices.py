"""E-invoices in Redis: record one as its payment's current invoice (invoice_create.lua),
compare-and-set it (invoice_transition.lua), read it. An invoice lives in its payment's
slot: the payment carries its current invoice (`iv`), which the refund script reads."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, final

from router.commerce.invoice_records import Invoice
from router.store import keys
from router.store.finish import Finish
from router.store.outcomes import (
    MoveOutcome,
    PaymentMissing,
    Recorded,
    Reply,
    move_outcome,
)
from router.store.runner import Runner


@final
@dataclass(frozen=True, slots=True)
class CurrentInvoice:
    """The payment has a current invoice (not failed): `fingerprint` is its request's."""

    invoice_id: str
    fingerprint: str


@final
@dataclass(frozen=True, slots=True)
class NotInvoiceable:
    """The payment is not paid (its status is `status`)."""

    status: str


@final
@dataclass(frozen=True, slots=True)
class AmountMismatch:
    """The invoice is not for what the payment has paid less refunded: `remaining`."""

    remaining: int


@final
@dataclass(frozen=True, slots=True)
class CurrentChanged:
    """The payment's current invoice is no longer the one the caller saw: re-read."""


@final
@dataclass(frozen=True, slots=True)
class NothingToReissue:
    """Nothing remains paid (a full refund): no invoice follows the reversed one."""


InvoiceCreateOutcome = (Recorded | CurrentInvoice | NotInvoiceable | AmountMismatch
                        | CurrentChanged | NothingToReissue | PaymentMissing)


@final
class InvoiceStore:
    __slots__ = ("_run",)

    def __init__(self, runner: Runner) -> None:
        self._run = runner

    async def create(self, invoice: Invoice, fingerprint: str, seen: str | None,
                     first_due_ms: int, mode: Literal["api", "reissue"]
                     ) -> InvoiceCreateOutcome:
        """Record `invoice` as its payment's current one, which must still be `seen`."""
        pid = invoice.order.payment_id
        shard = keys.shard_in(pid)
        pkey = keys.payment(shard, pid)
        run = self._run
        reply = await run.script(
            run.scripts.invoice_create,
            [pkey, keys.invoice(shard, invoice.id),
             keys.invoice(shard, seen) if seen else pkey, keys.due(shard)],
            [invoice.id, seen or "", fingerprint, invoice.order.pack(), invoice.amount,
             invoice.tax, invoice.state.pack(), invoice.updated_ms, first_due_ms, mode])
        return _create_outcome(reply)

    async def transition(self, invoice: Invoice, expected_version: int, expected_status: str,
                         finish: Finish) -> MoveOutcome:
        """CAS `invoice` (holding its new status and state)."""
        o = invoice.order
        shard = keys.shard_in(invoice.id)
        run = self._run
        reply = await run.script(
            run.scripts.invoice_transition,
            [keys.invoice(shard, invoice.id), keys.payment(shard, o.payment_id),
             keys.due(shard), keys.outbox(shard), keys.journal_inbox(shard)],
            [expected_version, expected_status, invoice.status.value, invoice.state.pack(),
             invoice.updated_ms,
             *finish.args(f"iv:{invoice.id}", o.merchant_id, run.idem_ttl_s),
             o.provider or ""])
        return move_outcome(reply)

    async def load(self, invoice_id: str) -> Invoice | None:
        shard = keys.shard_of(invoice_id)
        if shard is None or not invoice_id.startswith("inv_"):
            return None
        fields = await self._run.hash(keys.invoice(shard, invoice_id))
        return Invoice.from_hash(invoice_id, fields) if fields else None


def _create_outcome(reply: Reply) -> InvoiceCreateOutcome:
    head, *rest = (bytes(r).decode() if isinstance(r, bytes) else str(r) for r in reply)
    match head:
        case "created":
            return Recorded()
        case "current":
            return CurrentInvoice(rest[0], rest[1])
        case "state":
            return NotInvoiceable(rest[0])
        case "amount":
            return AmountMismatch(int(rest[0]))
        case "changed":
            return CurrentChanged()
        case "none":
            return NothingToReissue()
        case "missing":
            return PaymentMissing()
    raise RuntimeError(f"invoice_create.lua answered {head!r}")
