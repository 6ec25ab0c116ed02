"""Differences planted in a simulated rail's daily bill, for reconciliation tests
(SANDBOX.md, "bills").

A rail's bill for a day lists what its simulator's ledger holds for that day (in China
time, the rails' business day). `POST /sim/bills/plant` makes the bill disagree with the
ledger on purpose, the way a real bill sometimes disagrees with the merchant's records:

    {"date": "2026-01-03",
     "extra": [{"out_trade_no": "...", "amount": 100}],   # payments the ledger never took
                                                          # (CNY, or an optional "currency")
     "drop": ["<out_trade_no>"],                          # every line of that order hidden
     "amount_delta": {"<out_trade_no>": 1}}               # its payment line's amount moved

Amounts are integer minor units (a delta may be negative). Plants for a date add up over
calls, and an order named again replaces its earlier plant; the answer is the date's
plants. The ledger itself never changes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Protocol, TypeVar, final

from aiohttp import web

from adapters.currencies import is_known

__all__ = ["CHINA_TZ", "BillPlants", "Plants", "bill_day", "china_day", "planted"]

CHINA_TZ = timezone(timedelta(hours=8), "Asia/Shanghai")  # no daylight saving since 1991
MAX_PLANTED_AMOUNT = 10**12


def bill_day(text: object) -> date:
    """A bill's date, exactly `YYYY-MM-DD`; raises ValueError."""
    if not isinstance(text, str) or len(text) != 10:
        raise ValueError("date must be YYYY-MM-DD")
    return date.fromisoformat(text)


def china_day(moment: float) -> date:
    """The business day (China time) of a Unix time."""
    return datetime.fromtimestamp(moment, CHINA_TZ).date()


@final
@dataclass(slots=True)
class Plants:
    extra: dict[str, tuple[int, str]] = field(default_factory=dict)  # no -> (amount, currency)
    drop: set[str] = field(default_factory=set)
    amount_delta: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        return {
            "extra": [{"out_trade_no": no, "amount": amount, "currency": currency}
                      for no, (amount, currency) in self.extra.items()],
            "drop": sorted(self.drop),
            "amount_delta": dict(self.amount_delta),
        }


class BillLineLike(Protocol):
    @property
    def kind(self) -> str: ...  # "payment" | "refund"

    @property
    def order_no(self) -> str: ...

    @property
    def amount(self) -> int: ...


Line = TypeVar("Line", bound=BillLineLike)


def planted(
    lines: Iterable[Line],
    plants: Plants,
    *,
    extra: Callable[[str, int, str], Line],
    with_amount: Callable[[Line, int], Line],
) -> list[Line]:
    """`lines` as the bill shows them once `plants` are applied."""
    shown = []
    for line in lines:
        if line.order_no in plants.drop:
            continue
        delta = plants.amount_delta.get(line.order_no, 0) if line.kind == "payment" else 0
        shown.append(with_amount(line, line.amount + delta) if delta else line)
    shown.extend(extra(no, amount, currency) for no, (amount, currency) in plants.extra.items())
    return shown


@final
class BillPlants:
    """The plants of every date; `valid_order_no` is the rail's rule for order numbers."""

    __slots__ = ("_by_day", "_valid_order_no")

    def __init__(self, valid_order_no: Callable[[object], bool]) -> None:
        self._valid_order_no = valid_order_no
        self._by_day: dict[date, Plants] = {}

    def of(self, day: date) -> Plants:
        return self._by_day.get(day) or Plants()

    def plant(self, body: object) -> Plants:
        """Add the plants of one control call (all or nothing); raises ValueError."""
        if not isinstance(body, Mapping):
            raise ValueError("body must be a JSON object")
        day = bill_day(body.get("date"))
        extra = {self._order_no(item.get("out_trade_no")): (_amount(item.get("amount")),
                                                            _currency(item.get("currency", "CNY")))
                 for item in _extra_items(body.get("extra", []))}
        drop = body.get("drop", [])
        if not isinstance(drop, list):
            raise ValueError("drop must be a list of order numbers")
        dropped = {self._order_no(no) for no in drop}
        deltas = body.get("amount_delta", {})
        if not isinstance(deltas, Mapping):
            raise ValueError("amount_delta must map order numbers to integers")
        delta = {self._order_no(no): _delta(value) for no, value in deltas.items()}
        plants = self._by_day.setdefault(day, Plants())
        plants.extra.update(extra)
        plants.drop.update(dropped)
        plants.amount_delta.update(delta)
        return plants

    def route(self) -> web.RouteDef:
        async def plant(request: web.Request) -> web.Response:
            try:
                plants = self.plant(json.loads(await request.read() or b"{}"))
            except ValueError as exc:
                return web.json_response({"code": "INVALID_REQUEST", "message": str(exc)},
                                         status=400)
            return web.json_response(plants.to_json())

        return web.post("/sim/bills/plant", plant)

    def _order_no(self, value: object) -> str:
        if not isinstance(value, str) or not self._valid_order_no(value):
            raise ValueError(f"{value!r} is not an order number of this rail")
        return value


def _extra_items(value: object) -> list[Mapping[str, object]]:
    if not isinstance(value, list) or not all(isinstance(item, Mapping) for item in value):
        raise ValueError("extra must be a list of {\"out_trade_no\", \"amount\"}")
    return value


def _amount(value: object) -> int:
    if type(value) is not int or not 0 < value <= MAX_PLANTED_AMOUNT:
        raise ValueError("an extra payment's amount must be a positive integer of minor units")
    return value


def _currency(value: object) -> str:
    if not isinstance(value, str) or not is_known(value):
        raise ValueError(f"{value!r} is not an ISO 4217 currency")
    return value


def _delta(value: object) -> int:
    if type(value) is not int or value == 0 or abs(value) > MAX_PLANTED_AMOUNT:
        raise ValueError("an amount_delta must be a non-zero integer of minor units")
    return value
