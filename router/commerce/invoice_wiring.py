"""The e-invoice domain's parts, wired for one gateway process."""

from __future__ import annotations

from dataclasses import dataclass
from typing import final

from router.clock import Clock
from router.commerce.invoice_worker import InvoiceWorker
from router.commerce.invoices import Invoices
from router.payments import Payments
from router.rails.client import RailClient
from router.settings import Settings
from router.store.store import Store


@final
@dataclass(frozen=True, slots=True)
class Invoicing:
    desk: Invoices
    worker: InvoiceWorker

    @classmethod
    def wire(cls, store: Store, payments: Payments, rails: RailClient, settings: Settings,
             clock: Clock) -> Invoicing:
        desk = Invoices(store, rails, settings, clock)
        worker = InvoiceWorker(store, desk, clock)
        # A refund that succeeds on an invoiced payment reverses (and reissues) its invoice.
        payments.refunds.invoice_listeners.append(worker.refund_succeeded)
        return cls(desk=desk, worker=worker)
