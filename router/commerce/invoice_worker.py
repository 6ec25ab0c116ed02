"""The life of an invoice after its request: the sweeper's `iv:<id>` entries, the rails'
INVOICE notifications, and refunds that succeed.

An invoice issued for more than its payment still has paid (a refund succeeded) is
reversed, and a new one (the next in the payment's line, same buyer, items scaled:
`invoice_records.scaled`) is issued for what remains; after a full refund none is.
Exactly once whatever crashes: the refund script keeps the invoice due (it reads the
payment's `iv` in the same step as the refunded sum), the move to `reversing` and every
later change is a compare-and-set, and the reissue is recorded by invoice_create.lua
only while the reversed invoice is still the payment's current one.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Final, final

from adapters.base import Notification, RailError, RailStatus
from adapters.commerce_ops import ReverseInvoice
from router.clock import Clock
from router.commerce.invoice_records import Invoice, InvoiceStatus, scaled
from router.commerce.invoices import PAID, TRIES, Invoices, counted, remaining
from router.refund_record import Refund
from router.store import keys
from router.store.invoices import AmountMismatch, NothingToReissue
from router.store.outcomes import Recorded
from router.store.store import Store

log = logging.getLogger("payrouter.invoices")

S = InvoiceStatus
_STEPS: Final = 4  # an issue settled, then reversed, then reissued: in one look


@final
class InvoiceWorker:
    __slots__ = ("clock", "desk", "store")

    def __init__(self, store: Store, desk: Invoices, clock: Clock) -> None:
        self.store = store
        self.desk = desk
        self.clock = clock

    async def work(self, invoice_id: str) -> None:
        """Take the invoice as far as the rail's word allows now."""
        invoice = await self.store.invoices.load(invoice_id)
        for _ in range(_STEPS):
            if invoice is None or invoice.status is S.FAILED:
                await self._drop(invoice_id)
                return
            after = await self._step(invoice)
            if after is None or after.id != invoice.id or after.status is invoice.status:
                return
            invoice = after

    async def _step(self, invoice: Invoice) -> Invoice | None:
        match invoice.status:
            case S.ISSUING:
                return await self._issuing(invoice)
            case S.ISSUED:
                return await self._issued(invoice)
            case S.REVERSING:
                return await self._reversing(invoice)
            case S.REVERSED:
                return await self._reissue(invoice)
            case S.FAILED:
                return None

    async def _issuing(self, invoice: Invoice) -> Invoice:
        # Asked first even when it may never have gone out (a crash right after it was
        # recorded): the request path sends at once, and its send may still be in flight.
        result = await self.desk.ask(invoice)
        if result is None:
            return await self.desk.move(invoice, S.ISSUING, counted(invoice.state))
        if result.status is RailStatus.NOT_FOUND:
            return await self.desk.send(invoice)  # same number: issued at most once
        return await self.desk.apply(invoice, result)

    async def _issued(self, invoice: Invoice) -> Invoice | None:
        payment = await self.store.payments.load(invoice.order.payment_id)
        if payment is not None and remaining(payment) != invoice.amount:
            # Only the look that makes the move sends the reversal; another goes on.
            moved = await self.desk.claim(invoice, S.REVERSING,
                                          replace(invoice.state, checks=0))
            return await self._reverse(moved) if moved is not None else None
        # Nothing to do: the entry goes, unless a refund made it due in the meantime
        # (invoice_transition.lua looks at the payment in the same step).
        return await self.desk.move(invoice, S.ISSUED, invoice.state, due="-")

    async def _reversing(self, invoice: Invoice) -> Invoice:
        result = await self.desk.ask(invoice)
        if result is None or result.status is RailStatus.PROCESSING:
            return await self.desk.move(invoice, S.REVERSING, counted(invoice.state))
        if result.status is RailStatus.SUCCEEDED:
            if result.failure_code:
                log.warning("the reversal of invoice %s failed at the rail (%s); asking again",
                            invoice.id, result.failure_code)
            return await self._reverse(invoice)  # it still stands: ask again
        return await self.desk.apply(invoice, result)

    async def _reverse(self, invoice: Invoice) -> Invoice:
        """Ask the rail to reverse `invoice` (again: a reversed one stays reversed)."""
        number = invoice.state.invoice_no
        if number is None:  # issued on a word that had no number (a notification)
            known = await self.desk.ask(invoice)
            number = known.rail_reference if known is not None else None
            if number is None:
                return await self.desk.move(invoice, S.REVERSING, counted(invoice.state))
            invoice = replace(invoice, state=replace(invoice.state, invoice_no=number))
        o = invoice.order
        # The reason is the rail's own word for a refund (the adapter's default).
        op = ReverseInvoice(invoice.rail_invoice_no, "", o.rail_reference, number)
        try:
            result = await self.desk.rails.call(o.rail, op)
        except RailError as err:
            log.warning("reversing invoice %s: %s (%s); will retry", invoice.id, err.code,
                        "refused" if err.definitive else "unknown")
            return await self.desk.move(invoice, S.REVERSING, counted(invoice.state))
        return await self.desk.apply(invoice, result)

    async def _reissue(self, old: Invoice) -> Invoice | None:
        """The next invoice of a payment whose current one was reversed, for what remains
        paid; none after a full refund, or when one follows already."""
        for _ in range(TRIES):
            payment = await self.store.payments.load(old.order.payment_id)
            if (payment is None or payment.invoice != old.id or payment.status not in PAID
                    or remaining(payment) <= 0):
                items = old.order.items  # the script finds nothing to reissue
            else:
                items = scaled(old.order.items, remaining(payment))
            order = replace(old.order, seq=old.order.seq + 1, replaces=old.id, items=items,
                            created_ms=self.clock.now_ms())
            new = self.desk.new(order, old.fingerprint)
            # Sent below at once; the sweeper looks later in case this process dies first.
            first_due = new.updated_ms + int(self.desk.settings.sweeper.first_check_s * 1000)
            match await self.store.invoices.create(new, old.fingerprint, old.id, first_due,
                                                   "reissue"):
                case Recorded():
                    log.info("invoice %s reissued as %s", old.id, new.id)
                    return await self.desk.send(new)
                case NothingToReissue():
                    return None
                case AmountMismatch():
                    continue  # a refund came first: scale again
                case _:
                    await self._drop(old.id)  # another follows it already
                    return None
        return None

    async def _drop(self, invoice_id: str) -> None:
        shard = keys.shard_of(invoice_id)
        if shard is not None:
            await self.store.due.reschedule(shard, f"iv:{invoice_id}", None)

    # ----------------------------------------------------------------- news from elsewhere
    async def on_notification(self, rail: str, note: Notification) -> bool:
        """A rail's verified word about an invoice: a reason to look now (the rail's
        notification names no invoice number, and lists the payment's invoices, so the
        query tells). False when it names none of ours."""
        number = note.rail_order_no
        invoice = await self.store.invoices.load("inv_" + number.removeprefix("inv"))
        if invoice is None or invoice.order.rail != rail or invoice.rail_invoice_no != number:
            log.warning("a %s invoice notification names no invoice of ours", rail)
            return False
        await self.work(invoice.id)
        payment = await self.store.payments.load(invoice.order.payment_id)
        current = payment.invoice if payment is not None else None
        if current is not None and current != invoice.id:
            await self.work(current)  # the news may be of the payment's current one
        return True

    async def refund_succeeded(self, refund: Refund, invoice_id: str) -> None:
        """A refund of an invoiced payment succeeded: its invoice no longer fits."""
        log.info("refund %s: looking at invoice %s", refund.id, invoice_id)
        await self.work(invoice_id)
