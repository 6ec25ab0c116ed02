"""Payouts: money to a person's wallet or account, by a rail's merchant transfer.

Unknown is not failed: the rail-side number is the payout's id, so a payout whose answer
was lost is queried (or sent again, which the rail dedupes), never re-sent under a new
number. The sweeper works every payout still `processing`: a payout recorded by a grab
is first sent that way, so it goes out exactly once whatever crashes after the grab.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Final, final

from adapters.base import Notification, PayoutQuery, RailError, RailResult, RailStatus
from adapters.base import Payout as PayoutOp
from router.clock import Clock
from router.events import event
from router.ledger.entries import movement
from router.ops.metrics import Metrics
from router.rails.client import RailClient
from router.settings import Settings
from router.social.records import PAYOUT_EVENTS, Payout, PayoutState, PayoutStatus
from router.store import keys
from router.store.finish import Finish
from router.store.outcomes import Moved
from router.store.store import Store, StoreUnavailable

log = logging.getLogger("payrouter.payouts")

PayoutEnded = Callable[[Payout], Awaitable[None]]
_TRIES: Final = 5


@final
class PayoutSender:
    """Sends payouts, asks after them, and records what the rails say."""

    __slots__ = ("clock", "listeners", "metrics", "rails", "settings", "store")

    def __init__(self, store: Store, rails: RailClient, settings: Settings, metrics: Metrics,
                 clock: Clock) -> None:
        self.store = store
        self.rails = rails
        self.settings = settings
        self.metrics = metrics
        self.clock = clock
        self.listeners: list[PayoutEnded] = []  # told when a payout ends (red packets)

    def op(self, payout: Payout) -> PayoutOp:
        o = payout.order
        return PayoutOp(rail_payout_no=payout.rail_payout_no, amount=payout.amount,
                        currency=o.currency, payee=o.identity, remark=o.description[:32],
                        notify_url=f"{self.settings.server.base_url()}/v1/notify/{o.rail}",
                        name=o.name)

    async def send(self, payout: Payout) -> Payout:
        if not payout.state.sent and payout.order.source and not await self._payee_verified(
                payout):
            return await self._move(payout, PayoutStatus.FAILED, replace(
                payout.state, checks=payout.state.checks + 1,
                failure_code="real_name_required",
                failure_message="The payee's real name is no longer verified."))
        try:
            result = await self.rails.call(payout.order.rail, self.op(payout))
        except RailError as err:
            return await self._refused(payout, err)
        return await self.apply(payout, result, sent=True)

    async def _payee_verified(self, payout: Payout) -> bool:
        """A grab's payee passed the real-name gate through a cache of one second: read
        the user afresh before the money goes (a payout from the API was read afresh)."""
        user_id = payout.order.payee.get("user")
        if user_id is None:
            return True
        user = await self.store.users.load(payout.order.merchant_id, user_id)
        return user is not None and user.verified

    async def check(self, payout: Payout) -> Payout:
        """The sweeper's look at a payout in flight: send it if it never went out (or the
        rail never got it), else ask."""
        if payout.status is not PayoutStatus.PROCESSING:
            return payout
        if not payout.state.sent:
            return await self.send(payout)
        try:
            result = await self.rails.call(payout.order.rail,
                                           PayoutQuery(payout.rail_payout_no))
        except RailError:
            return await self._move(payout, PayoutStatus.PROCESSING, _counted(payout.state))
        if result.status is RailStatus.NOT_FOUND:
            return await self.send(payout)  # same number: the rail pays it at most once
        return await self.apply(payout, result)

    async def apply(self, payout: Payout, result: RailResult, *, sent: bool = False) -> Payout:
        """Record the rail's word on `payout`."""
        state = replace(payout.state, sent=payout.state.sent or sent,
                        checks=payout.state.checks + 1,
                        rail_reference=result.rail_reference or payout.state.rail_reference)
        match result.status:
            case RailStatus.SUCCEEDED:
                if result.amount is not None and result.amount != payout.amount:
                    log.error("payout %s: the rail reports %s paid, not %s; left processing",
                              payout.id, result.amount, payout.amount)
                    return await self._move(payout, PayoutStatus.PROCESSING, state)
                return await self._move(payout, PayoutStatus.SUCCEEDED, state)
            case RailStatus.FAILED | RailStatus.CLOSED:
                return await self._move(payout, PayoutStatus.FAILED, replace(
                    state, failure_code=result.failure_code or "payout_failed",
                    failure_message=result.failure_message))
            case RailStatus.NOT_FOUND if not sent:
                return await self._move(payout, PayoutStatus.PROCESSING, state)
            case _:
                return await self._move(payout, PayoutStatus.PROCESSING, state)

    async def on_notification(self, rail: str, note: Notification) -> bool:
        """A rail's verified word on a payout; False when it names none of ours."""
        number = note.rail_order_no
        payout = await self.store.payouts.load("po_" + number.removeprefix("po"))
        if payout is None or payout.order.rail != rail or payout.rail_payout_no != number:
            log.warning("a %s payout notification names no payout of ours", rail)
            return False
        await self.apply(payout, note.result)
        return True

    async def _refused(self, payout: Payout, err: RailError) -> Payout:
        if err.definitive:
            # This call moved nothing, but another send of the same number (another
            # process's, still in flight or sent before a crash) may have been taken, and
            # a rail refuses a repeat that differs from it, e.g. in its notify URL. Only
            # a rail that holds no payout under the number proves it failed.
            try:
                known = await self.rails.call(payout.order.rail,
                                              PayoutQuery(payout.rail_payout_no))
            except RailError:
                # Not even a query answers: nothing is proved either way yet.
                return await self._move(payout, PayoutStatus.PROCESSING,
                                        replace(_counted(payout.state), sent=True))
            if known.status is not RailStatus.NOT_FOUND:
                return await self.apply(payout, known, sent=True)
            # The rail said no and paid nothing.
            return await self._move(payout, PayoutStatus.FAILED, replace(
                payout.state, sent=True, checks=payout.state.checks + 1,
                failure_code=err.code, failure_message=err.message))
        # Unknown: it may have been paid. Only the rail's word settles it.
        return await self._move(payout, PayoutStatus.PROCESSING,
                                replace(_counted(payout.state), sent=True))

    async def _move(self, payout: Payout, status: PayoutStatus, state: PayoutState) -> Payout:
        current = payout
        for _ in range(_TRIES):
            if current.status is not PayoutStatus.PROCESSING:
                if current.status is PayoutStatus.FAILED and status is PayoutStatus.SUCCEEDED:
                    # Should never happen: only a rail with no payout under the number
                    # fails one. Loud, for an operator to settle by hand.
                    log.error("payout %s: the rail reports it paid, but it was failed",
                              payout.id)
                    self.metrics.payouts.labels(current.order.rail, "paid_after_failed").inc()
                return current  # settled by another path (a notification, a sweeper)
            now = max(self.clock.now_ms(), current.updated_ms + 1)
            new = replace(current, status=status, version=current.version + 1,
                          updated_ms=now, state=state)
            outcome = await self.store.payouts.transition(
                new, current.version, current.status.value, self._finish(new))
            if isinstance(outcome, Moved):
                if status is not PayoutStatus.PROCESSING:
                    self.metrics.payouts.labels(new.order.rail, status.value).inc()
                    await self._ended(new)
                return new
            reloaded = await self.store.payouts.load(payout.id)
            if reloaded is None:
                raise StoreUnavailable(f"payout {payout.id} is missing from the store")
            current = reloaded
        return current

    def _finish(self, new: Payout) -> Finish:
        event_type = PAYOUT_EVENTS.get(new.status)
        if event_type is None:
            delay = min(self.settings.sweeper.query_every_s * 2 ** min(new.state.checks, 6),
                        600.0)
            return Finish(due_action=str(self.clock.now_ms() + int(delay * 1000)))
        event_id, body = event(self.clock, keys.shard_in(new.id), event_type, new.render(),
                               new.updated_ms)
        journal = b""
        if new.status is PayoutStatus.SUCCEEDED:
            journal = movement("payout", new.id, new.amount, new.order.currency,
                               new.updated_ms, new.order.rail, new.rail_payout_no)
        return Finish(due_action="-", event_id=event_id, event_body=body, journal=journal)

    async def _ended(self, payout: Payout) -> None:
        for listener in self.listeners:
            try:
                await listener(payout)
            except Exception:
                # The packet's own worker looks again later: nothing is lost.
                log.exception("a listener of payout %s failed", payout.id)


def _counted(state: PayoutState) -> PayoutState:
    return replace(state, checks=state.checks + 1)
