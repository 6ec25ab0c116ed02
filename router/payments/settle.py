"""Settling payments on the rail's word: apply an answer, a notification or a query;
query an unsettled payment and close or reverse it when the rules say it will not be
paid; close on the merchant's request.

Unknown is not failed: only the rail's own word (an answer, a verified notification or a
query) moves a payment on, and only the rail's confirmation closes it.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import final

from adapters.base import (
    Close,
    Query,
    RailError,
    RailErrorCode,
    RailResult,
    RailStatus,
    Reverse,
    Scene,
)
from router.clock import Clock
from router.domain import TRANSITIONS, UNSETTLED, Payment, RailState, Status
from router.errors import RouterError, invalid_state
from router.payments.charges import charge_of
from router.payments.mutations import (
    clear_closing,
    count_check,
    mark_closing,
    record_error,
    record_result,
    status_of,
)
from router.payments.replies import Reply
from router.payments.transitions import Transitions
from router.rails.client import RailClient
from router.settings import Settings

log = logging.getLogger("payrouter.payments")


def scene_now(payment: Payment) -> Scene:
    """The scene the current attempt is in (a handed-over payment changes scene)."""
    return payment.rail.current.scene or payment.scene


@final
class Settler:
    __slots__ = ("clock", "rails", "settings", "transitions")

    def __init__(self, transitions: Transitions, rails: RailClient, settings: Settings,
                 clock: Clock) -> None:
        self.transitions = transitions
        self.rails = rails
        self.settings = settings
        self.clock = clock

    async def apply(self, payment: Payment, result: RailResult, *,
                    ours: bool = False) -> Payment:
        """Apply a rail's definitive word (answer, notification, query) to a payment.
        `ours`: the answer to the router's own close or reverse."""
        status = status_of(result)
        if status is Status.CLOSED and not ours and not payment.rail.closing:
            # Some rails (Alipay's TRADE_CLOSED) say "closed" for a payer's failed payment
            # too. An order the router never asked to close ended without the payer paying.
            status = Status.FAILED
            result = replace(result, status=RailStatus.FAILED,
                             failure_code=result.failure_code or "rail_closed",
                             failure_message=result.failure_message
                             or "The rail closed the order without payment.")
        if status is None or status not in TRANSITIONS[payment.status]:
            return payment
        moved, _ = await self.transitions.move(payment, status, record_result(result))
        return moved

    async def check(self, payment: Payment, *, resend_if_missing: bool = False) -> Payment:
        """Query the rail about an unsettled payment and move it on; reverse or close it
        when the rules say it will not be paid. Used by the sweeper and by recovery."""
        attempt = payment.rail.current
        result: RailResult | None
        try:
            result = await self.rails.call(attempt.rail, _query(payment))
            if result.status is RailStatus.NOT_FOUND and resend_if_missing:
                # The rail never saw the charge: sending it again with the same
                # rail_order_no is safe, the rail dedupes on it.
                result = await self.rails.call(
                    attempt.rail, charge_of(payment, self.settings.server.base_url()))
        except RailError as err:
            if err.definitive and resend_if_missing:
                moved, _ = await self.transitions.move(payment, Status.FAILED,
                                                       record_error(err))
                return moved
            result = None
        status = status_of(result) if result else None
        if status is Status.REQUIRES_ACTION and scene_now(payment) is Scene.QUICKPAY:
            # A payer-code charge "waiting for the buyer" is the payer confirming: the
            # confirm window and reversal apply, not QR expiry.
            status = Status.PROCESSING
        if status in (Status.SUCCEEDED, Status.FAILED, Status.CLOSED):
            assert result is not None
            return await self.apply(payment, result)
        return await self._unsettled(payment, result, status)

    async def _unsettled(self, payment: Payment, result: RailResult | None,
                         status: Status | None) -> Payment:
        age_s = (self.clock.now_ms() - payment.created_ms) / 1000
        sweep = self.settings.sweeper
        attempt = payment.rail.current
        if (result is not None and result.status is RailStatus.NOT_FOUND
                and payment.status is Status.PROCESSING and age_s > sweep.never_seen_s):
            # The rail still has no such order, long after the lost request: rails refuse
            # requests signed more than about five minutes earlier, so it can no longer
            # land. Nothing was charged; without this, a rail that cannot close an order
            # it never saw would leave the payment processing forever.
            moved, _ = await self.transitions.move(payment, Status.FAILED, record_error(
                RailError(RailErrorCode.NEVER_RECEIVED, "The rail never received the payment.",
                          definitive=True)))
            return moved
        if payment.status is Status.REQUIRES_ACTION or status is Status.REQUIRES_ACTION:
            if age_s > sweep.order_expiry_s:
                return await self.end(payment, Close(attempt.rail_order_no))
        else:
            window = (sweep.confirm_window_s if scene_now(payment) is Scene.QUICKPAY
                      else sweep.unknown_window_s)
            if age_s > window:
                return await self.end(payment, Reverse(attempt.rail_order_no))

        def observe(state: RailState) -> None:
            if result is not None:
                record_result(result)(state)
            state.checks += 1

        moved, _ = await self.transitions.move(payment, status or payment.status, observe)
        return moved

    async def end(self, payment: Payment, op: Close | Reverse) -> Payment:
        """Close or reverse at the rail; only the rail's confirmation closes the payment."""
        payment, marked = await self.mark_closing(payment)
        if not marked:
            return payment
        try:
            result = await self.rails.call(payment.rail.current.rail, op)
        except RailError as err:
            if err.definitive and isinstance(op, Reverse):
                return await self.reversal_refused(payment, err)
            log.warning("%s of %s failed (%s); will retry", type(op).__name__, payment.id,
                        err.code)
            moved, _ = await self.transitions.move(payment, payment.status, count_check)
            return moved
        return await self.apply(payment, result, ours=True)

    async def reversal_refused(self, payment: Payment, err: RailError) -> Payment:
        """The rail will not reverse (e.g. too late): whatever it holds stands. Clear the
        mark, so the next query settles the payment on what the rail says."""
        log.warning("reversal of %s refused (%s); settling on the rail's word", payment.id,
                    err.code)
        moved, _ = await self.transitions.move(payment, payment.status, clear_closing)
        return moved

    async def mark_closing(self, payment: Payment) -> tuple[Payment, bool]:
        """Record, before asking, that the router closes this order, so a "closed" learnt
        by any path (query, notification, the lost answer's retry) is known as ours."""
        if payment.rail.closing:
            return payment, True
        return await self.transitions.move(payment, payment.status, mark_closing)

    async def close(self, payment: Payment) -> Reply:
        """The merchant closes an unpaid payment (a pending payer-code charge is
        reversed): answered only once the rail confirmed it."""
        if payment.status is Status.CLOSED:
            return Reply.json(200, payment.to_json())
        if payment.status not in UNSETTLED:
            raise invalid_state(f"A {payment.status} payment cannot be closed.")
        payment, marked = await self.mark_closing(payment)
        if not marked:  # settled meanwhile
            if payment.status is Status.CLOSED:
                return Reply.json(200, payment.to_json())
            raise invalid_state(f"A {payment.status} payment cannot be closed.")
        attempt = payment.rail.current
        op: Close | Reverse = (
            Close(attempt.rail_order_no) if payment.status is Status.REQUIRES_ACTION
            else Reverse(attempt.rail_order_no)
        )
        try:
            result = await self.rails.call(attempt.rail, op)
        except RailError as err:
            if err.definitive:
                # e.g. already paid: learn the truth, then refuse.
                if isinstance(op, Reverse):
                    payment = await self.reversal_refused(payment, err)
                checked = await self.check(payment)
                raise invalid_state(
                    f"The rail refused to close the payment ({err.code}); it is "
                    f"{checked.status}."
                ) from None
            raise RouterError(502, "adapter_error",
                              "The rail's answer to the close is unknown; retry later.",
                              extra={"payment_id": payment.id}) from None
        moved = await self.apply(payment, result, ours=True)
        if moved.status is not Status.CLOSED:
            raise invalid_state(f"The payment could not be closed; it is {moved.status}.")
        return Reply.json(200, moved.to_json())


def _query(payment: Payment) -> Query:
    return Query(payment.rail.current.rail_order_no)
