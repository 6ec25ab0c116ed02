"""ISO 4217 minor units: how many decimals a currency's amounts have.

Every amount the router and the adapters carry is an integer in the currency's minor
unit, so 1000 is 10.00 CNY but 1000 JPY (yen have no decimals) and 1.000 BHD. Rails that
write amounts as decimal strings (Alipay's `total_amount`, WeChat's bill columns) convert
with `to_major` / `parse_major`, which use `Decimal` only: never a float.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Final

__all__ = [
    "EXPONENTS",
    "UnknownCurrency",
    "exponent",
    "format_major",
    "is_known",
    "parse_major",
    "to_major",
]

_NO_DECIMALS = ("BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX",
                "UYI", "VND", "VUV", "XAF", "XOF", "XPF")
_THREE_DECIMALS = ("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND")
_FOUR_DECIMALS = ("CLF", "UYW")
# Every other active ISO 4217 currency has two decimals (IDR, HUF and TWD included:
# their coins are gone, the standard keeps the cents).
_TWO_DECIMALS = (
    "AED", "AFN", "ALL", "AMD", "ANG", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD",
    "BDT", "BGN", "BMD", "BND", "BOB", "BRL", "BSD", "BTN", "BWP", "BYN", "BZD", "CAD",
    "CDF", "CHF", "CNY", "COP", "CRC", "CUP", "CVE", "CZK", "DKK", "DOP", "DZD", "EGP",
    "ERN", "ETB", "EUR", "FJD", "FKP", "GBP", "GEL", "GHS", "GIP", "GMD", "GTQ", "GYD",
    "HKD", "HNL", "HTG", "HUF", "IDR", "ILS", "INR", "IRR", "JMD", "KES", "KGS", "KHR",
    "KPW", "KYD", "KZT", "LAK", "LBP", "LKR", "LRD", "LSL", "MAD", "MDL", "MGA", "MKD",
    "MMK", "MNT", "MOP", "MRU", "MUR", "MVR", "MWK", "MXN", "MYR", "MZN", "NAD", "NGN",
    "NIO", "NOK", "NPR", "NZD", "PAB", "PEN", "PGK", "PHP", "PKR", "PLN", "QAR", "RON",
    "RSD", "RUB", "SAR", "SBD", "SCR", "SDG", "SEK", "SGD", "SHP", "SLE", "SOS", "SRD",
    "SSP", "STN", "SVC", "SYP", "SZL", "THB", "TJS", "TMT", "TOP", "TRY", "TTD", "TWD",
    "TZS", "UAH", "USD", "UYU", "UZS", "VES", "WST", "XCD", "YER", "ZAR", "ZMW", "ZWG",
)

EXPONENTS: Final[dict[str, int]] = {
    **dict.fromkeys(_TWO_DECIMALS, 2),
    **dict.fromkeys(_NO_DECIMALS, 0),
    **dict.fromkeys(_THREE_DECIMALS, 3),
    **dict.fromkeys(_FOUR_DECIMALS, 4),
}


class UnknownCurrency(ValueError):
    """A code that is not an active ISO 4217 currency."""


def is_known(code: str) -> bool:
    return code in EXPONENTS


def exponent(code: str) -> int:
    """How many decimals `code` has (JPY 0, CNY 2, KWD 3); raises `UnknownCurrency`."""
    try:
        return EXPONENTS[code]
    except KeyError:
        raise UnknownCurrency(f"{code!r} is not an ISO 4217 currency") from None


def to_major(amount: int, code: str) -> Decimal:
    """Minor units as the exact major-unit decimal: 1234 CNY -> 12.34, 1234 JPY -> 1234."""
    return Decimal(amount).scaleb(-exponent(code))


def format_major(amount: int, code: str) -> str:
    """Minor units as a decimal string with the currency's decimals ("12.34", "1234")."""
    return f"{to_major(amount, code):.{exponent(code)}f}"


def parse_major(text: str, code: str) -> int:
    """A major-unit decimal string as minor units; raises ValueError when it is not a
    number or has more decimals than the currency ("0.001" CNY is no amount)."""
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise ValueError(f"{text!r} is not a decimal amount") from None
    if not value.is_finite():
        raise ValueError(f"{text!r} is not a decimal amount")
    minor = value.scaleb(exponent(code))
    if minor != minor.to_integral_value():
        raise ValueError(f"{text!r} has more decimals than {code} has")
    return int(minor)
