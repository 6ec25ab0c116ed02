"""Creating a payment: admission (idempotency, limits, the natural key) in one script,
the first charge, failover to the next rail after a refusal that proves nothing was
charged, and the re-drive of a charge whose answer never came.

Every rail call of an attempt carries the same `rail_order_no`, so repeating it can
never charge twice.
"""

from __future__ import annotations

import logging
from typing import Any, Final, final

from adapters.base import Charge, HttpRequest, RailError, RailErrorCode, RailResult
from router.clock import Clock
from router.domain import UNSETTLED, Attempt, Payment, RailState, Status
from router.errors import validation_error
from router.limits import LIMIT_NAMES, payment_specs, rail_spec
from router.merchants import Merchant
from router.ops.metrics import Metrics
from router.payments.charges import charge_of
from router.payments.mutations import (
    charge_unanswered,
    record_charge_answer,
    record_error,
    status_of,
)
from router.payments.numbers import rail_order_no
from router.payments.replies import (
    REPLAYED,
    IdemTicket,
    Reply,
    rail_refused_request,
    rail_unknown,
    refusal,
)
from router.payments.settle import Settler
from router.payments.transitions import Transitions
from router.promotions.campaign_holds import CampaignHolds, Holding
from router.rails.client import RailClient
from router.rails.instances import partner_rail
from router.settings import Settings
from router.store import keys
from router.store.outcomes import (
    Created,
    Exists,
    KeyInUse,
    KeyReused,
    Limited,
    OutTradeNoConflict,
    Replayed,
    TakenOver,
)
from router.store.store import Store
from router.validation import PaymentRequest

log = logging.getLogger("payrouter.payments")

# Refusals that prove the rail never took the payment, so another rail may: only a
# connection that was never made, unless a rail's configuration lists more
# (`failover_codes = [...]` in its [rails.*] table).
_DEFAULT_FAILOVER: Final = frozenset({RailErrorCode.UNREACHABLE.value})

Built = HttpRequest | RailResult


