"""Reconciliation (对账): a rail's bill of one day against the journal.

The bill comes through the rail's own bill API (`BillDownload`: where the bill is, then
the bill). The journal side is every entry, chained or still in an inbox, that names the
rail and falls on that day in China time (the rails cut their bills at midnight
Asia/Shanghai). Payments match on the merchant-side number the rail knows (`rail_no`),
refunds on the refund number; each difference is listed.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, final
from zoneinfo import ZoneInfo

from adapters.commerce_ops import BillLine

CHINA = ZoneInfo("Asia/Shanghai")


class Difference(enum.StrEnum):
    UNKNOWN_HERE = "paid at the rail, unknown here"
    MISSING_FROM_BILL = "known here, missing from the bill"
    AMOUNT_DIFFERS = "amounts differ"


@final
@dataclass(frozen=True, slots=True)
class Mismatch:
    kind: Difference
    what: str  # payment / refund
    number: str  # the rail-side number
    bill_amount: int | None
    journal_amount: int | None
    ref: str = ""  # the router's id, when the journal knows it


def china_day(at_iso: str) -> str:
    when = datetime.fromisoformat(at_iso.replace("Z", "+00:00"))
    return when.astimezone(CHINA).strftime("%Y-%m-%d")


def journal_lines(entries: Iterable[dict[str, Any]], rail: str, day: str
                  ) -> dict[tuple[str, str], tuple[int, str]]:
    """(what, number) → (amount, ref) of the day's journal entries on `rail`."""
    out: dict[tuple[str, str], tuple[int, str]] = {}
    for e in entries:
        # A provider's payments run on a partner instance of the rail (`<rail>~<sp>~<mch>`).
        if str(e.get("rail", "")).split("~", 1)[0] != rail or china_day(e["at"]) != day:
            continue
        if e["kind"] in ("charge", "capture"):
            out[("payment", e["rail_no"])] = (e["amount"], e["ref"])
        elif e["kind"] == "refund":
            out[("refund", e.get("rail_refund_no") or e["rail_no"])] = (e["amount"], e["ref"])
    return out


def bill_lines(bill: Iterable[BillLine]) -> dict[tuple[str, str], int]:
    out: dict[tuple[str, str], int] = {}
    for line in bill:
        number = line.rail_refund_no if line.kind == "refund" and line.rail_refund_no \
            else line.rail_order_no
        out[(line.kind, number)] = out.get((line.kind, number), 0) + line.amount
    return out


def compare(bill: dict[tuple[str, str], int],
            journal: dict[tuple[str, str], tuple[int, str]]) -> list[Mismatch]:
    found = []
    for key in sorted(bill.keys() | journal.keys()):
        what, number = key
        billed = bill.get(key)
        known = journal.get(key)
        if known is None:
            found.append(Mismatch(Difference.UNKNOWN_HERE, what, number, billed, None))
        elif billed is None:
            found.append(Mismatch(Difference.MISSING_FROM_BILL, what, number, None, known[0],
                                  known[1]))
        elif billed != known[0]:
            found.append(Mismatch(Difference.AMOUNT_DIFFERS, what, number, billed, known[0],
                                  known[1]))
    return found
