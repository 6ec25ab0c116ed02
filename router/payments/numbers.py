"""Rail-side numbers, derived from the router's own ids so a retry always sends the same
one (the rail dedupes on it), and the ids recovered from them."""

from __future__ import annotations


def rail_order_no(payment_id: str, attempt: int) -> str:
    """The rail-side idempotency key of one attempt (≤ 32 chars of [0-9A-Za-z_])."""
    return f"{payment_id.removeprefix('pay_')}_{attempt}"


def payment_id_of(rail_order: str) -> str:
    return "pay_" + rail_order.rsplit("_", 1)[0]


def refund_id_of(rail_refund_no: str) -> str:
    return "re_" + rail_refund_no
