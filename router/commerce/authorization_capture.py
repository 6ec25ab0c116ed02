"""Capturing an authorization: its one capture becomes a normal payment (refunds and
everything else work on it), and the rest of the hold is released with it.

The capturable amount is checked and reserved by one script on the authorization
(auth_capture.lua), so two captures, or a capture and the expiry, never both take the
hold. The payment is then recorded through the payments' store (processing), and the
`Capture` is sent with the payment's rail_order_no, so a repeat never captures twice. An
unknown outcome leaves the payment processing and the authorization `capturing`: the
authorization's worker asks the rail and settles both. The payment carries no sweeper
entry of its own, so the payments' rules for unpaid orders (close, reverse) never touch it.
"""

from __future__ import annotations

import logging
from typing import Final, final

import orjson

from adapters.base import Query, RailError, RailResult, RailStatus, Scene
from adapters.commerce_ops import Capture as CaptureOp
from router.api.schemas_authorizations import CaptureCreate
from router.clock import Clock
from router.commerce.authorization_records import Authorization, AuthStatus, Capture
from router.commerce.authorizations import Authorizations, counted, keep
from router.domain import UNSETTLED, Attempt, Payment, RailState, Status
from router.errors import RouterError, invalid_state, not_found, validation_error
from router.merchants import Merchant
from router.payments import Payments
from router.payments.mutations import record_error
from router.payments.numbers import rail_order_no
from router.payments.replies import Reply, rail_refused_request
from router.settings import Settings
from router.store import keys
from router.store.authorizations import CaptureRefusal, NotCapturable, OverHeld, Reserved
from router.store.limits import LimitSpec
from router.store.outcomes import OutTradeNoConflict
from router.store.store import Store
from router.validation import digest

log = logging.getLogger("payrouter.authorizations")

PAID: Final = frozenset({Status.SUCCEEDED, Status.PARTIALLY_REFUNDED, Status.REFUNDED})
_SETTLING: Final = frozenset({RailStatus.SUCCEEDED, RailStatus.FAILED, RailStatus.CLOSED})
# The payment of a capture is already past the merchant's limits (the capture was); an
# empty key stands for the payment's own (same slot).
_NO_LIMIT: Final = LimitSpec("", 0, 0)
# How long before the payments' own sweeper would look at a capture's payment, in case
# the step that removes its entry never ran (the authorization's worker settles it).
_PAYMENT_BACKSTOP_MS: Final = 86_400_000


