"""Checks of Alipay business fields (`biz_content`): refusals as Alipay words them."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation

from adapters.alipay import protocol
from adapters.alipay.pricing import DOMESTIC, MAX_MAJOR
from adapters.alipay.protocol import SubCode
from adapters.alipay.simulator.answers import Refused, business, invalid
from adapters.alipay.simulator.pricing import price_of
from adapters.currencies import exponent


def order_fields(biz: Mapping[str, object]) -> tuple[str, int, str]:
    no = biz.get("out_trade_no")
    if not protocol.valid_out_no(no):
        raise invalid("out_trade_no must be 1-64 of [A-Za-z0-9_]")
    subject = biz.get("subject")
    if not isinstance(subject, str) or not subject or len(subject) > 256:
        raise invalid("subject must be 1-256 characters")
    # A cross-border trade's amount is in its own currency (`pricing`).
    return no, amount(biz, "total_amount", price_of(biz).currency), subject


def amount(biz: Mapping[str, object], key: str, currency: str = DOMESTIC) -> int:
    """Yuan with at most 2 decimals (another currency: at most its own), as a string or a
    JSON number (parsed as Decimal); in minor units."""
    raw = biz.get(key)
    places = exponent(currency)
    fen: int | None = None
    if isinstance(raw, str | int | Decimal) and not isinstance(raw, bool):
        with contextlib.suppress(InvalidOperation, ValueError):
            value = Decimal(raw)
            if value.is_finite() and value == value.quantize(Decimal(1).scaleb(-places)):
                fen = int(value.scaleb(places))
    if fen is None:
        if currency != DOMESTIC:
            raise invalid(f"{key} must be {currency} with at most {places} decimals")
        raise invalid(f"{key} must be yuan with at most two decimals")
    if fen > MAX_MAJOR.scaleb(places):
        raise Refused(business(SubCode.TOTAL_FEE_EXCEED, f"{key} is above the limit"))
    if fen <= 0:
        raise invalid(f"{key} must be at least one minor unit" if currency != DOMESTIC
                      else f"{key} must be at least 0.01")
    return fen


def auth_code(biz: Mapping[str, object]) -> str:
    # Real codes are 16-24 digits starting 25-30 (or fp… for faces); the sandbox takes
    # any code of 10-64 letters and digits so every rail's test codes work here.
    code = biz.get("auth_code")
    if not isinstance(code, str) or not (
        10 <= len(code) <= 64 and code.isascii() and code.isalnum()
    ):
        raise Refused(business(SubCode.PAYMENT_AUTH_CODE_INVALID, "auth_code is invalid"))
    return code
