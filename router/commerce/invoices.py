"""E-invoices (fapiao) of paid payments: issued through the payment's rail (WeChat Pay's
`/v3/new-tax-control-fapiao/...`), reversed when a refund succeeds, reissued for what
remains paid (commerce/invoice_worker.py).

A payment has one current invoice. It is recorded by one script with the payment
(invoice_create.lua: the payment is paid, the invoice is for what it has paid less
refunded, and the current invoice is still the one seen) before the rail is asked, so a
refund cannot slip between, and it carries a due entry (`iv:<id>`) from the start: an
invoice whose answer was lost is asked about, or sent again under the same number, and
only the rail's word settles it. Invoices move no money: nothing of theirs is journaled.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Final, final

import msgspec

from adapters.base import RailError, RailErrorCode, RailResult, RailStatus
from adapters.commerce_ops import InvoiceBuyer, InvoiceItem, InvoiceQuery, IssueInvoice
from router.api.schemas_invoices import InvoiceCreate
from router.clock import Clock
from router.commerce.invoice_records import (
    INVOICE_EVENTS,
    Invoice,
    InvoiceOrder,
    InvoiceState,
    InvoiceStatus,
    tax_of,
)
from router.domain import Payment, Status
from router.errors import RouterError, invalid_state, not_found, validation_error
from router.events import event
from router.payments.replies import Reply, rail_refused_request
from router.rails.client import RailClient
from router.rails.instances import base_rail
from router.settings import Settings
from router.store import keys
from router.store.finish import Finish
from router.store.invoices import (
    AmountMismatch,
    CurrentChanged,
    CurrentInvoice,
    NothingToReissue,
    NotInvoiceable,
)
from router.store.outcomes import Moved, PaymentMissing, Recorded
from router.store.store import Store, StoreUnavailable
from router.validation import digest

log = logging.getLogger("payrouter.invoices")

PAID: Final = frozenset({Status.SUCCEEDED, Status.PARTIALLY_REFUNDED})
TRIES: Final = 5
S = InvoiceStatus
# Where the rail's word may take an invoice from each status.
_MOVES: Final = {
    S.ISSUING: frozenset({S.ISSUING, S.ISSUED, S.FAILED, S.REVERSED}),
    S.ISSUED: frozenset({S.ISSUED, S.REVERSING, S.REVERSED}),
    S.REVERSING: frozenset({S.REVERSING, S.REVERSED}),
    S.FAILED: frozenset(),
    S.REVERSED: frozenset(),
}


def remaining(payment: Payment) -> int:
    """What the payment has paid less refunded: what its invoice is for."""
    return payment.amount - payment.refunded_amount


@final
class Invoices:
    """Asks for invoices, sends them, and records what the rails say."""

    __slots__ = ("clock", "rails", "settings", "store")

    def __init__(self, store: Store, rails: RailClient, settings: Settings,
                 clock: Clock) -> None:
        self.store = store
        self.rails = rails
        self.settings = settings
        self.clock = clock

    # ----------------------------------------------------------------- the API's request
    async def create(self, payment: Payment, body: InvoiceCreate) -> Reply:
        b = body.buyer
        if b.type == "organization" and not b.tax_id:
            raise validation_error("buyer.tax_id",
                                   "An organization's invoice needs its taxpayer id.")
        buyer = InvoiceBuyer(b.type, b.title, b.tax_id, b.email)
        fingerprint = digest(msgspec.json.encode(body))
        for _ in range(TRIES):
            seen = await self.store.invoices.load(payment.invoice) if payment.invoice else None
            if seen is not None and seen.status is not S.FAILED:
                return _current(seen, fingerprint)
            if payment.status not in PAID or not payment.rail.rail_reference:
                raise invalid_state(f"Only a paid payment is invoiced; this one is "
                                    f"{payment.status}.")
            invoice = self.new(payment_order(payment, buyer, self._items(payment, body),
                                             seq=seen.order.seq + 1 if seen else 1,
                                             now=self.clock.now_ms()), fingerprint)
            await self._refused_before_writing(invoice)
            first_due = self.clock.now_ms() + int(self.settings.sweeper.first_check_s * 1000)
            match await self.store.invoices.create(invoice, fingerprint,
                                                   seen.id if seen else None, first_due, "api"):
                case Recorded():
                    return Reply.json(201, (await self.send(invoice)).to_json())
                case CurrentInvoice(current_id):
                    current = await self.store.invoices.load(current_id)
                    if current is None:
                        raise StoreUnavailable(f"invoice {current_id} is missing")
                    return _current(current, fingerprint)
                case NotInvoiceable(status):
                    raise invalid_state(f"Only a paid payment is invoiced; this one is "
                                        f"{status}.")
                case PaymentMissing():
                    raise not_found("payment")
                case AmountMismatch() | CurrentChanged() | NothingToReissue():
                    pass  # a refund or another invoice came first: look again
            reloaded = await self.store.payments.load(payment.id)
            if reloaded is None:
                raise not_found("payment")
            payment = reloaded
        raise StoreUnavailable(f"payment {payment.id} kept changing while invoicing")

    def _items(self, payment: Payment, body: InvoiceCreate) -> tuple[InvoiceItem, ...]:
        due = remaining(payment)
        if body.items is None:
            name = payment.description[:64] or payment.out_trade_no
            return (InvoiceItem(name, due, self.settings.invoices.default_tax_rate_bp),)
        items = tuple(InvoiceItem(i.name, i.amount, i.tax_rate_bp) for i in body.items)
        total = sum(item.amount for item in items)
        if total != due:
            raise validation_error("items", (
                f"The items sum to {total}; the payment has {due} paid less refunded, "
                "which is what its invoice is for."))
        return items

    async def _refused_before_writing(self, invoice: Invoice) -> None:
        """The rail builds the issue now (nothing sent): a rail without invoices, or one
        that cannot take this request, refuses it before anything is written."""
        rail = invoice.order.rail
        if await self.rails.resolve(rail) is None:
            raise invalid_state("The rail this payment was paid on no longer acts for it.")
        try:
            self.rails.build(rail, self.issue_op(invoice))
        except RailError as err:
            if err.param is None and err.code == RailErrorCode.INVALID_REQUEST \
                    and " offers no " in err.message:
                raise RouterError(422, "validation_error",
                                  f"The {base_rail(rail)} rail issues no invoices.") from None
            raise rail_refused_request(err) from None

    # ----------------------------------------------------------------- records and rail calls
    def new(self, order: InvoiceOrder, fingerprint: str) -> Invoice:
        amount = sum(item.amount for item in order.items)
        tax = sum(tax_of(item.amount, item.tax_rate_bp) for item in order.items)
        iid = keys.child_id("inv", order.payment_id, str(order.seq))
        return Invoice(iid, order, amount, tax, S.ISSUING, 1, order.created_ms, InvoiceState(),
                       fingerprint)

    def issue_op(self, invoice: Invoice) -> IssueInvoice:
        o = invoice.order
        return IssueInvoice(rail_invoice_no=invoice.rail_invoice_no,
                            rail_order_no=o.rail_order_no, rail_reference=o.rail_reference,
                            buyer=o.buyer, items=o.items, total=invoice.amount,
                            tax=invoice.tax)

    def query_op(self, invoice: Invoice) -> InvoiceQuery:
        return InvoiceQuery(invoice.rail_invoice_no, invoice.order.rail_reference)

    async def send(self, invoice: Invoice) -> Invoice:
        """Issue `invoice` (again: the rail issues a number at most once)."""
        try:
            result = await self.rails.call(invoice.order.rail, self.issue_op(invoice))
        except RailError as err:
            if err.definitive:
                return await self._refused(invoice, err)
            return await self.move(invoice, S.ISSUING, counted(invoice.state))
        return await self.apply(invoice, result)

    async def ask(self, invoice: Invoice) -> RailResult | None:
        """The rail's word on `invoice`; None when it cannot be had now."""
        try:
            return await self.rails.call(invoice.order.rail, self.query_op(invoice))
        except RailError as err:
            log.info("invoice query for %s failed (%s); will retry", invoice.id, err.code)
            return None

    async def _refused(self, invoice: Invoice, err: RailError) -> Invoice:
        # This send issued nothing, but an earlier one of the same number may have been
        # taken: only a rail that knows no invoice under the number proves it failed.
        known = await self.ask(invoice)
        if known is None:
            return await self.move(invoice, S.ISSUING, counted(invoice.state))
        if known.status is not RailStatus.NOT_FOUND:
            return await self.apply(invoice, known)
        return await self.move(invoice, S.FAILED, replace(
            counted(invoice.state), failure_code=err.code, failure_message=err.message))

    async def apply(self, invoice: Invoice, result: RailResult) -> Invoice:
        """Record the rail's word (an answer, a query) on `invoice`."""
        state = replace(counted(invoice.state),
                        invoice_no=result.rail_reference or invoice.state.invoice_no)
        status = invoice.status
        match result.status:
            case RailStatus.SUCCEEDED if status is S.ISSUING:
                status = S.ISSUED
            case RailStatus.FAILED if status is S.ISSUING:
                state = replace(state, failure_code=result.failure_code or "invoice_failed",
                                failure_message=result.failure_message)
                status = S.FAILED
            case RailStatus.CLOSED:
                status = S.REVERSED
            case _:
                pass  # accepted, pending, or still issued while a reversal is asked for
        if status is invoice.status and status is S.ISSUED:
            return invoice
        return await self.move(invoice, status, state)

    # ----------------------------------------------------------------- changes
    async def claim(self, invoice: Invoice, status: InvoiceStatus,
                    state: InvoiceState) -> Invoice | None:
        """One compare-and-set into `status`: the new invoice if this call made the move,
        None if another path changed it first (and so does what follows the move)."""
        new = replace(invoice, status=status, version=invoice.version + 1,
                      updated_ms=max(self.clock.now_ms(), invoice.updated_ms + 1), state=state)
        outcome = await self.store.invoices.transition(
            new, invoice.version, invoice.status.value, self._finish(invoice, new, None))
        return new if isinstance(outcome, Moved) else None

    async def move(self, invoice: Invoice, status: InvoiceStatus, state: InvoiceState,
                   *, due: str | None = None) -> Invoice:
        """Compare-and-set into `status`; a change another path made first stands."""
        current = invoice
        for attempt in range(TRIES):
            if status not in _MOVES[current.status] or (attempt and current.status is status):
                return current
            now = max(self.clock.now_ms(), current.updated_ms + 1)
            new = replace(current, status=status, version=current.version + 1,
                          updated_ms=now, state=state)
            outcome = await self.store.invoices.transition(
                new, current.version, current.status.value, self._finish(current, new, due))
            if isinstance(outcome, Moved):
                if status is not current.status:
                    log.info("invoice %s is %s", new.id, status)
                return new
            reloaded = await self.store.invoices.load(invoice.id)
            if reloaded is None:
                raise StoreUnavailable(f"invoice {invoice.id} is missing from the store")
            current = reloaded
        return current

    def _finish(self, old: Invoice, new: Invoice, due: str | None) -> Finish:
        now = self.clock.now_ms()
        if due is None:
            match new.status:
                case S.ISSUING | S.REVERSING:
                    delay = min(self.settings.sweeper.query_every_s
                                * 2 ** min(new.state.checks, 6), 600.0)
                    due = str(now + int(delay * 1000))
                case S.REVERSED:
                    due = str(now)  # its worker reissues what remains paid, or drops it
                case S.ISSUED | S.FAILED:
                    due = "-"  # an issued one that no longer fits is kept due by the script
        event_type = INVOICE_EVENTS.get(new.status)
        if event_type is None or new.status is old.status:
            return Finish(due_action=due)
        event_id, body = event(self.clock, keys.shard_in(new.id), event_type, new.render(),
                               new.updated_ms)
        return Finish(due_action=due, event_id=event_id, event_body=body,
                      webhook_url=new.order.notify_url or "")


def payment_order(payment: Payment, buyer: InvoiceBuyer, items: tuple[InvoiceItem, ...], *,
                  seq: int, now: int) -> InvoiceOrder:
    attempt = payment.rail.current
    return InvoiceOrder(payment.id, payment.merchant_id, payment.service_provider, seq, None,
                        payment.currency, attempt.rail, attempt.rail_order_no,
                        payment.rail.rail_reference or "", buyer, items, now,
                        payment.notify_url)


def counted(state: InvoiceState) -> InvoiceState:
    return replace(state, checks=state.checks + 1)


def _current(invoice: Invoice, fingerprint: str) -> Reply:
    """The payment's current invoice, for a request that finds one."""
    if invoice.fingerprint == fingerprint:
        return Reply(200, invoice.render())
    raise invalid_state(
        f"The payment's invoice is {invoice.id} ({invoice.status}); another is made only "
        "when it failed. A refund reverses it and reissues what remains paid.")
