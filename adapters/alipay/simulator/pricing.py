"""How an order of the Alipay simulator is priced: in `trans_currency` and settled in
`settle_currency` when it says so (a cross-border trade, see `abroad`), else in CNY.

The rule between the two currencies is the fact sheet's (`adapters.alipay.pricing`):
only CNY and TWD may be priced apart from the settlement currency. The pricing is part of
what a repeated order must match.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, final

from adapters.alipay.pricing import DOMESTIC, currency_refusal
from adapters.alipay.simulator.abroad import Abroad
from adapters.alipay.simulator.answers import invalid

__all__ = ["DOMESTIC_PRICE", "Price", "price_of"]


@final
@dataclass(frozen=True, slots=True)
class Price:
    currency: str = DOMESTIC
    settle_currency: str | None = None

    def abroad(self) -> Abroad | None:
        return None if self.settle_currency is None else Abroad(self.settle_currency)


DOMESTIC_PRICE: Final = Price()


def price_of(biz: Mapping[str, object]) -> Price:
    """The pricing an order asks for; refused as Alipay words it when it breaks the rule."""
    trans, settle = biz.get("trans_currency"), biz.get("settle_currency")
    if trans is None and settle is None:
        return DOMESTIC_PRICE
    if not isinstance(trans, str | None) or not isinstance(settle, str | None):
        raise invalid("trans_currency and settle_currency are currency codes")
    trans = trans or DOMESTIC  # settle_currency alone: priced in RMB, settled abroad
    refusal = currency_refusal(trans, settle)
    if refusal is not None:
        raise invalid(refusal)
    return Price(trans, settle)

