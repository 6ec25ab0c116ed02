"""What a cross-border trade of the Alipay simulator costs its buyer: the trade's
settlement, and the CNY its buyer pays at the rail's rate once it is paid.

The rates are the shared simulated table (`adapters.simkit.rates`, `POST /sim/rates`, CNY
per unit), with the Alipay currencies it lacks added. A trade's rate is fixed when it is
paid: `pay_amount` is the priced amount times `trans_pay_rate`, in `Decimal`, rounded half
up to the fen; `settle_amount` goes through CNY the same way, rounded half up to the
settlement currency's decimals.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Final, final

from adapters.alipay.pricing import DOMESTIC, written
from adapters.currencies import exponent, to_major
from adapters.simkit.rates import Rates

if TYPE_CHECKING:
    from adapters.alipay.simulator.records import TradeRecord

__all__ = ["Abroad", "alipay_rates", "amount_fields", "quote"]

# CNY per unit of the Alipay currencies the shared table does not quote.
EXTRA_RATES: Final[Mapping[str, str]] = {
    "SEK": "0.68", "DKK": "1.05", "NOK": "0.67", "PHP": "0.125", "MUR": "0.16", "ILS": "1.95",
    "LKR": "0.024", "RUB": "0.079", "AED": "1.96", "CZK": "0.31", "ZAR": "0.39",
}  # fmt: skip
_RATE_PLACES: Final = Decimal("0.00000001")  # a computed rate is written with 8 decimals
_FEN: Final = Decimal("0.01")


@final
@dataclass(slots=True)
class Abroad:
    """A cross-border trade's settlement, and what its buyer paid once it is paid."""

    settle_currency: str
    pay_amount: int | None = None  # CNY fen
    trans_pay_rate: str | None = None  # CNY per unit of the priced currency
    settle_amount: int | None = None  # minor units of the settlement currency
    settle_trans_rate: str | None = None  # priced units per settlement unit


def alipay_rates() -> Rates:
    rates = Rates()
    rates.set(EXTRA_RATES)
    return rates


def quote(trade: TradeRecord, rates: Rates) -> None:
    """Fix what the buyer pays for a cross-border trade, as it is paid."""
    abroad = trade.abroad
    if abroad is None or abroad.pay_amount is not None:
        return
    rate = rates.cny_per_unit(trade.currency)
    settle_rate = rates.cny_per_unit(abroad.settle_currency)
    if rate is None or settle_rate is None:  # every Alipay currency is quoted
        raise LookupError(f"no rate for {trade.currency} or {abroad.settle_currency}")
    priced = to_major(trade.charged, trade.currency)
    abroad.pay_amount = int((priced * rate).quantize(_FEN, ROUND_HALF_UP).scaleb(2))
    abroad.trans_pay_rate = format(rate, "f")  # as quoted: the rate the buyer paid at
    places = exponent(abroad.settle_currency)
    settled = (priced * rate / settle_rate).quantize(Decimal(1).scaleb(-places), ROUND_HALF_UP)
    abroad.settle_amount = int(settled.scaleb(places))
    ratio = (settle_rate / rate).quantize(_RATE_PLACES, ROUND_HALF_UP).normalize()
    abroad.settle_trans_rate = format(ratio, "f")


def amount_fields(trade: TradeRecord) -> dict[str, str]:
    """What answers and notifications say about a cross-border trade (nothing when
    domestic): its currencies and, once paid, what the buyer paid and the settlement."""
    abroad = trade.abroad
    if abroad is None:
        return {}
    fields = {"trans_currency": trade.currency, "settle_currency": abroad.settle_currency}
    if abroad.pay_amount is not None and abroad.trans_pay_rate is not None:
        paid = written(abroad.pay_amount, DOMESTIC)
        fields.update(
            pay_currency=DOMESTIC,
            pay_amount=paid,
            buyer_pay_amount=paid,  # the buyer pays in CNY
            trans_pay_rate=abroad.trans_pay_rate,
            settle_amount=written(abroad.settle_amount or 0, abroad.settle_currency),
            settle_trans_rate=abroad.settle_trans_rate or "1",
        )
    return fields
