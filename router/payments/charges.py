"""The charge operation of an attempt: what every send of it carries (the same
rail_order_no each time, so the rail dedupes a repeat)."""

from __future__ import annotations

from adapters.base import Charge
from router.domain import Attempt, Payment


def charge_of(payment: Payment, base_url: str, attempt: Attempt | None = None) -> Charge:
    attempt = attempt or payment.rail.current
    return Charge(
        rail_order_no=attempt.rail_order_no, amount=payment.charged_amount,
        currency=payment.currency, scene=attempt.scene or payment.scene,
        description=payment.description, payer=attempt.payer or payment.payer,
        metadata=payment.metadata,
        notify_url=f"{base_url}/v1/notify/{attempt.rail}",
    )
