"""A rail's verified notification, matched to the attempt (or refund) it names.

A notification goes through the same compare-and-set as every other transition, so
duplicates and late arrivals are harmless.
"""

from __future__ import annotations

import logging
from typing import final

from adapters.base import Notification, NotificationKind, RailStatus
from router.domain import Payment
from router.payments.numbers import payment_id_of, refund_id_of
from router.payments.refunds import Refunds
from router.payments.settle import Settler
from router.store.store import Store

log = logging.getLogger("payrouter.notify")


@final
class Notifications:
    __slots__ = ("refunds", "settler", "store")

    def __init__(self, store: Store, settler: Settler, refunds: Refunds) -> None:
        self.store = store
        self.settler = settler
        self.refunds = refunds

    async def apply(self, rail: str, note: Notification) -> bool:
        """Apply a verified notification; False when it matches none of our records."""
        payment = await self.store.payments.load(payment_id_of(note.rail_order_no))
        attempts = {a.rail_order_no: a.rail for a in payment.rail.attempts} if payment else {}
        if payment is None or attempts.get(note.rail_order_no) != rail:
            log.warning("a %s notification names no payment of ours", rail)
            return False
        if note.kind is NotificationKind.REFUND:
            return await self._refund(payment, note)
        if (note.rail_order_no != payment.rail.current.rail_order_no
                and note.result.status is not RailStatus.SUCCEEDED):
            # News of an attempt the router has moved on from (failed over, handed over):
            # only money taken would matter, and closing it was confirmed by the rail.
            return True
        if note.result.amount is not None and note.result.amount != payment.charged_amount:
            log.error("a %s notification for %s reports amount %s, not %s; ignored", rail,
                      payment.id, note.result.amount, payment.charged_amount)
            return False
        await self.settler.apply(payment, note.result)
        return True

    async def _refund(self, payment: Payment, note: Notification) -> bool:
        refund = await self.store.refunds.load(refund_id_of(note.rail_refund_no or ""))
        if refund is None or refund.payment_id != payment.id:
            return False
        await self.refunds.apply(refund, note.result, payment.notify_url)
        return True
