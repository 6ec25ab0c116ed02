"""How Alipay prices a trade in another currency than CNY, shared by the adapter and the
simulator: the currencies it takes, the rule between the priced (`trans_currency`) and
the settlement currency (`settle_currency`), and how its amounts are written.

Amounts are decimal strings in the major unit of the trade's currency, with that
currency's ISO 4217 decimals ("1000" yen, "10.00" yuan), always through `Decimal`. The
fact sheet writes every `total_amount` with 2 decimals, so "1000.00" yen is read as 1000
yen too; "1000.50" yen is no amount. A CNY amount keeps the strict reading it always had
(exactly two decimals).
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Final

from adapters.alipay.wire import yuan_to_fen
from adapters.currencies import UnknownCurrency, exponent, format_major, parse_major

__all__ = [
    "ALIPAY_CURRENCIES",
    "DOMESTIC",
    "MAX_MAJOR",
    "RATE_SOURCE",
    "currency_refusal",
    "minor_units",
    "parse_rate",
    "within_limit",
    "written",
]

DOMESTIC: Final = "CNY"
# The currencies a cross-border trade may be priced or settled in (fact sheet, section B).
ALIPAY_CURRENCIES: Final = frozenset({
    "GBP", "HKD", "USD", "SGD", "JPY", "CAD", "AUD", "EUR", "NZD", "KRW", "THB", "CHF", "SEK",
    "DKK", "NOK", "MYR", "IDR", "PHP", "MUR", "ILS", "LKR", "RUB", "AED", "CZK", "ZAR", "CNY",
    "TWD",
})  # fmt: skip
# Only these may be priced in a currency other than the settlement one (price in RMB or
# TWD, settle abroad); any other priced currency must be the settlement currency.
PRICED_APART: Final = frozenset({"CNY", "TWD"})
MAX_MAJOR: Final = Decimal(100_000_000)  # the gateway's ceiling for one amount
RATE_SOURCE: Final = "alipay:trans_pay_rate"

_AMOUNT_RE = re.compile(r"[0-9]{1,13}(?:\.[0-9]{1,3})?")


def currency_refusal(trans: str, settle: str | None) -> str | None:
    """Why Alipay would refuse a trade priced in `trans` and settled in `settle`, or None."""
    if trans not in ALIPAY_CURRENCIES:
        return f"Alipay prices no trade in {trans!r}"
    if settle is None:
        return None if trans == DOMESTIC else (
            f"a domestic merchant charges CNY only, not {trans} (settle_currency prices abroad)")
    if settle not in ALIPAY_CURRENCIES:
        return f"Alipay settles no trade in {settle!r}"
    if trans != settle and trans not in PRICED_APART:
        return (f"a trade priced in {trans} must settle in {trans}: only CNY and TWD may be "
                f"priced apart from the settlement currency ({settle})")
    return None


def written(amount: int, currency: str) -> str:
    """Minor units as Alipay writes them: the currency's decimals ("1000" JPY, "10.00")."""
    return format_major(amount, currency)


def minor_units(text: str, currency: str | None) -> int:
    """An amount Alipay wrote for a trade in `currency` (None: CNY) as minor units;
    raises ValueError."""
    if currency is None or currency == DOMESTIC:
        return yuan_to_fen(text)
    if not isinstance(text, str) or _AMOUNT_RE.fullmatch(text) is None:
        raise ValueError(f"{text!r} is not an amount")
    try:
        return parse_major(text, currency)
    except UnknownCurrency:
        raise ValueError(f"{currency!r} is not a currency") from None


def within_limit(amount: int, currency: str) -> bool:
    """1 minor unit up to the gateway's ceiling of 10^8 major units."""
    return type(amount) is int and 0 < amount <= MAX_MAJOR.scaleb(exponent(currency))


def parse_rate(text: str) -> Decimal:
    """A rate as Alipay writes it (a positive decimal string); raises ValueError."""
    try:
        rate = Decimal(text)
    except (InvalidOperation, TypeError):
        raise ValueError(f"{text!r} is not a rate") from None
    if not rate.is_finite() or rate <= 0:
        raise ValueError(f"{text!r} is not a rate")
    return rate
