"""Orders and refunds of the WeChat Pay simulator's Global API, and how WeChat shows them:
priced in a foreign currency, paid in CNY at the rate fixed when the order was opened.

The payer pays round-half-up(total x rate x 10^(2 - exponent)) fen, in `Decimal` only; the
rate is reported as an integer, rate x 10^8 (the `Rates` table keeps at most 8 decimals,
so that is exact).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Final

from adapters.currencies import exponent
from adapters.simkit.snapshot import LedgerRow
from adapters.wechatpay.global_wire import RATE_SCALE
from adapters.wechatpay.simulator.records import OrderRecord, RefundRecord

__all__ = ["GlobalOrderRecord", "GlobalRefundRecord", "payer_fen", "pricing"]

PAYER_CURRENCY: Final = "CNY"
RATE_TYPE: Final = "SETTLEMENT_RATE"


def payer_fen(amount: int, currency: str, cny_per_unit: Decimal) -> int:
    """`amount` minor units of `currency` in CNY fen, rounded half up."""
    fen = (Decimal(amount) * cny_per_unit).scaleb(2 - exponent(currency))
    return int(fen.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def pricing(order: OrderRecord) -> tuple[str, Decimal]:
    """An order's priced currency and its CNY rate (domestic orders: CNY at 1)."""
    if isinstance(order, GlobalOrderRecord):
        return order.currency, order.rate
    return PAYER_CURRENCY, Decimal(1)


def _rate_json(rate: Decimal) -> dict[str, object]:
    return {"type": RATE_TYPE, "rate": int(rate.scaleb(RATE_SCALE))}


@dataclass(slots=True)
class GlobalOrderRecord(OrderRecord):
    """An order of the Global API: `amount` is in `currency`'s minor units."""

    currency: str = PAYER_CURRENCY
    rate: Decimal = Decimal(1)  # CNY per major unit, fixed when the order was opened

    @property
    def payer_total(self) -> int:
        return payer_fen(self.amount, self.currency, self.rate)

    def transaction(self) -> dict[str, object]:
        out = OrderRecord.transaction(self)
        amount: dict[str, object] = {"total": self.amount, "currency": self.currency}
        transaction_id = out.pop("transaction_id", None)
        if transaction_id is not None:
            out["id"] = transaction_id  # the Global API's name for it
            amount.update(payer_total=self.payer_total, payer_currency=PAYER_CURRENCY,
                          exchange_rate=_rate_json(self.rate))
        out["amount"] = amount
        return out

    def ledger_row(self) -> LedgerRow:
        return LedgerRow(self.state.value, self.charged, self.charges, self.refunded,
                         currency=self.currency,
                         payer_total=self.payer_total if self.charges else 0)


@dataclass(slots=True)
class GlobalRefundRecord(RefundRecord):
    """A refund of the Global API, in the order's currency and back in CNY to the payer."""

    def _amount(self) -> dict[str, object]:
        currency, rate = pricing(self.order)
        return {
            "refund": self.amount,
            "total": self.order.amount,
            "currency": currency,
            "payer_refund": payer_fen(self.amount, currency, rate),
            "payer_currency": PAYER_CURRENCY,
            "exchange_rate": _rate_json(rate),
        }

    def created(self) -> dict[str, object]:
        """The create answer: accepted, without a status (as documented)."""
        return {"id": self.refund_id, "out_refund_no": self.key[1],
                "create_time": self.create_time, "amount": self._amount()}

    def to_json(self) -> dict[str, object]:
        """The refund as a query shows it."""
        out: dict[str, object] = {
            "id": self.refund_id,
            "out_refund_no": self.key[1],
            "transaction_id": self.order.transaction_id,
            "out_trade_no": self.order.out_trade_no,
            "channel": "ORIGINAL",
            "recv_account": "支付用户零钱",
            "create_time": self.create_time,
            "status": self.status.value,
            "amount": self._amount(),
        }
        if self.success_time is not None:
            out["success_time"] = self.success_time
        return out

    def notification(self) -> dict[str, object]:
        """The plaintext of REFUND.SUCCESS (the merged domestic and global shape)."""
        return {
            "mchid": self.order.ident["mchid"],
            "transaction_id": self.order.transaction_id,
            "out_trade_no": self.order.out_trade_no,
            "refund_id": self.refund_id,
            "out_refund_no": self.key[1],
            "refund_status": self.status.value,
            "success_time": self.success_time,
            "user_received_account": "支付用户零钱",
            "amount": self._amount(),
        }
