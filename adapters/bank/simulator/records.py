"""The bank simulator's records of orders and refunds, and how they are shown."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from adapters.bank.protocol import OrderStatus, RefundStatus
from adapters.simkit.snapshot import LedgerRow


def now_text() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(slots=True)
class OrderRecord:
    order_no: str
    bank_txn_id: str
    params: tuple[object, ...] | None  # None: only known through a reversal
    status: OrderStatus
    amount: int
    currency: str
    created_at: str
    qr_code: str | None = None
    notify_url: str | None = None
    charged: int = 0
    charges: int = 0
    refunded: int = 0
    refund_reserved: int = 0  # refunded + refunds still processing
    paid_at: str | None = None
    failure_code: str | None = None
    reversed_at: str | None = None  # a paid order reversed: its money went back then

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "order_no": self.order_no,
            "bank_txn_id": self.bank_txn_id,
            "status": self.status.value,
            "amount": self.amount,
            "currency": self.currency,
            "charged": self.charged,
            "refunded": self.refunded,
            "created_at": self.created_at,
        }
        if self.qr_code is not None:
            out["qr_code"] = self.qr_code
        if self.paid_at is not None:
            out["paid_at"] = self.paid_at
        if self.failure_code is not None:
            out["failure_code"] = self.failure_code
        return out

    def ledger_row(self) -> LedgerRow:
        return LedgerRow(self.status.value, self.charged, self.charges, self.refunded)


@dataclass(slots=True)
class RefundRecord:
    refund_no: str
    order_no: str
    amount: int
    bank_refund_id: str
    notify_url: str | None
    status: RefundStatus = RefundStatus.PROCESSING
    settled_at: str | None = None  # when the money went back

    def to_json(self) -> dict[str, object]:
        return {
            "refund_no": self.refund_no,
            "order_no": self.order_no,
            "amount": self.amount,
            "status": self.status.value,
            "bank_refund_id": self.bank_refund_id,
        }
