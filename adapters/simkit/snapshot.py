"""The ledger every simulator shows at `GET /sim/ledger` (SANDBOX.md, "Ledger"): per order
its status and the money taken. `charges` above 1 would be a double charge. A cross-border
order's row also names its priced `currency` (its amounts are in that currency's minor
units) and `payer_total`, what the payer paid in CNY fen."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import final


@final
@dataclass(frozen=True, slots=True)
class LedgerRow:
    status: str  # as the rail names it
    charged: int  # minor units taken from the payer
    charges: int  # how many times money was taken
    refunded: int  # minor units given back
    currency: str | None = None  # cross-border only: the priced currency
    payer_total: int | None = None  # cross-border only: CNY fen the payer paid


def ledger_snapshot(rows: Mapping[str, LedgerRow]) -> dict[str, object]:
    orders = {
        key: {
            "status": row.status,
            "charged": row.charged,
            "charges": row.charges,
            "refunded": row.refunded,
            **_cross_border(row),
        }
        for key, row in rows.items()
    }
    totals = {
        "orders": len(rows),
        "charged": sum(row.charged for row in rows.values()),
        "charges": sum(row.charges for row in rows.values()),
        "refunded": sum(row.refunded for row in rows.values()),
    }
    return {"orders": orders, "totals": totals}


def _cross_border(row: LedgerRow) -> dict[str, object]:
    if row.currency is None:
        return {}
    return {"currency": row.currency, "payer_total": row.payer_total}
