"""Pre-authorisations: a hold on the payer's funds (Alipay fund authorisation) or, for a
payer whose credit score is high enough, a promise that holds nothing (`deposit_free`:
Alipay credit, WeChat Pay Score); later captured once (authorization_capture.py), voided,
or released at expiry (authorization_worker.py).

Unknown is not failed: the rail-side number is derived from the authorization's id, which
is derived from (merchant, out_auth_no), so a retried create, a lost answer or a crash
can never freeze twice. An authorization whose answer was lost stays `processing` until
the rail's query or notification settles it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from typing import Final, final

import orjson

from adapters.base import RailError, RailResult, RailStatus, Scene
from adapters.commerce_ops import AuthorizationQuery, Authorize
from router.api.schemas_authorizations import AuthorizationCreate
from router.clock import Clock
from router.commerce.authorization_records import (
    AUTH_EVENTS,
    ENDED,
    PENDING,
    AuthOrder,
    Authorization,
    AuthState,
    AuthStatus,
)
from router.errors import RouterError, not_found, validation_error
from router.events import event
from router.merchants import Merchant
from router.payments.replies import Reply, rail_refused_request
from router.rails.client import RailClient
from router.routing import Router
from router.settings import Settings
from router.social.payout_create import rail_for
from router.store import keys
from router.store.finish import Finish
from router.store.outcomes import Existing, Moved, NaturalKeyConflict, Recorded
from router.store.store import Store, StoreUnavailable
from router.validation import CURRENCIES, digest

log = logging.getLogger("payrouter.authorizations")

StateChange = Callable[[AuthState], AuthState]
_TRIES: Final = 5
S = AuthStatus
# Every move a compare-and-set may make (capturing is entered by auth_capture.lua only).
MOVES: Final[dict[AuthStatus, frozenset[AuthStatus]]] = {
    S.PROCESSING: frozenset({S.PROCESSING, S.REQUIRES_ACTION, S.AUTHORIZED, S.FAILED,
                             S.RELEASING}),
    S.REQUIRES_ACTION: frozenset({S.REQUIRES_ACTION, S.AUTHORIZED, S.FAILED, S.RELEASING}),
    S.AUTHORIZED: frozenset({S.RELEASING, S.EXPIRED}),
    S.CAPTURING: frozenset({S.CAPTURING, S.CAPTURED, S.AUTHORIZED}),
    S.RELEASING: frozenset({S.RELEASING, S.VOIDED, S.EXPIRED}),
    **{ended: frozenset() for ended in ENDED},
}


def keep(state: AuthState) -> AuthState:
    return state


def counted(state: AuthState) -> AuthState:
    return state.counted()


@final
class Authorizations:
    """Creates authorizations and settles the holds on the rail's word."""

    __slots__ = ("clock", "rails", "router", "settings", "store")

    def __init__(self, store: Store, rails: RailClient, router: Router, settings: Settings,
                 clock: Clock) -> None:
        self.store = store
        self.rails = rails
        self.router = router
        self.settings = settings
        self.clock = clock

    # ----------------------------------------------------------------- create
    def op(self, auth: Authorization) -> Authorize:
        o = auth.order
        return Authorize(
            rail_auth_no=auth.rail_auth_no, amount=o.amount, currency=o.currency,
            scene=o.scene, description=o.description, payer=o.payer,
            notify_url=f"{self.settings.server.base_url()}/v1/notify/{o.rail}",
            min_score=o.min_score, expires_s=max(1, (o.expires_ms - o.created_ms) // 1000))

    async def create(self, merchant: Merchant, body: AuthorizationCreate) -> Reply:
        if body.currency not in CURRENCIES:
            raise validation_error("currency", "Unknown currency; use an ISO 4217 code like CNY.")
        rail = rail_for(self.rails, self.router, body.method)
        if rail is None:
            raise validation_error("method", f"No {body.method} rail is configured.")
        now = self.clock.now_ms()
        aid = keys.authorization_id(merchant.shard, merchant.id, body.out_auth_no)
        min_score = body.deposit_free.min_score if body.deposit_free else None
        order = AuthOrder(merchant.id, body.out_auth_no, body.amount, body.currency,
                          body.method, rail, body.scene.value, dict(body.payer or {}),
                          body.description, min_score, now, now + body.expires_in_s * 1000)
        auth = Authorization(aid, order, S.PROCESSING, 1, now, AuthState())
        try:
            self.rails.build(rail, self.op(auth))  # refusals before anything is written
        except RailError as err:
            raise rail_refused_request(_api_param(err)) from None
        fingerprint = digest(orjson.dumps([
            body.amount, body.currency, body.method, body.scene.value, order.payer,
            body.description, min_score, body.expires_in_s]))[:16]
        first_due = now + int(self.settings.sweeper.first_check_s * 1000)
        match await self.store.authorizations.create(auth, fingerprint, first_due):
            case Recorded():
                return Reply(201, (await self.send(auth)).render())
            case Existing():
                existing = await self.load(aid)
                if existing.status is S.PROCESSING:
                    existing = await self.check(existing)  # a retry asks the rail again
                return Reply(200, existing.render())
            case NaturalKeyConflict():
                raise RouterError(409, "out_auth_no_used",
                                  "out_auth_no was already used with different parameters.",
                                  param="out_auth_no")

    async def send(self, auth: Authorization, *, repeat: bool = False) -> Authorization:
        """Ask the rail for the hold (`repeat`: again, under the same number, which the
        rail holds at most once and answers with the hold as it stands)."""
        try:
            result = await self.rails.call(auth.order.rail, self.op(auth))
        except RailError as err:
            if err.definitive and not repeat:  # the rail said no and holds nothing
                return await self.move(auth, S.FAILED, _failure(err.code, err.message))
            # Unknown, or a repeat refused: that says nothing of the first request.
            return await self.move(auth, auth.status, counted)
        return await self.apply(auth, result)

    # ----------------------------------------------------------------- the rail's word
    async def apply(self, auth: Authorization, result: RailResult) -> Authorization:
        """Apply the rail's word on a hold being asked for (an answer, a query, a
        notification); a capture's or a release's is their modules' to apply."""
        if auth.status not in PENDING:
            if auth.status is S.AUTHORIZED and result.status is RailStatus.CLOSED:
                return await self.move(auth, S.EXPIRED, keep)  # the rail ended the hold
            return auth

        def seen(state: AuthState) -> AuthState:
            return replace(state.counted(),
                           rail_reference=result.rail_reference or state.rail_reference,
                           action=result.action.to_json() if result.action else state.action)

        match result.status:
            case RailStatus.SUCCEEDED:
                free = bool(result.deposit_free)
                return await self.move(auth, S.AUTHORIZED,
                                       lambda st: replace(seen(st), deposit_free=free))
            case RailStatus.REQUIRES_ACTION if auth.order.scene == Scene.QUICKPAY:
                # A code scanned in person: the payer confirms on the phone, there is
                # nothing to show, so it stays processing (as a quick-pay payment does).
                return await self.move(auth, auth.status, seen)
            case RailStatus.REQUIRES_ACTION:
                return await self.move(auth, S.REQUIRES_ACTION, seen)
            case RailStatus.FAILED | RailStatus.CLOSED:
                code = result.failure_code or "authorization_failed"
                message = result.failure_message or "The rail did not authorise the hold."
                return await self.move(auth, S.FAILED,
                                       lambda st: _failure(code, message)(seen(st)))
            case RailStatus.PROCESSING | RailStatus.NOT_FOUND:
                return await self.move(auth, auth.status, seen)

    async def check(self, auth: Authorization) -> Authorization:
        """Ask the rail about a hold whose outcome is not known; one it never received is
        asked for again under the same number."""
        try:
            result = await self.rails.call(auth.order.rail,
                                           AuthorizationQuery(auth.rail_auth_no))
        except RailError:
            return await self.move(auth, auth.status, counted)
        if result.status is RailStatus.NOT_FOUND and auth.status is S.PROCESSING:
            return await self.send(auth)  # never received: this is the first request
        if (result.status is RailStatus.REQUIRES_ACTION and auth.order.scene != Scene.QUICKPAY
                and not (result.action or auth.state.action)):
            # Waiting for the payer, but what the payer is shown came only with the lost
            # answer: the same request again brings it back.
            return await self.send(auth, repeat=True)
        return await self.apply(auth, result)

    # ----------------------------------------------------------------- records
    async def load(self, auth_id: str) -> Authorization:
        auth = await self.store.authorizations.load(auth_id)
        if auth is None:
            raise StoreUnavailable(f"authorization {auth_id} is missing from the store")
        return auth

    async def owned(self, merchant: Merchant, auth_id: str) -> Authorization:
        auth = await self.store.authorizations.load(auth_id)
        if auth is None or auth.order.merchant_id != merchant.id:
            raise not_found("authorization")
        return auth

    async def move(self, auth: Authorization, status: AuthStatus,
                   change: StateChange) -> Authorization:
        """Compare-and-set `auth` into `status`; a lost race re-reads and tries again
        while the move is still allowed. Returns the authorization as it now is."""
        current = auth
        for _ in range(_TRIES):
            if status not in MOVES[current.status]:
                return current  # settled by another path (a notification, the worker)
            now = max(self.clock.now_ms(), current.updated_ms + 1)
            new = replace(current, status=status, version=current.version + 1,
                          updated_ms=now, state=change(current.state))
            outcome = await self.store.authorizations.transition(
                new, current.version, current.status.value, self._finish(current, new))
            if isinstance(outcome, Moved):
                return new
            current = await self.load(auth.id)
        return current

    def _finish(self, current: Authorization, new: Authorization) -> Finish:
        event_type = AUTH_EVENTS.get(new.status)
        if new.status is current.status or (current.status, new.status) == (S.CAPTURING,
                                                                             S.AUTHORIZED):
            event_type = None  # a capture that failed leaves the hold as it was
        due = self.due_ms(new)
        due_action = "-" if due is None else str(due)
        if event_type is None:
            return Finish(due_action=due_action)
        event_id, body = event(self.clock, keys.shard_in(new.id), event_type, new.render(),
                               new.updated_ms)
        return Finish(due_action=due_action, event_id=event_id, event_body=body)

    def due_ms(self, auth: Authorization) -> int | None:
        """When the worker should next look at `auth` (None: never again)."""
        sweep = self.settings.sweeper
        backoff = min(sweep.query_every_s * 2 ** min(auth.state.checks, 6), 600.0)
        now = self.clock.now_ms()
        match auth.status:
            case S.AUTHORIZED:
                return auth.order.expires_ms
            case S.REQUIRES_ACTION:
                wait = min(sweep.first_check_s * 2 ** min(auth.state.checks, 10), 600.0)
                return min(now + int(wait * 1000), auth.order.expires_ms)
            case S.PROCESSING | S.CAPTURING | S.RELEASING:
                return now + int(backoff * 1000)
            case _:
                return None


def _api_param(err: RailError) -> RailError:
    """The adapter names the operation's field; the API's is under `deposit_free`."""
    if err.param != "min_score":
        return err
    return RailError(err.code, err.message, definitive=err.definitive,
                     param="deposit_free.min_score")


def _failure(code: str, message: str) -> StateChange:
    def change(state: AuthState) -> AuthState:
        return replace(state, failure_code=code, failure_message=message)
    return change