@final
class Captures:
    __slots__ = ("authorizations", "clock", "payments", "settings", "store")

    def __init__(self, store: Store, authorizations: Authorizations, payments: Payments,
                 settings: Settings, clock: Clock) -> None:
        self.store = store
        self.authorizations = authorizations
        self.payments = payments
        self.settings = settings
        self.clock = clock

    async def capture(self, merchant: Merchant, auth: Authorization,
                      body: CaptureCreate) -> Reply:
        pid = keys.payment_id(merchant.shard, merchant.id, body.out_trade_no)
        existing = await self.store.payments.load(pid)
        if existing is not None:
            if existing.metadata.get("authorization") != auth.id:
                raise _trade_no_used()
            if existing.status in (Status.FAILED, Status.CLOSED):
                # That capture ended unpaid (a retry learns it); a new one needs a new number.
                return Reply(200, existing.render())
        capture = Capture(body.amount, pid, body.out_trade_no)
        if auth.status is AuthStatus.AUTHORIZED:
            if body.amount > auth.order.amount:
                raise _over(auth.order.amount)
            try:  # a capture the rail cannot take is refused before anything is written
                self.authorizations.rails.build(
                    auth.order.rail, self.op(auth, capture, self._payment(auth, capture, body)))
            except RailError as err:
                raise rail_refused_request(err) from None
        now = self.clock.now_ms()
        due = now + int(self.settings.sweeper.first_check_s * 1000)
        match await self.store.authorizations.reserve_capture(auth.id, capture, now, due):
            case OverHeld(held):
                raise _over(held)
            case NotCapturable(status):
                raise invalid_state(f"A {status} authorization cannot be captured"
                                    + (" again." if status in (AuthStatus.CAPTURING,
                                                               AuthStatus.CAPTURED) else "."))
            case CaptureRefusal.EXPIRED:
                raise invalid_state("The authorization has expired.")
            case CaptureRefusal.MISSING:
                raise not_found("authorization")
            case Reserved(again):
                pass
        auth = await self.authorizations.load(auth.id)
        payment = await self.payment_of(auth, body.description)
        if payment is None:
            await self.authorizations.move(auth, AuthStatus.AUTHORIZED, keep)  # undone
            raise _trade_no_used()
        if again:  # this capture retried: the rail is asked, never told again blindly
            if payment.status in UNSETTLED:
                await self.check(auth)
            else:
                await self.settle(auth, payment)
            payment = await self.store.payments.load(payment.id) or payment
            return Reply(200, payment.render(), provisional=payment.status in UNSETTLED)
        payment = await self._send(auth, payment)
        return Reply(201, payment.render(), provisional=payment.status in UNSETTLED)

    def op(self, auth: Authorization, capture: Capture, payment: Payment) -> CaptureOp:
        return CaptureOp(rail_auth_no=auth.rail_auth_no,
                         rail_reference=auth.state.rail_reference or "",
                         rail_order_no=payment.rail.current.rail_order_no,
                         amount=capture.amount, currency=auth.order.currency,
                         description=payment.description, final=True)

    async def payment_of(self, auth: Authorization,
                         description: str | None = None) -> Payment | None:
        """The capture's payment, recorded through the payments' store if it is not yet
        (its id comes from out_trade_no, so a retry or the worker finds the same one);
        None when out_trade_no belongs to another payment."""
        capture = auth.capture
        assert capture is not None
        if (found := await self.store.payments.load(capture.payment_id)) is not None:
            return found if found.metadata.get("authorization") == auth.id else None
        payment = self._payment(auth, capture, None, description)
        outcome = await self.store.payments.create(
            payment, shard=keys.shard_in(payment.id),
            fingerprint=digest(orjson.dumps([auth.id, capture.amount]))[:16], idem=None,
            lease_ms=0, first_due_ms=payment.created_ms + _PAYMENT_BACKSTOP_MS,
            limits=(_NO_LIMIT, _NO_LIMIT))
        if isinstance(outcome, OutTradeNoConflict):
            return None
        await self.store.due.reschedule(keys.shard_in(payment.id), f"p:{payment.id}", None)
        return await self.store.payments.load(payment.id)

    async def _send(self, auth: Authorization, payment: Payment) -> Payment:
        capture = auth.capture
        assert capture is not None
        try:
            result = await self.authorizations.rails.call(auth.order.rail,
                                                          self.op(auth, capture, payment))
        except RailError as err:
            if not err.definitive:
                return payment  # unknown: the worker asks the rail
            moved, _ = await self.payments.transitions.move(payment, Status.FAILED,
                                                            record_error(err))
            await self.settle(auth, moved)
            return moved
        return await self._apply(auth, payment, result)

    async def _apply(self, auth: Authorization, payment: Payment,
                     result: RailResult) -> Payment:
        if result.status in _SETTLING:
            payment = await self.payments.settler.apply(payment, result)
            await self.settle(auth, payment)
        return payment

    async def settle(self, auth: Authorization, payment: Payment) -> Authorization:
        """End a capture on its payment's status: paid → captured; failed or closed → the
        hold stands as it was (authorized)."""
        if (auth.status is not AuthStatus.CAPTURING or auth.capture is None
                or auth.capture.payment_id != payment.id):
            return auth
        if payment.status in PAID:
            return await self.authorizations.move(auth, AuthStatus.CAPTURED, keep)
        if payment.status in (Status.FAILED, Status.CLOSED):
            return await self.authorizations.move(auth, AuthStatus.AUTHORIZED, keep)
        return auth

    async def payment_settled(self, payment: Payment) -> None:
        """A payment left processing by any path (a notification...): if it is a capture,
        end the capture."""
        auth_id = payment.metadata.get("authorization")
        auth = await self.store.authorizations.load(auth_id) if auth_id else None
        if auth is not None:
            await self.settle(auth, payment)

    async def check(self, auth: Authorization) -> Authorization:
        """The worker's look at a capture in flight: its payment's order is queried at the
        rail; one the query does not settle (never received, still collecting, or a rail
        that cannot tell) is captured again under the same number, which the rail
        captures at most once and answers with where the capture stands."""
        payment = await self.payment_of(auth)
        if payment is None:
            log.error("capture of %s: out_trade_no taken by another payment", auth.id)
            return await self.authorizations.move(auth, AuthStatus.AUTHORIZED, keep)
        if payment.status not in UNSETTLED:
            return await self.settle(auth, payment)
        rail = auth.order.rail
        result: RailResult | None
        try:
            result = await self.authorizations.rails.call(
                rail, Query(payment.rail.current.rail_order_no))
        except RailError:
            result = None
        if result is None or result.status not in _SETTLING:
            assert auth.capture is not None
            try:
                result = await self.authorizations.rails.call(
                    rail, self.op(auth, auth.capture, payment))
            except RailError:
                result = None  # a refused repeat says nothing of the first capture
        if result is not None:
            payment = await self._apply(auth, payment, result)
        if payment.status not in UNSETTLED:
            return await self.authorizations.load(auth.id)
        return await self.authorizations.move(auth, AuthStatus.CAPTURING, counted)

    def _payment(self, auth: Authorization, capture: Capture, body: CaptureCreate | None,
                 description: str | None = None) -> Payment:
        o = auth.order
        now = self.clock.now_ms()
        pid = capture.payment_id
        return Payment(
            id=pid, merchant_id=o.merchant_id, amount=capture.amount, currency=o.currency,
            out_trade_no=capture.out_trade_no, scene=Scene(o.scene), method=o.method,
            description=(body.description if body else description) or o.description,
            payer=o.payer, notify_url=None, metadata={"authorization": auth.id},
            routing={"chosen": o.rail, "candidates": [o.rail],
                     "reason": "the rail holding the authorization"},
            created_ms=now, status=Status.PROCESSING, version=1, updated_ms=now,
            refunded_amount=0, rail=RailState([Attempt(1, o.rail, rail_order_no(pid, 1))]))


def _over(held: int) -> RouterError:
    return validation_error("amount", f"The capture exceeds the amount held ({held}).")


def _trade_no_used() -> RouterError:
    return RouterError(409, "out_trade_no_used",
                       "out_trade_no was already used by another payment.", param="out_trade_no")
