"""Profit sharing: part of a paid payment shared with receivers (WeChat
`/v3/profitsharing/orders`, Alipay `alipay.trade.order.settle`), never above the
payment's ratio cap.

The cap holds under any concurrency because the split is reserved against the payment
in one script (split_create.lua) before the rail is asked, like a refund. A definitive
refusal releases the reservation; an unknown answer leaves the split `processing` with
a sweeper entry (`sp:<id>`), and only the rail's word settles it. The rail-side number
is derived from the split, so a retry never shares twice.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Final, final

import orjson

from adapters.base import RailError, RailResult, RailStatus
from adapters.commerce_ops import Split as SplitOp
from adapters.commerce_ops import SplitQuery, SplitReceiver
from router.api.schemas_partners import SplitCreate
from router.clock import Clock
from router.commerce.providers import Providers
from router.commerce.split_receivers import ReceiverBook
from router.commerce.split_records import (
    DEFAULT_MAX_SPLIT_BP,
    SPLIT_EVENTS,
    Split,
    SplitOrder,
    SplitState,
    SplitStatus,
)
from router.domain import Payment, Status
from router.errors import RouterError, invalid_state, not_found
from router.events import event
from router.ledger.entries import movement
from router.payments.replies import Reply, rail_refused_request
from router.rails.client import RailClient
from router.settings import Settings
from router.store import keys
from router.store.finish import Finish
from router.store.outcomes import Existing, Moved, NaturalKeyConflict, PaymentMissing, Recorded
from router.store.splits import CapExceeded, NotSplittable
from router.store.store import Store, StoreUnavailable
from router.validation import digest

log = logging.getLogger("payrouter.splits")
_TRIES: Final = 5
_PAID: Final = frozenset({Status.SUCCEEDED, Status.PARTIALLY_REFUNDED})


@final
class Splits:
    __slots__ = ("clock", "providers", "rails", "receivers", "settings", "store")

    def __init__(self, store: Store, rails: RailClient, providers: Providers,
                 receivers: ReceiverBook, settings: Settings, clock: Clock) -> None:
        self.store = store
        self.rails = rails
        self.providers = providers
        self.receivers = receivers
        self.settings = settings
        self.clock = clock

    async def create(self, payment: Payment, body: SplitCreate) -> Reply:
        if payment.status not in _PAID or not payment.rail.rail_reference:
            raise invalid_state(f"Only a paid payment can be shared; this one is "
                                f"{payment.status}.")
        shares = await self.receivers.resolve(payment, body)
        now = self.clock.now_ms()
        attempt = payment.rail.current
        sid = keys.child_id("spl", payment.id, body.out_split_no)
        order = SplitOrder(payment.id, payment.merchant_id, payment.service_provider,
                           body.out_split_no, payment.currency, attempt.rail,
                           attempt.rail_order_no, payment.rail.rail_reference, shares, now,
                           payment.notify_url)
        split = Split(sid, order, sum(s.amount for s in shares), SplitStatus.PROCESSING, 1,
                      now, SplitState())
        try:
            await self.rails.resolve(attempt.rail)
            self.rails.build(attempt.rail, self.op(split))  # refused before anything is written
        except RailError as err:
            raise rail_refused_request(err) from None
        fingerprint = digest(orjson.dumps([[s.type, s.id, s.amount, s.description]
                                           for s in shares]))
        first_due = now + int(self.settings.sweeper.first_check_s * 1000)
        match await self.store.splits.create(split, fingerprint, first_due,
                                             await self._cap_bp(payment)):
            case Recorded():
                return Reply(201, (await self.send(split)).render())
            case Existing():
                existing = await self.store.splits.load(sid)
                if existing is None:
                    raise StoreUnavailable(f"split {sid} is missing from the store")
                return Reply(200, existing.render())
            case NaturalKeyConflict():
                raise RouterError(409, "out_split_no_used",
                                  "out_split_no was already used with different receivers.",
                                  param="out_split_no")
            case PaymentMissing():
                raise not_found("payment")
            case NotSplittable(status):
                raise invalid_state(f"Only a paid payment can be shared; this one is {status}.")
            case CapExceeded(room):
                raise RouterError(422, "split_exceeds_cap", (
                    f"The receivers' amounts would take the payment's shared money above its "
                    f"ratio cap; at most {room} can still be shared."), param="receivers")

    def op(self, split: Split) -> SplitOp:
        o = split.order
        return SplitOp(rail_order_no=o.rail_order_no, rail_reference=o.rail_reference,
                       rail_split_no=split.rail_split_no,
                       receivers=tuple(SplitReceiver(s.kind, s.account, s.amount, s.description)
                                       for s in o.shares))

    async def send(self, split: Split) -> Split:
        try:
            result = await self.rails.call(split.order.rail, self.op(split))
        except RailError as err:
            if err.definitive:  # the rail said no and shared nothing: the cap is freed
                return await self._move(split, SplitStatus.FAILED, replace(
                    split.state, sent=True, checks=split.state.checks + 1,
                    failure_code=err.code, failure_message=err.message))
            return await self._move(split, SplitStatus.PROCESSING, replace(
                split.state, sent=True, checks=split.state.checks + 1))
        return await self.apply(split, result, sent=True)

    async def check(self, split_id: str) -> None:
        """The sweeper's look at a split in flight: send it if it never went out (or the
        rail never got it), else ask."""
        split = await self.store.splits.load(split_id)
        if split is None or split.status is not SplitStatus.PROCESSING:
            await self.store.due.reschedule(keys.shard_in(split_id), f"sp:{split_id}", None)
            return
        if not split.state.sent:
            await self.send(split)
            return
        o = split.order
        try:
            result = await self.rails.call(o.rail, SplitQuery(o.rail_order_no, o.rail_reference,
                                                              split.rail_split_no))
        except RailError as err:
            log.info("split query for %s failed (%s); will retry", split.id, err.code)
            await self._move(split, SplitStatus.PROCESSING,
                             replace(split.state, checks=split.state.checks + 1))
            return
        if result.status is RailStatus.NOT_FOUND:
            await self.send(split)  # same number: the rail shares it at most once
            return
        await self.apply(split, result)

    async def apply(self, split: Split, result: RailResult, *, sent: bool = False) -> Split:
        state = replace(split.state, sent=split.state.sent or sent,
                        checks=split.state.checks + 1,
                        rail_reference=result.rail_reference or split.state.rail_reference)
        match result.status:
            case RailStatus.SUCCEEDED:  # perhaps not to every receiver (`unshared`)
                return await self._move(split, SplitStatus.SUCCEEDED, state,
                                        frozenset(result.unshared))
            case RailStatus.FAILED | RailStatus.CLOSED:
                return await self._move(split, SplitStatus.FAILED, replace(
                    state, failure_code=result.failure_code or "split_failed",
                    failure_message=result.failure_message))
            case _:
                return await self._move(split, SplitStatus.PROCESSING, state)

    async def _cap_bp(self, payment: Payment) -> int:
        """The payment's ratio cap: its sub-merchant's, else the default."""
        if payment.service_provider is None:
            return DEFAULT_MAX_SPLIT_BP
        info = await self.providers.sub_merchant(payment.merchant_id)
        return info.max_split_bp if info is not None else DEFAULT_MAX_SPLIT_BP

    async def _move(self, split: Split, status: SplitStatus, state: SplitState,
                    unshared: frozenset[str] = frozenset()) -> Split:
        """A split that succeeds shares what its receivers got: one whose account the rail
        closed got nothing, so its amount is neither shared (nor journaled) nor
        returnable, and goes back to the cap (split_transition.lua)."""
        current = split
        for _ in range(_TRIES):
            if current.status is not SplitStatus.PROCESSING:
                return current  # settled by another path
            now = max(self.clock.now_ms(), current.updated_ms + 1)
            paid = [(i, s) for i, s in enumerate(current.order.shares)
                    if s.account not in unshared]
            new = replace(current, status=status, version=current.version + 1,
                          updated_ms=now, state=state)
            shares = ([(new.order.share_name(new.id, i), s.amount) for i, s in paid]
                      if status is SplitStatus.SUCCEEDED else [])
            if shares:
                new = replace(new, amount=sum(amount for _, amount in shares))
            outcome = await self.store.splits.transition(
                new, current.version, current.status.value, self._finish(new), shares)
            if isinstance(outcome, Moved):
                return new
            reloaded = await self.store.splits.load(split.id)
            if reloaded is None:
                raise StoreUnavailable(f"split {split.id} is missing from the store")
            current = reloaded
        return current

    def _finish(self, new: Split) -> Finish:
        event_type = SPLIT_EVENTS.get(new.status)
        if event_type is None:
            delay = min(self.settings.sweeper.query_every_s * 2 ** min(new.state.checks, 6),
                        600.0)
            return Finish(due_action=str(self.clock.now_ms() + int(delay * 1000)))
        event_id, body = event(self.clock, keys.shard_in(new.id), event_type, new.render(),
                               new.updated_ms)
        o = new.order
        journal = (movement("split", new.id, new.amount, o.currency, new.updated_ms, o.rail,
                            new.rail_split_no)
                   if new.status is SplitStatus.SUCCEEDED else b"")
        return Finish(due_action="-", event_id=event_id, event_body=body,
                      webhook_url=o.notify_url or "", journal=journal)
