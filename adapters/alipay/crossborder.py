"""Cross-border charges on the Alipay rail: what a charge or refund priced in another
currency than CNY becomes on the wire, and what the buyer paid in CNY, read back as
`RailResult.payer_amount`.

Only an adapter configured with a `settle_currency` (a merchant Alipay settles abroad)
prices in another currency; a domestic one refuses anything but CNY, naming the currency
as the field at fault. Pure
functions, like `transformers`, whose domestic mapping they reuse for everything but the
amount and the currencies.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import NoReturn

import msgspec

from adapters.alipay import transformers
from adapters.alipay.pricing import (
    ALIPAY_CURRENCIES,
    DOMESTIC,
    RATE_SOURCE,
    currency_refusal,
    minor_units,
    parse_rate,
    within_limit,
    written,
)
from adapters.alipay.wire import OrderBiz, RefundBiz
from adapters.base import (
    Charge,
    Notification,
    NotificationKind,
    RailError,
    RailErrorCode,
    RailResult,
    Refund,
)
from adapters.commerce_ops import ExchangeRate, PayerAmount
from adapters.wire import Malformed, Shape, convert, decode

__all__ = ["is_foreign", "order_biz", "refund_biz", "settle_currency_option",
           "with_payer_amount", "with_payer_notification"]


class PayerFields(Shape, kw_only=True):
    """What a cross-border answer or notification says the buyer paid."""

    trans_currency: str | None = None
    pay_currency: str | None = None
    pay_amount: str | None = None  # in pay_currency (CNY), yuan
    trans_pay_rate: str | None = None  # priced currency -> paid currency


def settle_currency_option(rail: str, value: str | None) -> str | None:
    """The adapter option `settle_currency`, checked when the adapter is made."""
    if value is not None and value not in ALIPAY_CURRENCIES:
        raise ValueError(f"rail {rail!r}: Alipay settles in none of {value!r}")
    return value


def is_foreign(currency: str) -> bool:
    """Whether a charge or refund in `currency` is priced abroad (or refused for it)."""
    return currency != DOMESTIC


def _refuse(message: str, *, param: str) -> NoReturn:
    # Raised before anything is sent: nothing can have moved.
    raise RailError(RailErrorCode.INVALID_REQUEST, message, definitive=True, param=param)


def _amount(amount: int, currency: str) -> str:
    if not within_limit(amount, currency):
        _refuse(f"amount must be 1 minor unit to 10^8 {currency}", param="amount")
    return written(amount, currency)


def order_biz(op: Charge, settle_currency: str | None) -> OrderBiz:
    """The charge's `biz_content`, priced in its own currency and settled in ours (with
    none, the merchant is domestic: refused)."""
    refusal = currency_refusal(op.currency, settle_currency)
    if refusal is not None:
        _refuse(refusal, param="currency")
    total = _amount(op.amount, op.currency)
    # The scene's fields are the domestic ones: only the amount and the currencies differ.
    domestic = transformers.order_biz(dataclasses.replace(op, currency=DOMESTIC))
    return msgspec.structs.replace(domestic, total_amount=total, trans_currency=op.currency,
                                   settle_currency=settle_currency)


def refund_biz(op: Refund, settle_currency: str | None) -> RefundBiz:
    """A refund in the payment's currency: Alipay knows the trade's, so none is named."""
    if settle_currency is None or op.currency not in ALIPAY_CURRENCIES:
        _refuse(f"this merchant was paid in no {op.currency!r}", param="currency")
    amount = _amount(op.amount, op.currency)
    domestic = transformers.refund_biz(dataclasses.replace(op, currency=DOMESTIC))
    return msgspec.structs.replace(domestic, refund_amount=amount)


# --------------------------------------------------------------------------- answers
def _payer_amount(fields: PayerFields) -> PayerAmount | None:
    if fields.pay_amount is None or fields.trans_pay_rate is None or not fields.trans_currency:
        return None  # a domestic trade, or one not paid yet
    paid_in = fields.pay_currency or DOMESTIC
    try:
        amount = minor_units(fields.pay_amount, paid_in)
        parse_rate(fields.trans_pay_rate)
    except ValueError as exc:
        raise Malformed(f"the buyer's payment: {exc}") from None
    # The rate stays the string Alipay wrote: it is evidence, never recomputed.
    rate = ExchangeRate(rate=fields.trans_pay_rate, source=RATE_SOURCE,
                        base=fields.trans_currency, quote=paid_in)
    return PayerAmount(amount, paid_in, rate)


def with_payer_amount(result: RailResult, text: str) -> RailResult:
    """`result` with what the buyer paid, when the verified answer `text` says it."""
    payer = _payer_amount(decode(text, PayerFields))
    return result if payer is None else dataclasses.replace(result, payer_amount=payer)


def with_payer_notification(note: Notification, params: Mapping[str, str]) -> Notification:
    """A payment notification with what the buyer paid, when its form says it."""
    if note.kind is not NotificationKind.PAYMENT:
        return note
    payer = _payer_amount(convert(params, PayerFields))
    if payer is None:
        return note
    return dataclasses.replace(note, result=dataclasses.replace(note.result, payer_amount=payer))
