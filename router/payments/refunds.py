"""Refunds: reserve atomically against the paid amount, call the rail, settle.

The reservation (create_refund.lua) is what makes over-refunding impossible: the sum of
refunds that are processing or succeeded never exceeds the amount paid, whatever the
concurrency. A failed refund frees its reservation; a succeeded one adds to the
payment's refunded amount and moves it to partially_refunded / refunded.

A refund of money that was shared (profit sharing) first takes it back from the split
receivers: the script reserves those returns with the refund (`Refund.returning`), and
`shares_back` sends them before the refund goes out (commerce/split_returns.py).

A refund that succeeds on a payment with a current e-invoice makes the invoice due in the
same script and tells `invoice_listeners`, which reverse (and reissue) it
(commerce/invoice_worker.py); a payment without one costs nothing more.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import final

import orjson

from adapters.base import RailError, RailResult, RailStatus, RefundQuery
from adapters.base import Refund as RefundOp
from router.clock import Clock
from router.domain import REFUND_EVENTS, Payment, RefundStatus, funded_object
from router.errors import invalid_state
from router.events import event
from router.ledger.entries import movement
from router.payments.replies import Reply, refusal
from router.rails.client import RailClient
from router.refund_record import Refund
from router.settings import Settings
from router.store import keys
from router.store.finish import Finish
from router.store.outcomes import Moved, RefundExists, RefundReserved
from router.store.refunds import MovedPastInvoice
from router.store.store import Store
from router.validation import RefundRequest

log = logging.getLogger("payrouter.refunds")

# Takes a refund's shared money back from the split receivers; raises `RailError` while
# it is not all back (unknown: the refund waits; definitive: the refund fails).
SharesBack = Callable[[Refund], Awaitable[None]]
# Told when a refund succeeds on a payment with a current invoice (its id), which no
# longer fits what is paid (commerce/invoice_worker.py). The script made the invoice
# due in the same step, so a listener that fails loses nothing.
RefundPastInvoice = Callable[[Refund, str], Awaitable[None]]
# A payment's campaign discount and cashback paid, which the rail's part of a refund
# leaves out (router/promotions/campaign_keeper.py); raises a RouterError to refuse.
CampaignShares = Callable[[Payment], Awaitable[tuple[int, int]]]
# Told when a refund succeeds (a campaign's share of it goes back to its budget).
RefundSucceeded = Callable[[Refund], Awaitable[None]]


def refund_status_of(result: RailResult) -> RefundStatus | None:
    match result.status:
        case RailStatus.SUCCEEDED:
            return RefundStatus.SUCCEEDED
        case RailStatus.FAILED | RailStatus.CLOSED:
            return RefundStatus.FAILED
        case RailStatus.PROCESSING | RailStatus.REQUIRES_ACTION | RailStatus.NOT_FOUND:
            return None


@final
class Refunds:
    __slots__ = ("campaign_shares", "clock", "invoice_listeners", "listeners", "rails",
                 "settings", "shares_back", "store")

    def __init__(self, store: Store, rails: RailClient, settings: Settings,
                 clock: Clock) -> None:
        self.store = store
        self.rails = rails
        self.settings = settings
        self.clock = clock
        self.shares_back: SharesBack | None = None
        self.invoice_listeners: list[RefundPastInvoice] = []
        self.campaign_shares: CampaignShares | None = None
        self.listeners: list[RefundSucceeded] = []

    async def create(self, payment: Payment, req: RefundRequest) -> Reply:
        funded = funded_object(payment)
        if funded and not req.out_refund_no.startswith(funded + "-"):
            # Its money belongs to the packet now: what is not paid out goes back through
            # the packet's own expiry refund, never twice.
            raise invalid_state(f"This payment funds {funded}; what it does not pay out is "
                                "refunded when it expires.")
        now = self.clock.now_ms()
        shard = keys.shard_in(payment.id)
        attempt = payment.rail.current
        refund = Refund(
            id=keys.new_id(self.clock, "re", shard), payment_id=payment.id,
            merchant_id=payment.merchant_id,
            amount=req.amount, currency=payment.currency, out_refund_no=req.out_refund_no,
            reason=req.reason, rail=attempt.rail, rail_order_no=attempt.rail_order_no,
            created_ms=now, status=RefundStatus.PROCESSING, updated_ms=now,
        )
        shares = (0, 0)
        if payment.promotions and self.campaign_shares is not None:
            shares = await self.campaign_shares(payment)
        outcome = await self.store.refunds.create(
            refund, fingerprint=req.fingerprint(),
            first_due_ms=now + int(self.settings.sweeper.first_check_s * 1000), shares=shares,
        )
        match outcome:
            case RefundReserved(returning, payer_amount):
                settled = await self._send(
                    replace(refund, returning=returning, payer_amount=payer_amount), payment)
                return Reply.json(201, settled.to_json())
            case RefundExists(refund_id):
                existing = await self.store.refunds.load(refund_id)
                if existing is None:
                    raise RuntimeError("refund index points at a missing refund")
                return Reply.json(200, existing.to_json())
            case _:
                raise refusal(outcome)

    def _op(self, refund: Refund, payment_amount: int) -> RefundOp:
        return RefundOp(
            rail_order_no=refund.rail_order_no, rail_refund_no=refund.rail_refund_no,
            amount=refund.paid_back, total=payment_amount, currency=refund.currency,
            reason=refund.reason or "", notify_url=(
                f"{self.settings.server.base_url()}/v1/notify/{refund.rail}"),
        )

    async def _send(self, refund: Refund, payment: Payment) -> Refund:
        try:
            if refund.returning and self.shares_back is not None:
                await self.shares_back(refund)
            if refund.paid_back == 0:
                # A campaign's reward takes the whole of it: nothing goes back at the rail.
                return await self.move(refund, RefundStatus.SUCCEEDED, payment.notify_url)
            result = await self.rails.call(refund.rail,
                                           self._op(refund, payment.charged_amount))
        except RailError as err:
            if not err.definitive:
                return await self.move(refund, RefundStatus.PROCESSING, payment.notify_url)
            failed = replace(refund, failure={"code": err.code, "message": err.message})
            return await self.move(failed, RefundStatus.FAILED, payment.notify_url)
        return await self.apply(refund, result, payment.notify_url)

    async def apply(self, refund: Refund, result: RailResult, webhook_url: str | None) -> Refund:
        status = refund_status_of(result)
        if result.status is RailStatus.FAILED:
            refund = replace(refund, failure={
                "code": result.failure_code or "refund_refused",
                "message": result.failure_message or "The rail refused the refund."})
        if result.rail_reference:
            refund = replace(refund, rail_reference=result.rail_reference)
        return await self.move(refund, status or RefundStatus.PROCESSING, webhook_url)

    async def move(self, refund: Refund, status: RefundStatus, webhook_url: str | None) -> Refund:
        """Compare-and-set from processing; a refund already settled stays as it is."""
        if refund.status is not RefundStatus.PROCESSING:
            return refund
        now = max(self.clock.now_ms(), refund.updated_ms + 1)
        checks = refund.checks + (1 if status is RefundStatus.PROCESSING else 0)
        new = replace(refund, status=status, updated_ms=now, checks=checks)
        event_id, event_body = "", b""
        if event_type := REFUND_EVENTS.get(status):
            event_id, event_body = event(self.clock, keys.shard_in(refund.id), event_type,
                                         orjson.dumps(new.to_json()), now)
        due = (str(now + int(self.settings.sweeper.query_every_s * 1000))
               if status is RefundStatus.PROCESSING else "-")
        journal = b""
        if status is RefundStatus.SUCCEEDED:
            journal = movement("refund", new.id, new.paid_back, new.currency, now, new.rail,
                               new.rail_order_no, new.rail_refund_no)
        outcome = await self.store.refunds.transition(
            new, RefundStatus.PROCESSING.value,
            Finish(due_action=due, event_id=event_id, event_body=event_body,
                   webhook_url=webhook_url or "", journal=journal),
            invoice_due_ms=now + int(self.settings.sweeper.first_check_s * 1000),
        )
        if status is RefundStatus.SUCCEEDED and isinstance(outcome, Moved | MovedPastInvoice):
            await self._succeeded(new)
        if isinstance(outcome, MovedPastInvoice):
            await self._past_invoice(new, outcome.invoice_id)
            return new
        if isinstance(outcome, Moved):
            return new
        reloaded = await self.store.refunds.load(refund.id)
        return reloaded or refund

    async def _succeeded(self, refund: Refund) -> None:
        for listener in self.listeners:
            try:
                await listener(refund)
            except Exception:
                # What listens has its own due entry that looks again: nothing is lost.
                log.exception("a listener of refund %s failed", refund.id)

    async def _past_invoice(self, refund: Refund, invoice_id: str) -> None:
        for listener in self.invoice_listeners:
            try:
                await listener(refund, invoice_id)
            except Exception:
                # The invoice is due in the sweeper's set: it is looked at again.
                log.exception("a listener of refund %s failed", refund.id)

    async def check(self, refund: Refund, payment: Payment) -> Refund:
        """Sweeper: ask the rail; a refund it never received is sent again (same key)."""
        try:
            result = await self.rails.call(
                refund.rail, RefundQuery(refund.rail_order_no, refund.rail_refund_no))
            if result.status is RailStatus.NOT_FOUND:
                return await self._send(refund, payment)
        except RailError as err:
            log.info("refund query for %s failed (%s); will retry", refund.id, err.code)
            return await self.move(refund, RefundStatus.PROCESSING, payment.notify_url)
        return await self.apply(refund, result, payment.notify_url)
