"""The Alipay simulator's records of trades and their refunds."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from adapters.alipay.protocol import TradeStatus
from adapters.currencies import format_major
from adapters.simkit.snapshot import LedgerRow

if TYPE_CHECKING:
    from adapters.alipay.simulator.abroad import Abroad

PAID = frozenset({TradeStatus.TRADE_SUCCESS, TradeStatus.TRADE_FINISHED})


class Kind(enum.StrEnum):
    PRECREATE = "precreate"
    PAY = "pay"
    CREATE = "create"
    APP = "app"
    WAP = "wap"
    PAGE = "page"
    CANCELLED = "cancelled"  # only known through a cancel that came first


@dataclass(slots=True)
class RefundRecord:
    out_request_no: str
    amount: int
    at: float


@dataclass(slots=True)
class TradeRecord:
    out_trade_no: str
    trade_no: str
    kind: Kind
    fingerprint: tuple[object, ...] | None  # what a repeat must match; None: cancel record
    amount: int
    subject: str
    notify_url: str | None
    created_at: float
    status: TradeStatus = TradeStatus.WAIT_BUYER_PAY
    scanned: bool = True  # a precreate trade exists for queries only once scanned
    buyer_id: str = ""
    qr_code: str | None = None
    charged: int = 0
    charges: int = 0
    refunded: int = 0
    refunds: dict[str, RefundRecord] = field(default_factory=dict)
    paid_at: float | None = None
    closed_at: float | None = None
    currency: str = "CNY"  # the priced currency: every amount above is in its minor units
    abroad: Abroad | None = None  # a cross-border trade (`abroad`)

    def money(self, minor: int) -> str:
        """An amount of this trade as Alipay writes it ("10.00" yuan, "1000" yen)."""
        return format_major(minor, self.currency)

    def ledger_row(self) -> LedgerRow:
        if self.abroad is not None:  # its currency, and the CNY fen its buyer paid
            return LedgerRow(self.status.value, self.charged, self.charges, self.refunded,
                             self.currency, self.abroad.pay_amount or 0)
        return LedgerRow(self.status.value, self.charged, self.charges, self.refunded)
