"""Every change of a payment: a compare-and-set in one script, with its sweeper entry,
its webhook event and (for a request) its idempotent answer written alongside.

A lost race re-reads the payment and tries again while the move is still allowed, so
concurrent paths (the request, a notification, the sweeper) never overwrite each other.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import final

from router.clock import Clock
from router.domain import PAYMENT_EVENTS, TRANSITIONS, UNSETTLED, Payment, RailState, Status
from router.events import event
from router.ledger.entries import movement
from router.ops.metrics import Metrics
from router.payments.mutations import Mutation, reversing
from router.payments.replies import IdemTicket, Reply
from router.settings import Settings
from router.store import keys
from router.store.finish import Finish
from router.store.outcomes import Moved
from router.store.store import Store, StoreUnavailable

# (payment as it ends up, its rendered JSON) → the request's answer
ReplyBuilder = Callable[[Payment, bytes], Reply]
# Told when a payment leaves processing for good (paid, failed, closed): a red packet
# waits for its funding payment this way.
PaymentSettled = Callable[[Payment], Awaitable[None]]

log = logging.getLogger("payrouter.payments")

_TRIES = 5


@final
class Transitions:
    __slots__ = ("clock", "listeners", "metrics", "settings", "store")

    def __init__(self, store: Store, settings: Settings, metrics: Metrics,
                 clock: Clock) -> None:
        self.store = store
        self.settings = settings
        self.metrics = metrics
        self.clock = clock
        self.listeners: list[PaymentSettled] = []

    async def move(self, payment: Payment, status: Status, mutate: Mutation
                   ) -> tuple[Payment, bool]:
        """Compare-and-set `payment` into `status`. Returns the payment as it now is, and
        whether this call moved it."""
        current, moved, _ = await self._move(payment, status, mutate, None, None)
        return current, moved

    async def move_replying(self, payment: Payment, status: Status, mutate: Mutation,
                            ticket: IdemTicket | None, reply: ReplyBuilder
                            ) -> tuple[Payment, Reply]:
        """`move`, answering a request: `reply` builds its answer from the payment as it
        ends up, stored for the request's idempotency key in the same script (or, for an
        answer that says nothing is known yet, the key is released instead, so a retry
        asks again)."""
        current, _, answer = await self._move(payment, status, mutate, ticket, reply)
        assert answer is not None
        return current, answer

    async def _move(
        self, payment: Payment, status: Status, mutate: Mutation,
        ticket: IdemTicket | None, reply: ReplyBuilder | None,
    ) -> tuple[Payment, bool, Reply | None]:
        current = payment
        for _ in range(_TRIES):
            if status not in TRANSITIONS[current.status] or reversing(current, status):
                break
            new = self._next(current, status, mutate)
            rendered = new.render()
            answer = reply(new, rendered) if reply else None
            outcome = await self.store.payments.transition(
                new, current.version, current.status.value,
                self._finish(current, new, rendered, ticket, answer))
            if isinstance(outcome, Moved):
                if new.status is not current.status:
                    self.metrics.child(self.metrics.payments, new.rail.current.rail,
                                       new.status.value).inc()
                    if current.status in UNSETTLED and new.status not in UNSETTLED:
                        await self._settled(new)
                return new, True, answer
            reloaded = await self.store.payments.load(payment.id)
            if reloaded is None:
                # Only a node without our writes answers so: a failover in progress (a
                # restarted old master not yet demoted). Unavailable, not an error.
                raise StoreUnavailable(f"payment {payment.id} is missing from the store")
            current = reloaded
        answer = reply(current, current.render()) if reply else None
        if ticket is not None and answer is not None:
            await self.store.idempotency.settle(ticket.shard, ticket.merchant_id, ticket.key,
                                                ticket.owner, _stored_status(answer),
                                                answer.body)
        return current, False, answer

    async def _settled(self, payment: Payment) -> None:
        if not (payment.metadata or payment.promotions) or not self.listeners:
            return  # only payments that fund something or carry rewards have listeners
        for listener in self.listeners:
            try:
                await listener(payment)
            except Exception:
                # What listens has its own worker that looks again: nothing is lost.
                log.exception("a listener of payment %s failed", payment.id)

    def _next(self, current: Payment, status: Status, mutate: Mutation) -> Payment:
        state = RailState.unpack(current.rail.pack())
        mutate(state)
        return replace(current, status=status, version=current.version + 1,
                       updated_ms=max(self.clock.now_ms(), current.updated_ms + 1), rail=state)

    def _finish(self, current: Payment, new: Payment, rendered: bytes,
                ticket: IdemTicket | None, answer: Reply | None) -> Finish:
        event_id, event_body = "", b""
        event_type = PAYMENT_EVENTS.get(new.status)
        if event_type and new.status is not current.status:
            event_id, event_body = event(self.clock, keys.shard_in(new.id), event_type,
                                         rendered, new.updated_ms)
        answer = answer if ticket else None
        journal = b""
        if new.status is Status.SUCCEEDED and current.status in UNSETTLED:
            attempt = new.rail.current
            journal = movement("charge", new.id, new.charged_amount, new.currency,
                               new.updated_ms, attempt.rail, attempt.rail_order_no)
        return Finish(
            journal=journal,
            due_action=self._due(new),
            event_id=event_id,
            event_body=event_body,
            webhook_url=new.notify_url or "",
            idem_key=ticket.key if ticket else "",
            idem_owner=ticket.owner if ticket else "",
            idem_status=_stored_status(answer) if answer else None,
            idem_body=answer.body if answer else b"",
        )

    def _due(self, payment: Payment) -> str:
        """When the sweeper should next look at this payment ("-": never)."""
        sweep = self.settings.sweeper
        if payment.status not in UNSETTLED:
            return "-"
        if payment.status is Status.REQUIRES_ACTION:
            # Notifications normally settle these; queries back off to catch lost ones.
            delay = min(sweep.first_check_s * 2 ** min(payment.rail.checks, 10), 600.0)
        else:
            delay = sweep.query_every_s
        return str(self.clock.now_ms() + int(delay * 1000))


def _stored_status(answer: Reply) -> int | None:
    """The status to store for an idempotency key; None releases the key (an answer
    that says the outcome is not known yet must not be replayed forever)."""
    return None if answer.provisional else answer.status
