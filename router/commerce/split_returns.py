"""A refund that needs shared money takes it back first (WeChat `/v3/profitsharing/
return-orders`, the operation `SplitReturn`).

create_refund.lua reserves the returns with the refund, atomically: the merchant holds
what was paid minus what was shared, so a refund beyond that takes the rest from the
receivers' shares, merchant accounts first, newest split first (`SplitOrder.share_name`).
Before the refund is sent, each return goes out here, once (its rail-side number is
derived from the refund and its place among the refund's returns):

- back: recorded once (the split shows it as `returned_amount`, the journal has it);
- still processing, or unknown: the refund waits (`processing`); the sweeper sends the
  refund again later, which sends the same returns again, which the rail dedupes;
- refused: that share is returnable again and the refund fails (the returns that did
  come back stay back: the money is with the merchant, no longer shared).
"""

from __future__ import annotations

import logging
from typing import final

from adapters.base import RailError, RailStatus
from adapters.commerce_ops import SplitReturn
from router.clock import Clock
from router.commerce.split_records import share_of
from router.ledger.entries import movement
from router.rails.client import RailClient
from router.refund_record import Refund
from router.store.store import Store

log = logging.getLogger("payrouter.splits")


@final
class SplitReturns:
    __slots__ = ("clock", "rails", "store")

    def __init__(self, store: Store, rails: RailClient, clock: Clock) -> None:
        self.store = store
        self.rails = rails
        self.clock = clock

    async def take_back(self, refund: Refund) -> None:
        """Every return of `refund` back; raises `RailError` while one is not."""
        returns = await self.store.splits.returns_of(refund.id)
        for position, (name, (amount, verdict)) in enumerate(sorted(returns.items())):
            if verdict == "done":
                continue
            if verdict == "undone":
                raise RailError("SPLIT_RETURN_REFUSED", "a receiver could not give its share "
                                "back", definitive=True)
            await self._one(refund, name, amount, f"{refund.rail_refund_no}R{position}")

    async def _one(self, refund: Refund, name: str, amount: int, number: str) -> None:
        split_id, index = share_of(name)
        split = await self.store.splits.load(split_id)
        if split is None:
            raise RailError("SPLIT_MISSING", "the split to take money back from is missing",
                            definitive=False)
        share = split.order.shares[index]
        op = SplitReturn(rail_order_no=split.order.rail_order_no,
                         rail_split_no=split.rail_split_no, rail_return_no=number,
                         account=share.account, amount=amount,
                         description=(refund.reason or "refund")[:80])
        try:
            result = await self.rails.call(split.order.rail, op)
        except RailError as err:
            if err.definitive:
                await self._settle(refund, name, split_id, amount, number, done=False)
            raise
        match result.status:
            case RailStatus.SUCCEEDED:
                await self._settle(refund, name, split_id, amount, number, done=True)
            case RailStatus.FAILED | RailStatus.CLOSED:
                await self._settle(refund, name, split_id, amount, number, done=False)
                raise RailError(result.failure_code or "SPLIT_RETURN_FAILED",
                                result.failure_message or "a receiver could not give its "
                                "share back", definitive=True)
            case _:
                raise RailError("SPLIT_RETURN_PENDING", "shared money is still coming back",
                                definitive=False)

    async def _settle(self, refund: Refund, name: str, split_id: str, amount: int, number: str,
                      *, done: bool) -> None:
        journal = movement("split_return", refund.id, amount, refund.currency,
                           self.clock.now_ms(), refund.rail, number)
        await self.store.splits.settle_return(refund.id, refund.payment_id, name, split_id,
                                              done, refund.merchant_id, journal)
        if not done:
            log.info("refund %s: a split return was refused; its share stays shared",
                     refund.id)
