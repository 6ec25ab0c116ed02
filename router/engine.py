"""Payments: create → call the rail → compare-and-set; close; settle unknown outcomes.

Unknown is not failed: a timeout, a 5xx or an unverifiable answer leaves the payment
`processing` with a sweeper entry, and only the rail's own word (an answer, a verified
notification or a query) moves it on. Every rail call for an attempt carries the same
`rail_order_no`, so repeating it can never charge twice.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import replace
from typing import Any, Final, assert_never, final

from adapters.base import (
    Charge,
    Close,
    HttpRequest,
    Query,
    RailError,
    RailResult,
    RailStatus,
    Reverse,
)
from router.domain import (
    PAYMENT_EVENTS,
    TRANSITIONS,
    UNSETTLED,
    Attempt,
    Payment,
    RailState,
    Status,
)
from router.errors import RouterError, invalid_state, validation_error
from router.events import event, now_ms
from router.limits import LIMIT_NAMES, payment_specs, rail_spec, too_many
from router.merchants import Merchant
from router.metrics import Metrics
from router.railclient import RailClient
from router.replies import IdemTicket, Reply
from router.settings import Settings
from router.store import keys
from router.store.store import Finish, Store, StoreUnavailable
from router.validation import PaymentRequest

log = logging.getLogger("payrouter.engine")

Mutation = Callable[[RailState], None]
ReplyBuilder = Callable[[Payment, bytes], Reply]  # (payment, its rendered JSON) → answer


_PARAM = re.compile(r"\b(payer\.\w+|currency|amount|description|metadata\.\w+)")


def _param_in(message: str) -> str:
    """The request field an adapter's refusal names, for the error's `param`."""
    found = _PARAM.search(message)
    return found.group(1) if found else "payer"


def rail_order_no(payment_id: str, attempt: int) -> str:
    """The rail-side idempotency key of one attempt (≤ 32 chars of [0-9A-Za-z_])."""
    return f"{payment_id.removeprefix('pay_')}_{attempt}"


def payment_id_of(rail_order: str) -> str:
    return "pay_" + rail_order.rsplit("_", 1)[0]


def status_of(result: RailResult) -> Status | None:
    """The payment status a rail result proves, or None when it proves nothing."""
    match result.status:
        case RailStatus.REQUIRES_ACTION:
            return Status.REQUIRES_ACTION
        case RailStatus.PROCESSING:
            return Status.PROCESSING
        case RailStatus.SUCCEEDED:
            return Status.SUCCEEDED
        case RailStatus.FAILED:
            return Status.FAILED
        case RailStatus.CLOSED:
            return Status.CLOSED
        case RailStatus.NOT_FOUND:
            return None
        case _:
            assert_never(result.status)


def record_result(result: RailResult) -> Mutation:
    def mutate(state: RailState) -> None:
        if result.action is not None:
            state.action = result.action.to_json()
        if result.rail_reference:
            state.rail_reference = result.rail_reference
        if result.status is RailStatus.FAILED:
            state.failure = {
                "code": result.failure_code or "rail_refused",
                "message": result.failure_message or "The rail refused the payment.",
            }
    return mutate


def record_error(err: RailError) -> Mutation:
    def mutate(state: RailState) -> None:
        state.failure = {"code": err.code, "message": err.message}
    return mutate


def _scene(payment: Payment) -> str:
    """The scene the current attempt is in (a handed-over payment changes scene)."""
    return payment.rail.current.scene or payment.scene


def _count_check(state: RailState) -> None:
    state.checks += 1


def _mark_closing(state: RailState) -> None:
    state.closing = True


def _clear_closing(state: RailState) -> None:
    state.closing = False


def _reversing(current: Payment, status: Status) -> bool:
    """The router is reversing this charge (marked before the reversal was sent): a
    "paid" learnt now — the request's late answer, a query, a notification — may be
    undone by the reversal in flight, and settling on it would report paid what the payer
    gets back. The reversal's own answer decides; a reversal the rail refuses clears the
    mark (`Engine._reversal_refused`)."""
    return (status is Status.SUCCEEDED and current.status is Status.PROCESSING
            and current.rail.closing)


# Refusals that prove the rail never took the payment, so another rail may: only a
# connection that was never made, unless a rail's configuration lists more
# (`failover_codes = [...]` in its [rails.*] table).
_DEFAULT_FAILOVER: Final = frozenset({"RAIL_UNREACHABLE"})


@final
class Engine:
    __slots__ = ("_failover_codes", "metrics", "rails", "settings", "store")

    def __init__(self, store: Store, rails: RailClient, settings: Settings,
                 metrics: Metrics) -> None:
        self.store = store
        self.rails = rails
        self.settings = settings
        self.metrics = metrics
        self._failover_codes = {
            r.name: _DEFAULT_FAILOVER | frozenset(r.options.get("failover_codes", ()))
            for r in settings.rails
        }

    # ----------------------------------------------------------------- create
    async def create(
        self,
        merchant: Merchant,
        req: PaymentRequest,
        rail: str,
        routing: dict[str, Any],
        idem: tuple[str, str] | None,  # (Idempotency-Key, request hash)
        method: str | None = None,  # what `method` says when the request named none
    ) -> Reply:
        now = now_ms()
        pid = keys.payment_id(merchant.shard, merchant.id, req.out_trade_no)
        payment = Payment(
            id=pid, merchant_id=merchant.id, amount=req.amount, currency=req.currency,
            out_trade_no=req.out_trade_no, scene=req.scene, method=req.method or method or rail,
            description=req.description, payer=req.payer, notify_url=req.notify_url,
            metadata=req.metadata, routing=routing, created_ms=now,
            status=Status.PROCESSING, version=1, updated_ms=now, refunded_amount=0,
            rail=RailState([Attempt(1, rail, rail_order_no(pid, 1))]),
        )
        charge = self.charge_op(payment)
        try:
            # Built (and signed) before anything is written: a request the rail cannot
            # take is the caller's error, answered 422 with nothing recorded.
            built = self.rails.build(rail, charge)
        except RailError as err:
            raise validation_error(_param_in(err.message), err.message) from None
        owner = keys.new_id("own", merchant.shard)
        sweep = self.settings.sweeper
        quota = rail_spec(self.settings, rail)
        if quota is not None and (limited := await self.store.rate_limit([quota])):
            self.metrics.rate_limited.labels("rail").inc()
            raise too_many(limited, "rail")
        outcome = await self.store.create_payment(
            payment,
            shard=merchant.shard,
            fingerprint=req.fingerprint(),
            idem=(idem[0], idem[1], owner) if idem else None,
            lease_ms=int(self.settings.idempotency.lease_s * 1000),
            first_due_ms=now + int(sweep.first_check_s * 1000),
            limits=payment_specs(self.settings, merchant, req.payer),
        )
        if quota is not None and outcome.kind not in ("created", "takeover"):
            # No call to the rail follows (refused, replayed, or an existing payment).
            await self.store.return_call(quota)
        ticket = IdemTicket(merchant.shard, merchant.id, idem[0], owner) if idem else None
        match outcome.kind:
            case "created":
                return await self._charge(payment, charge, built, ticket)
            case "replay":
                status, body = outcome.replayed()
                return Reply(status, body, {"Idempotent-Replayed": "true"})
            case "in_use":
                raise RouterError(409, "idempotency_key_in_use",
                                  "A request with this Idempotency-Key is still in progress.")
            case "reused":
                raise RouterError(422, "idempotency_key_reused",
                                  "This Idempotency-Key was used with a different request body.")
            case "limited":
                limited = outcome.limited()
                which = LIMIT_NAMES[limited.which]
                self.metrics.rate_limited.labels(which).inc()
                raise too_many(limited, which)
            case "conflict":
                raise RouterError(409, "out_trade_no_used",
                                  "out_trade_no was already used with different parameters.",
                                  param="out_trade_no")
            case "exists":
                return await self._existing(outcome.values[0].decode(), ticket, 200)
            case "takeover":
                return await self._existing(outcome.values[0].decode(), ticket, 201,
                                            recover=True)
            case other:
                raise RuntimeError(f"unexpected create outcome {other}")

    async def _charge(self, payment: Payment, charge: Charge, built: HttpRequest | RailResult,
                      ticket: IdemTicket | None) -> Reply:
        try:
            result = await self.rails.call(payment.rail.current.rail, charge, built)
        except RailError as err:
            return await self._charge_failed(payment, err, ticket)
        status = status_of(result) or Status.PROCESSING
        _, reply = await self.move_replying(payment, status, record_result(result), ticket,
                                            lambda p, rendered: Reply(201, rendered))
        return reply

    async def _charge_failed(
        self, payment: Payment, err: RailError, ticket: IdemTicket | None
    ) -> Reply:
        if err.definitive:
            failed_over = await self._failover(payment, err, ticket)
            if failed_over is not None:
                return failed_over
        if err.definitive:
            status, mutate = Status.FAILED, record_error(err)
        else:
            status, mutate = Status.PROCESSING, _count_check
        unreachable = err.code == "RAIL_UNREACHABLE"

        def reply(p: Payment, rendered: bytes) -> Reply:
            # A decline, or an unknown outcome that a notification or the sweeper has
            # already settled meanwhile: the payment itself is the answer.
            if (err.definitive and not unreachable) or p.status is not status:
                return Reply(201, rendered)
            code, http = ("adapter_timeout", 504) if err.code == "RAIL_TIMEOUT" else (
                "adapter_error", 502)
            message = ("The rail could not be reached; the payment failed."
                       if unreachable else
                       "The rail's answer is unknown; the payment stays processing and is "
                       "settled by querying the rail.")
            return Reply.error(RouterError(http, code, message, extra={
                "payment_id": p.id, "payment_status": p.status.value}))

        _, answer = await self.move_replying(payment, status, mutate, ticket, reply)
        return answer

    async def _failover(self, payment: Payment, err: RailError,
                        ticket: IdemTicket | None) -> Reply | None:
        """After a refusal that proves nothing was charged (the rail's failover codes),
        try the next candidate as a new attempt with its own rail_order_no. Never after
        an unknown outcome: that payment waits for the sweeper instead."""
        current = payment.rail.current
        if err.code not in self._failover_codes.get(current.rail, _DEFAULT_FAILOVER):
            return None
        tried = {a.rail for a in payment.rail.attempts}
        if len(tried) >= self.settings.routing.max_attempts:
            return None
        for rail in payment.routing.get("candidates", []):
            if rail in tried or not self.rails.has(rail):
                continue
            number = len(payment.rail.attempts) + 1
            attempt = Attempt(number, rail, rail_order_no(payment.id, number))
            charge = self.charge_op(payment, attempt)
            try:
                built = self.rails.build(rail, charge)
            except RailError:
                continue  # this rail cannot take the payment as it is: the next may
            log.info("payment %s: %s refused by %s (%s); failing over to %s", payment.id,
                     current.rail_order_no, current.rail, err.code, rail)

            def add_attempt(state: RailState, attempt: Attempt = attempt) -> None:
                state.attempts[-1].failure_code = err.code
                state.attempts.append(attempt)

            moved, ok = await self.move(payment, Status.PROCESSING, add_attempt)
            if not ok:
                return None  # settled meanwhile by another path: answer as it stands
            return await self._charge(moved, charge, built, ticket)
        return None

    async def _existing(
        self, pid: str, ticket: IdemTicket | None, status: int, *, recover: bool = False
    ) -> Reply:
        payment = await self.store.load_payment(pid)
        if payment is None:
            raise RuntimeError(f"index points at missing payment {pid}")
        if recover and payment.status in UNSETTLED:
            # The claim's owner died: ask the rail before anything else.
            payment = await self.check(payment, resend_if_missing=True)
        reply = Reply(status, payment.render())
        if ticket is not None:
            await self.store.idem_settle(ticket.shard, ticket.merchant_id, ticket.key,
                                         ticket.owner, reply.status, reply.body)
        return reply

    def charge_op(self, payment: Payment, attempt: Attempt | None = None) -> Charge:
        attempt = attempt or payment.rail.current
        return Charge(
            rail_order_no=attempt.rail_order_no, amount=payment.amount,
            currency=payment.currency, scene=attempt.scene or payment.scene,
            description=payment.description, payer=attempt.payer or payment.payer,
            metadata=payment.metadata,
            notify_url=f"{self.settings.server.base_url()}/v1/notify/{attempt.rail}",
        )

    # ----------------------------------------------------------------- transitions
    async def move(self, payment: Payment, status: Status, mutate: Mutation
                   ) -> tuple[Payment, bool]:
        """Compare-and-set `payment` into `status`. On a lost race, re-read and retry while
        the move is still allowed. Returns the payment as it now is, and whether we moved it.
        """
        current, moved, _ = await self._move(payment, status, mutate, None, None)
        return current, moved

    async def move_replying(self, payment: Payment, status: Status, mutate: Mutation,
                            ticket: IdemTicket | None, reply: ReplyBuilder
                            ) -> tuple[Payment, Reply]:
        """`move`, answering a request: `reply` builds its answer from the payment as it
        ends up, stored for the request's idempotency key in the same script."""
        current, _, answer = await self._move(payment, status, mutate, ticket, reply)
        assert answer is not None
        return current, answer

    async def _move(
        self, payment: Payment, status: Status, mutate: Mutation,
        ticket: IdemTicket | None, reply: ReplyBuilder | None,
    ) -> tuple[Payment, bool, Reply | None]:
        current = payment
        for _ in range(5):
            if status not in TRANSITIONS[current.status] or _reversing(current, status):
                break
            new = self._next(current, status, mutate)
            rendered = new.render()
            answer = reply(new, rendered) if reply else None
            finish = self._finish(current, new, rendered, ticket, answer)
            outcome = await self.store.transition(new, current.version,
                                                  current.status.value, finish)
            if outcome.kind == "ok":
                if new.status is not current.status:
                    self.metrics.payments.labels(new.rail.current.rail, new.status.value).inc()
                return new, True, answer
            reloaded = await self.store.load_payment(payment.id)
            if reloaded is None:
                # Only a node without our writes answers so: a failover in progress (a
                # restarted old master not yet demoted). Unavailable, not an error.
                raise StoreUnavailable(f"payment {payment.id} is missing from the store")
            current = reloaded
        answer = reply(current, current.render()) if reply else None
        if ticket is not None and answer is not None:
            await self.store.idem_settle(ticket.shard, ticket.merchant_id, ticket.key,
                                         ticket.owner, answer.status, answer.body)
        return current, False, answer

    def _next(self, current: Payment, status: Status, mutate: Mutation) -> Payment:
        state = RailState.unpack(current.rail.pack())
        mutate(state)
        return replace(current, status=status, version=current.version + 1,
                       updated_ms=max(now_ms(), current.updated_ms + 1), rail=state)

    def _finish(self, current: Payment, new: Payment, rendered: bytes,
                ticket: IdemTicket | None, answer: Reply | None) -> Finish:
        event_id, event_body = "", b""
        event_type = PAYMENT_EVENTS.get(new.status)
        if event_type and new.status is not current.status:
            event_id, event_body = event(keys.shard_of(new.id) or 0, event_type, rendered,
                                         new.updated_ms)
        answer = answer if ticket else None
        return Finish(
            due_action=self._due(new),
            event_id=event_id,
            event_body=event_body,
            webhook_url=new.notify_url or "",
            idem_key=ticket.key if ticket else "",
            idem_owner=ticket.owner if ticket else "",
            idem_status=answer.status if answer else 0,
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
        return str(now_ms() + int(delay * 1000))

    # ----------------------------------------------------------------- settling
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
        moved, _ = await self.move(payment, status, record_result(result))
        return moved

    async def check(self, payment: Payment, *, resend_if_missing: bool = False) -> Payment:
        """Query the rail about an unsettled payment and move it on; reverse or close it
        when the rules say it will not be paid. Used by the sweeper and by recovery."""
        attempt = payment.rail.current
        result: RailResult | None
        try:
            result = await self.rails.call(attempt.rail, Query(attempt.rail_order_no))
            if result.status is RailStatus.NOT_FOUND and resend_if_missing:
                # The rail never saw the charge: sending it again with the same
                # rail_order_no is safe, the rail dedupes on it.
                result = await self.rails.call(attempt.rail, self.charge_op(payment))
        except RailError as err:
            if err.definitive and resend_if_missing:
                moved, _ = await self.move(payment, Status.FAILED, record_error(err))
                return moved
            result = None
        status = status_of(result) if result else None
        if status is Status.REQUIRES_ACTION and _scene(payment) == "quickpay":
            # A payer-code charge "waiting for the buyer" is the payer confirming: the
            # confirm window and reversal apply, not QR expiry.
            status = Status.PROCESSING
        if status in (Status.SUCCEEDED, Status.FAILED, Status.CLOSED):
            assert result is not None
            return await self.apply(payment, result)
        age_s = (now_ms() - payment.created_ms) / 1000
        sweep = self.settings.sweeper
        if (result is not None and result.status is RailStatus.NOT_FOUND
                and payment.status is Status.PROCESSING and age_s > sweep.never_seen_s):
            # The rail still has no such order, long after the lost request: rails refuse
            # requests signed more than about five minutes earlier, so it can no longer
            # land. Nothing was charged; without this, a rail that cannot close an order
            # it never saw would leave the payment processing forever.
            moved, _ = await self.move(payment, Status.FAILED, record_error(RailError(
                "rail_never_received", "The rail never received the payment.",
                definitive=True)))
            return moved
        if payment.status is Status.REQUIRES_ACTION or status is Status.REQUIRES_ACTION:
            if age_s > sweep.order_expiry_s:
                return await self._end(payment, Close(attempt.rail_order_no))
        else:
            window = (sweep.confirm_window_s if _scene(payment) == "quickpay"
                      else sweep.unknown_window_s)
            if age_s > window:
                return await self._end(payment, Reverse(attempt.rail_order_no))
        def observe(state: RailState) -> None:
            if result is not None:
                record_result(result)(state)
            state.checks += 1

        moved, _ = await self.move(payment, status or payment.status, observe)
        return moved

    async def _end(self, payment: Payment, op: Close | Reverse) -> Payment:
        """Close or reverse at the rail; only the rail's confirmation closes the payment."""
        payment, marked = await self._mark_closing(payment)
        if not marked:
            return payment
        try:
            result = await self.rails.call(payment.rail.current.rail, op)
        except RailError as err:
            if err.definitive and isinstance(op, Reverse):
                return await self._reversal_refused(payment, err)
            log.warning("%s of %s failed (%s); will retry", type(op).__name__, payment.id,
                        err.code)
            moved, _ = await self.move(payment, payment.status, _count_check)
            return moved
        return await self.apply(payment, result, ours=True)

    async def _reversal_refused(self, payment: Payment, err: RailError) -> Payment:
        """The rail will not reverse (e.g. too late): whatever it holds stands. Clear the
        mark, so the next query settles the payment on what the rail says."""
        log.warning("reversal of %s refused (%s); settling on the rail's word", payment.id,
                    err.code)
        moved, _ = await self.move(payment, payment.status, _clear_closing)
        return moved

    async def _mark_closing(self, payment: Payment) -> tuple[Payment, bool]:
        """Record, before asking, that the router closes this order, so a "closed" learnt
        by any path (query, notification, the lost answer's retry) is known as ours."""
        if payment.rail.closing:
            return payment, True
        return await self.move(payment, payment.status, _mark_closing)

    # ----------------------------------------------------------------- hand-over
    async def hand_over(self, payment: Payment, rail: str, scene: str,
                        payer: dict[str, str], via: str) -> Reply:
        """Give an unpaid payment to another payer, to pay in their own wallet (a
        pay-for-me link): the current attempt is closed at its rail first — only the
        rail's confirmation counts, so the old order can no longer be paid — then a new
        attempt starts on `rail` in `scene` with its own rail_order_no."""
        if payment.status is not Status.REQUIRES_ACTION:
            raise invalid_state(f"The payment is {payment.status}; it cannot be handed over.")
        if not self.rails.has(rail):
            raise validation_error("wallet", f"No {rail} rail is configured here.")
        number = len(payment.rail.attempts) + 1
        attempt = Attempt(number, rail, rail_order_no(payment.id, number), scene=scene,
                          payer=payer, via=via)
        charge = self.charge_op(payment, attempt)
        try:
            built = self.rails.build(rail, charge)
        except RailError as err:
            raise validation_error(_param_in(err.message), err.message) from None
        await self._close_for_hand_over(payment)

        def add_attempt(state: RailState) -> None:
            state.attempts[-1].failure_code = "HANDED_OVER"
            state.attempts.append(attempt)
            state.action = None

        moved, ok = await self.move(payment, Status.PROCESSING, add_attempt)
        if not ok:
            raise invalid_state(f"The payment changed meanwhile; it is {moved.status}.")
        return await self._charge(moved, charge, built, None)

    async def _close_for_hand_over(self, payment: Payment) -> None:
        current = payment.rail.current
        try:
            result = await self.rails.call(current.rail, Close(current.rail_order_no))
        except RailError as err:
            if not err.definitive:
                raise RouterError(502, "adapter_error", "The rail's answer is unknown; the "
                                  "payment was not handed over. Retry later.") from None
            checked = await self.check(payment)  # e.g. paid meanwhile: learn it
            raise invalid_state(f"The rail refused to close the current order ({err.code}); "
                                f"the payment is {checked.status}.") from None
        if result.status is not RailStatus.CLOSED:
            moved = await self.apply(payment, result)
            raise invalid_state(f"The current order could not be closed; the payment is "
                                f"{moved.status}.")

    # ----------------------------------------------------------------- close
    async def close(self, payment: Payment) -> Reply:
        if payment.status is Status.CLOSED:
            return Reply.json(200, payment.to_json())
        if payment.status not in UNSETTLED:
            raise invalid_state(f"A {payment.status} payment cannot be closed.")
        payment, marked = await self._mark_closing(payment)
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
                    payment = await self._reversal_refused(payment, err)
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
