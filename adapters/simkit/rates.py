"""The exchange rates a simulated rail quotes for cross-border payments (SANDBOX.md,
"Exchange rates"): CNY per one major unit of each currency, as exact decimals.

A built-in table answers until `POST /sim/rates {"JPY": "0.04812"}` sets some rates
(`GET /sim/rates` shows them all). A rate is a decimal string with at most 8 decimals,
the precision WeChat Pay reports (rate x 10^8 as an integer); a JSON number is refused,
so no rate ever passes through a float.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Final, final

from aiohttp import web

from adapters.currencies import is_known

__all__ = ["BUILT_IN_RATES", "MAX_RATE_DECIMALS", "Rates"]

MAX_RATE_DECIMALS: Final = 8
BUILT_IN_RATES: Final[Mapping[str, str]] = {
    "CNY": "1", "USD": "7.18", "HKD": "0.92", "EUR": "7.80", "GBP": "9.10", "JPY": "0.04812",
    "KRW": "0.0052", "SGD": "5.35", "AUD": "4.70", "CAD": "5.25", "CHF": "8.10", "NZD": "4.30",
    "THB": "0.20", "MYR": "1.53", "MOP": "0.89", "TWD": "0.22", "VND": "0.00028",
    "IDR": "0.00045", "KWD": "23.40", "BHD": "19.05",
}  # fmt: skip


def parse_rate(value: object) -> Decimal:
    """A positive decimal string with at most 8 decimals; raises ValueError."""
    if not isinstance(value, str):
        raise ValueError("a rate is a decimal string, never a JSON number")
    try:
        rate = Decimal(value)
    except InvalidOperation:
        raise ValueError(f"{value!r} is not a decimal") from None
    if not rate.is_finite() or rate <= 0:
        raise ValueError(f"{value!r} is not a positive rate")
    if rate.scaleb(MAX_RATE_DECIMALS) != rate.scaleb(MAX_RATE_DECIMALS).to_integral_value():
        raise ValueError(f"{value!r} has more than {MAX_RATE_DECIMALS} decimals")
    return rate


@final
class Rates:
    """CNY per major unit of each currency; set by `POST /sim/rates`."""

    __slots__ = ("_rates",)

    def __init__(self) -> None:
        self._rates = {code: Decimal(text) for code, text in BUILT_IN_RATES.items()}

    def cny_per_unit(self, currency: str) -> Decimal | None:
        """The rate quoted now, or None for a currency the rail does not quote."""
        return self._rates.get(currency)

    def set(self, rates: Mapping[str, object]) -> None:
        parsed = {}
        for code, value in rates.items():
            if not is_known(code):
                raise ValueError(f"{code!r} is not an ISO 4217 currency")
            parsed[code] = parse_rate(value)
        self._rates.update(parsed)  # all or nothing

    def to_json(self) -> dict[str, str]:
        return {code: format(rate, "f") for code, rate in sorted(self._rates.items())}

    def routes(self) -> list[web.RouteDef]:
        async def set_rates(request: web.Request) -> web.Response:
            try:
                body = json.loads(await request.read() or b"{}")
                if not isinstance(body, dict):
                    raise ValueError("expected {\"<currency>\": \"<CNY per unit>\"}")
                self.set(body)
            except ValueError as exc:
                return web.json_response({"code": "INVALID_REQUEST", "message": str(exc)},
                                         status=400)
            return web.json_response(self.to_json())

        async def get_rates(_request: web.Request) -> web.Response:
            return web.json_response(self.to_json())

        return [web.post("/sim/rates", set_rates), web.get("/sim/rates", get_rates)]
