"""The bank simulator's daily bill: `GET /v1/bills/{YYYY-MM-DD}` (signed both ways, faults
apply) lists, as JSON lines (`adapters.bank.bills`), what the ledger holds for the day in
China time: a payment line per order charged that day, a refund line per refund settled
that day and one for the money a reversal gave back. The differences planted by
`POST /sim/bills/plant` (`adapters.simkit.bill_plants`) are applied as it is written.

Today's bill is served so far as it goes; a day still to come is 404 `BILL_NOT_FOUND`,
a malformed date 400 `INVALID_REQUEST`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from datetime import time as day_time
from typing import TYPE_CHECKING, final

import msgspec
from aiohttp import web

from adapters.bank import protocol
from adapters.bank.bills import BILL_NOT_FOUND, BILLS_PATH, CONTENT_TYPE, BillEntry
from adapters.bank.simulator.ledger import Ledger
from adapters.simkit.bill_plants import CHINA_TZ, BillPlants, bill_day, china_day, planted
from adapters.simkit.replies import Reply, error

if TYPE_CHECKING:
    from adapters.bank.simulator.runtime import Runtime

__all__ = ["BankBills"]

_TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"  # the ledger's times (records.now_text)


@final
@dataclass(frozen=True, slots=True)
class _Lines:
    """A bill before signing."""

    body: bytes
    withhold: bool = False


def _day_of(text: str) -> date:
    return china_day(datetime.strptime(text, _TIME_FORMAT).replace(tzinfo=UTC).timestamp())


@final
class BankBills:
    """The bill of any day, and its plants; every method is synchronous."""

    __slots__ = ("_ledger", "_serial", "plants")

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger
        self._serial = 0
        self.plants = BillPlants(protocol.valid_order_no)

    def bill(self, day_text: str) -> Reply | _Lines:
        try:
            day = bill_day(day_text)
        except ValueError:
            return error(400, "INVALID_REQUEST", "the date must be YYYY-MM-DD")
        if day > china_day(time.time()):
            return error(404, BILL_NOT_FOUND, "there is no bill for a day still to come")
        entries = planted(sorted(self._entries(day), key=lambda e: e.at), self.plants.of(day),
                          extra=lambda no, amount, currency: self._extra(day, no, amount,
                                                                         currency),
                          with_amount=lambda e, amount: msgspec.structs.replace(e, amount=amount))
        return _Lines(b"".join(msgspec.json.encode(e) + b"\n" for e in entries))

    def _entries(self, day: date) -> Iterator[BillEntry]:
        orders = {order.order_no: order for order in self._ledger.orders()}
        refunded: dict[str, int] = {}
        for refund in self._ledger.refunds():
            refunded[refund.order_no] = refunded.get(refund.order_no, 0) + refund.amount
            if refund.settled_at is not None and _day_of(refund.settled_at) == day:
                order = orders[refund.order_no]
                yield BillEntry(kind="refund", order_no=order.order_no,
                                bank_txn_id=order.bank_txn_id, amount=refund.amount,
                                currency=order.currency, at=refund.settled_at,
                                refund_no=refund.refund_no, bank_refund_id=refund.bank_refund_id)
        for order in orders.values():
            if order.charges and order.paid_at is not None and _day_of(order.paid_at) == day:
                yield BillEntry(kind="payment", order_no=order.order_no,
                                bank_txn_id=order.bank_txn_id, amount=order.charged,
                                currency=order.currency, at=order.paid_at)
            given_back = order.charged - refunded.get(order.order_no, 0)
            if order.reversed_at is not None and given_back > 0 \
                    and _day_of(order.reversed_at) == day:
                yield BillEntry(kind="refund", order_no=order.order_no,
                                bank_txn_id=order.bank_txn_id, amount=given_back,
                                currency=order.currency, at=order.reversed_at)

    def _extra(self, day: date, no: str, amount: int, currency: str) -> BillEntry:
        self._serial += 1
        noon = datetime.combine(day, day_time(12), CHINA_TZ).astimezone(UTC)
        txn_id = f"BT{day:%Y%m%d}9{self._serial:011d}"  # never one of the ledger's
        return BillEntry(kind="payment", order_no=no, bank_txn_id=txn_id, amount=amount,
                         currency=currency, at=noon.strftime(_TIME_FORMAT))

    def routes(self, sim: Runtime) -> list[web.RouteDef]:
        """`GET /v1/bills/{date}`, signed like every bank call, and the plant control."""

        async def get_bill(request: web.Request) -> web.StreamResponse:
            raw = await request.read()
            if not sim.authentic(request, raw):
                return sim.answer(error(401, "SIGNATURE_INVALID",
                                        "signature, merchant or timestamp rejected"))
            return await sim.perform(
                request, lambda: self.bill(request.match_info["date"]),
                lambda answer: _signed(sim, answer),
                lambda: sim.answer(error(500, "SYSTEM_ERROR", "temporary failure")))

        return [web.get(BILLS_PATH + "/{date}", get_bill), self.plants.route()]


def _signed(sim: Runtime, answer: Reply | _Lines) -> web.Response:
    if isinstance(answer, Reply):
        return sim.answer(answer)
    headers = protocol.sign_response(sim.credentials.hmac_key, 200, answer.body, now=time.time())
    headers["Content-Type"] = CONTENT_TYPE
    return web.Response(status=200, body=answer.body, headers=headers)