@final
class Creator:
    __slots__ = ("_failover_codes", "campaigns", "clock", "metrics", "rails", "settings",
                 "settler", "store", "transitions")

    def __init__(self, store: Store, transitions: Transitions, settler: Settler,
                 rails: RailClient, settings: Settings, metrics: Metrics,
                 clock: Clock) -> None:
        self.store = store
        self.transitions = transitions
        self.settler = settler
        self.rails = rails
        self.settings = settings
        self.metrics = metrics
        self.clock = clock
        self._failover_codes = {
            r.name: _DEFAULT_FAILOVER | frozenset(r.options.get("failover_codes", ()))
            for r in settings.rails
        }
        # Reserves the campaign rewards a payment earns (router/promotions/), when wired.
        self.campaigns: CampaignHolds | None = None

    async def create(
        self,
        merchant: Merchant,
        req: PaymentRequest,
        rail: str,
        routing: dict[str, Any],
        idem: tuple[str, str] | None,  # (Idempotency-Key, request hash)
        method: str | None = None,  # what `method` says when the request named none
    ) -> Reply:
        now = self.clock.now_ms()
        pid = keys.payment_id(merchant.shard, merchant.scope, req.out_trade_no)
        table = rail
        if merchant.acting_provider is not None:
            rail = await self._partner_rail(merchant, rail)
        payment = Payment(
            id=pid, merchant_id=merchant.id, amount=req.amount, currency=req.currency,
            out_trade_no=req.out_trade_no, scene=req.scene, method=req.method or method or rail,
            description=req.description, payer=req.payer, notify_url=req.notify_url,
            metadata=req.metadata, routing=routing, created_ms=now,
            status=Status.PROCESSING, version=1, updated_ms=now, refunded_amount=0,
            rail=RailState([Attempt(1, rail, rail_order_no(pid, 1))]),
            service_provider=merchant.acting_provider,
        )
        charge = self._charge_op(payment)
        try:
            # Built (and signed) before anything is written: a request the rail cannot
            # take is the caller's error, answered 422 with nothing recorded.
            built = self.rails.build(rail, charge)
        except RailError as err:
            raise rail_refused_request(err) from None
        payment, charge, built, holding = await self._rewarded(merchant, payment, charge, built,
                                                               req.coupons)
        owner = keys.new_id(self.clock, "own", merchant.shard)
        quota = rail_spec(self.settings, table)
        if quota is not None and (limited := await self.store.limits.admit([quota])):
            if holding is not None and self.campaigns is not None:
                await self.campaigns.let_go(holding)
            self.metrics.rate_limited.labels("rail").inc()
            raise refusal(limited, limit="rail")
        outcome = await self.store.payments.create(
            payment,
            shard=merchant.shard,
            fingerprint=req.fingerprint(),
            idem=(idem[0], idem[1], owner) if idem else None,
            lease_ms=int(self.settings.idempotency.lease_s * 1000),
            first_due_ms=now + int(self.settings.sweeper.first_check_s * 1000),
            limits=payment_specs(self.settings, merchant, req.payer),
        )
        if quota is not None and not isinstance(outcome, Created | TakenOver):
            # No call to the rail follows (refused, replayed, or an existing payment).
            await self.store.limits.give_back(quota)
        if (holding is not None and self.campaigns is not None
                and not isinstance(outcome, Created | TakenOver | Exists)):
            # Not made by this request: its rewards are not this request's to keep (an
            # existing payment's are the same reservation, held for it).
            await self.campaigns.let_go(holding)
        ticket = IdemTicket(merchant.shard, merchant.scope, idem[0], owner) if idem else None
        match outcome:
            case Created():
                return await self.charge(payment, charge, built, ticket)
            case Replayed(status, body):
                return Reply(status, body, REPLAYED)
            case Limited():
                which = LIMIT_NAMES[outcome.which]
                self.metrics.rate_limited.labels(which).inc()
                raise refusal(outcome, limit=which)
            case KeyInUse() | KeyReused() | OutTradeNoConflict():
                raise refusal(outcome)
            case Exists(existing_id):
                return await self._existing(existing_id, ticket, 200)
            case TakenOver(existing_id):
                return await self._existing(existing_id, ticket, 201, recover=True)

    async def _rewarded(self, merchant: Merchant, payment: Payment, charge: Charge,
                        built: Built, coupons: tuple[str, ...] = (),
                        ) -> tuple[Payment, Charge, Built, Holding | None]:
        """The payment with the campaign rewards it earns and the coupons it names
        reserved; one that gets none is unchanged, at no Redis call. A discount or a
        coupon changes what the rail charges."""
        holding = (await self.campaigns.hold(merchant, payment, coupons)
                   if self.campaigns else None)
        if holding is None or self.campaigns is None:
            return payment, charge, built, None
        rewarded = holding.payment
        if rewarded.charged_amount == payment.charged_amount:
            return rewarded, charge, built, holding
        charge = self._charge_op(rewarded)
        try:
            built = self.rails.build(rewarded.rail.current.rail, charge)
        except RailError as err:
            await self.campaigns.let_go(holding)
            raise rail_refused_request(err) from None
        return rewarded, charge, built, holding

    async def charge(self, payment: Payment, charge: Charge, built: Built | None,
                     ticket: IdemTicket | None) -> Reply:
        """Send the current attempt's charge and record what the rail says."""
        try:
            result = await self.rails.call(payment.rail.current.rail, charge, built)
        except RailError as err:
            return await self._charge_failed(payment, err, ticket)
        return await self._answered(payment, result, ticket)

    async def _answered(self, payment: Payment, result: RailResult,
                        ticket: IdemTicket | None) -> Reply:
        _, reply = await self.transitions.move_replying(
            payment, status_of(result) or Status.PROCESSING, record_charge_answer(result),
            ticket, lambda p, rendered: Reply(201, rendered))
        return reply

    async def _charge_failed(
        self, payment: Payment, err: RailError, ticket: IdemTicket | None
    ) -> Reply:
        if err.definitive:
            failed_over = await self._failover(payment, err, ticket)
            if failed_over is not None:
                return failed_over
            status, mutate = Status.FAILED, record_error(err)
        else:
            status, mutate = Status.PROCESSING, charge_unanswered
        unreachable = err.code == RailErrorCode.UNREACHABLE

        def reply(p: Payment, rendered: bytes) -> Reply:
            # A decline, or an unknown outcome that a notification or the sweeper has
            # already settled meanwhile: the payment itself is the answer.
            if (err.definitive and not unreachable) or p.status is not status:
                return Reply(201, rendered)
            # Unknown: a retry of this request re-sends the charge (`_redrive`).
            return Reply.error(rail_unknown(err, p.id, p.status.value),
                               provisional=not err.definitive)

        _, answer = await self.transitions.move_replying(payment, status, mutate, ticket, reply)
        return answer

    async def _failover(self, payment: Payment, err: RailError,
                        ticket: IdemTicket | None) -> Reply | None:
        """After a refusal that proves nothing was charged (the rail's failover codes),
        try the next candidate as a new attempt with its own rail_order_no. Never after
        an unknown outcome: that payment waits for the sweeper instead."""
        current = payment.rail.current
        if payment.service_provider is not None:
            return None  # the other rails are not the provider's: none may take it
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
            charge = self._charge_op(payment, attempt)
            try:
                built = self.rails.build(rail, charge)
            except RailError:
                continue  # this rail cannot take the payment as it is: the next may
            log.info("payment %s: %s refused by %s (%s); failing over to %s", payment.id,
                     current.rail_order_no, current.rail, err.code, rail)

            def add_attempt(state: RailState, attempt: Attempt = attempt) -> None:
                state.attempts[-1].failure_code = err.code
                state.attempts.append(attempt)

            moved, ok = await self.transitions.move(payment, Status.PROCESSING, add_attempt)
            if not ok:
                return None  # settled meanwhile by another path: answer as it stands
            return await self.charge(moved, charge, built, ticket)
        return None

    async def _existing(self, pid: str, ticket: IdemTicket | None, status: int, *,
                        recover: bool = False) -> Reply:
        payment = await self.store.payments.load(pid)
        if payment is None:
            raise RuntimeError(f"index points at missing payment {pid}")
        if payment.status in UNSETTLED and payment.rail.unanswered:
            return await self._redrive(payment, ticket)
        if recover and payment.status in UNSETTLED:
            # The claim's owner died: ask the rail before anything else.
            payment = await self.settler.check(payment, resend_if_missing=True)
        return await self._as_it_stands(payment, ticket, status)

    async def _redrive(self, payment: Payment, ticket: IdemTicket | None) -> Reply:
        """A retry of a create whose charge went unanswered: send the same attempt again
        (same rail_order_no: the rail dedupes it, so this never charges twice) and answer
        with what the rail says now, e.g. the QR code the lost answer carried."""
        try:
            result = await self.rails.call(payment.rail.current.rail, self._charge_op(payment))
        except RailError as err:
            if not err.definitive:
                return await self._charge_failed(payment, err, ticket)
            # A definitive refusal of a repeat (already paid, closed meanwhile...) says
            # nothing of the first send: only a query does.
            return await self._as_it_stands(await self.settler.check(payment), ticket, 200)
        return await self._answered(payment, result, ticket)

    async def _as_it_stands(self, payment: Payment, ticket: IdemTicket | None,
                            status: int) -> Reply:
        """The payment itself is the answer, stored for the request's key."""
        reply = Reply(status, payment.render())
        if ticket is not None:
            await self.store.idempotency.settle(ticket.shard, ticket.merchant_id, ticket.key,
                                                ticket.owner, reply.status, reply.body)
        return reply

    async def _partner_rail(self, merchant: Merchant, rail: str) -> str:
        """The partner-mode instance of the provider's `rail` for the sub-merchant it acts
        for (rails/instances.py): the name every later call of the payment uses."""
        assert merchant.acting_provider is not None
        name = partner_rail(rail, merchant.acting_provider, merchant.id)
        if await self.rails.resolve(name) is None:
            raise validation_error("method", f"The {rail} rail cannot act for this merchant.")
        return name

    def _charge_op(self, payment: Payment, attempt: Attempt | None = None) -> Charge:
        return charge_of(payment, self.settings.server.base_url(), attempt)
