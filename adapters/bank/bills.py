"""The bank's daily bill, shared by the adapter that reads it and the simulator that writes
it: `GET /v1/bills/{YYYY-MM-DD}`, signed like every bank call, answers JSON lines
(`application/x-ndjson`), one `BillEntry` per payment taken and per refund made that day
(China time). A bank bill needs one call: `BillDownload.url` is not used, and the result
carries the bill at once.
"""

from __future__ import annotations

from datetime import date
from typing import Final, Literal, NoReturn

import msgspec

from adapters.bank import transformers
from adapters.bank.wire import ErrorAnswer
from adapters.base import RailError, RailErrorCode, RailResult, RailStatus
from adapters.commerce_ops import BillDownload, BillLine
from adapters.wire import Malformed, Shape, decode

__all__ = ["BILLS_PATH", "BILL_NOT_FOUND", "CONTENT_TYPE", "BillEntry", "bill_path",
           "bill_result", "bill_success"]

BILLS_PATH: Final = "/v1/bills"
CONTENT_TYPE: Final = "application/x-ndjson"
BILL_NOT_FOUND: Final = "BILL_NOT_FOUND"  # a day still to come


class BillEntry(Shape, kw_only=True):
    """One line of a bill. A refund names the payment it returns (`bank_txn_id`) and
    itself (`refund_no`, `bank_refund_id`); the money a reversal gives back is a refund
    without them."""

    kind: Literal["payment", "refund"] = msgspec.field(name="type")
    order_no: str
    bank_txn_id: str
    amount: int  # minor units, positive
    currency: str
    at: str  # RFC 3339 UTC: when the money moved
    refund_no: str | None = None
    bank_refund_id: str | None = None


_LINES: Final = msgspec.json.Decoder(BillEntry)


def _refuse(message: str, *, param: str) -> NoReturn:
    raise RailError(RailErrorCode.INVALID_REQUEST, message, definitive=True, param=param)


def bill_path(op: BillDownload) -> str:
    try:
        if len(op.date) != 10:
            raise ValueError
        day = date.fromisoformat(op.date)
    except ValueError:
        _refuse("a bill's date is YYYY-MM-DD", param="date")
    return f"{BILLS_PATH}/{day:%Y-%m-%d}"


def bill_success(body: bytes) -> RailResult:
    """A 200 answer: the bill's lines."""
    try:
        entries = _LINES.decode_lines(body)
    except msgspec.DecodeError as exc:
        raise Malformed(str(exc)) from None
    lines = tuple(BillLine(kind=e.kind, rail_order_no=e.order_no, rail_reference=e.bank_txn_id,
                           amount=e.amount, currency=e.currency, rail_refund_no=e.refund_no)
                  for e in entries)
    return RailResult(RailStatus.SUCCEEDED, bill=lines)


def bill_result(op: BillDownload, status: int, body: bytes) -> RailResult:
    """A verified answer to `GET /v1/bills/{date}`."""
    if 200 <= status < 300:
        return bill_success(body)
    if status == 404:
        refusal = decode(body, ErrorAnswer)
        if refusal.code == BILL_NOT_FOUND:
            return RailResult(RailStatus.NOT_FOUND, failure_code=BILL_NOT_FOUND,
                              failure_message=refusal.message or BILL_NOT_FOUND)
    return transformers.refusal_result(op, status, body)
