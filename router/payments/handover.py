"""Handing an unpaid payment to another wallet or payer: a pay-for-me link, or an order
checkout code opened in a second wallet.

The current attempt is closed at its rail first, and only the rail's confirmation counts,
so the old order can no longer be paid; then a new attempt starts on the new rail in the
new scene with its own rail_order_no. There is still one payment, and never two charges.
"""

from __future__ import annotations

from typing import final

from adapters.base import Close, RailError, RailStatus, Scene
from router.domain import Attempt, Payment, RailState, Status
from router.errors import RouterError, invalid_state, validation_error
from router.payments.charges import charge_of
from router.payments.create import Creator
from router.payments.numbers import rail_order_no
from router.payments.replies import Reply, rail_refused_request
from router.payments.settle import Settler
from router.payments.transitions import Transitions
from router.rails.client import RailClient
from router.settings import Settings


@final
class HandOver:
    __slots__ = ("creator", "rails", "settings", "settler", "transitions")

    def __init__(self, creator: Creator, settler: Settler, transitions: Transitions,
                 rails: RailClient, settings: Settings) -> None:
        self.creator = creator
        self.settler = settler
        self.transitions = transitions
        self.rails = rails
        self.settings = settings

    async def hand_over(self, payment: Payment, rail: str, scene: Scene,
                        payer: dict[str, str], via: str) -> Reply:
        """Continue `payment` as a new attempt on `rail` in `scene`, paid by `payer`
        (`via` says how: "share_link", "checkout_code")."""
        if payment.status is not Status.REQUIRES_ACTION:
            raise invalid_state(f"The payment is {payment.status}; it cannot be handed over.")
        if payment.service_provider is not None:
            # Another wallet's rail would not be the provider's: the money would go astray.
            raise invalid_state("A service provider's payment stays in its own wallet.")
        if not self.rails.has(rail):
            raise validation_error("wallet", f"No {rail} rail is configured here.")
        number = len(payment.rail.attempts) + 1
        attempt = Attempt(number, rail, rail_order_no(payment.id, number), scene=scene,
                          payer=payer, via=via)
        charge = charge_of(payment, self.settings.server.base_url(), attempt)
        try:
            built = self.rails.build(rail, charge)
        except RailError as err:
            raise rail_refused_request(err) from None
        await self._close_current(payment)

        def add_attempt(state: RailState) -> None:
            state.attempts[-1].failure_code = "HANDED_OVER"
            state.attempts.append(attempt)
            state.action = None

        moved, ok = await self.transitions.move(payment, Status.PROCESSING, add_attempt)
        if not ok:
            raise invalid_state(f"The payment changed meanwhile; it is {moved.status}.")
        return await self.creator.charge(moved, charge, built, None)

    async def _close_current(self, payment: Payment) -> None:
        current = payment.rail.current
        try:
            result = await self.rails.call(current.rail, Close(current.rail_order_no))
        except RailError as err:
            if not err.definitive:
                raise RouterError(502, "adapter_error", "The rail's answer is unknown; the "
                                  "payment was not handed over. Retry later.") from None
            checked = await self.settler.check(payment)  # e.g. paid meanwhile: learn it
            raise invalid_state(f"The rail refused to close the current order ({err.code}); "
                                f"the payment is {checked.status}.") from None
        if result.status is not RailStatus.CLOSED:
            moved = await self.settler.apply(payment, result)
            raise invalid_state(f"The current order could not be closed; the payment is "
                                f"{moved.status}.")
