"""The WeChat Pay simulator's records of e-invoices, and how WeChat shows them (query
answers, FAPIAO.* notifications, the ledger's `invoices`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from adapters.wechatpay.fapiao_wire import QUANTITY_ONE, FapiaoStatus
from adapters.wechatpay.simulator.records import OrderRecord

__all__ = ["InvoiceRecord", "InvoiceWish", "ItemRecord"]

# The simulated merchant, as the tax system knows it.
SELLER: Final = {"name": "沙箱模拟商户", "taxpayer_id": "91440300MA5SANDBOX",
                 "address": "深圳市南山区沙箱路1号"}
DRAWER: Final = "payrouter"


@dataclass(frozen=True, slots=True)
class ItemRecord:
    """One line of an invoice: `total` includes `tax`, both in fen."""

    tax_code: str
    name: str
    quantity: int  # in 1/10^8, as sent
    total: int
    tax_rate: int  # 1/10000
    tax: int

    def to_json(self) -> dict[str, object]:
        amount = self.total - self.tax
        return {
            "tax_code": self.tax_code, "goods_name": self.name, "quantity": self.quantity,
            "unit_price": amount * QUANTITY_ONE // self.quantity, "amount": amount,
            "tax_amount": self.tax, "total_amount": self.total, "tax_rate": self.tax_rate,
            "tax_prefer_mark": "NO_FAVORABLE", "discount": False,
        }


@dataclass(frozen=True, slots=True)
class InvoiceWish:
    """An invoice as the issue request asks for it (what a repeat must match)."""

    fapiao_id: str
    total: int
    items: tuple[ItemRecord, ...]


@dataclass(slots=True)
class InvoiceRecord:
    fapiao_id: str
    apply_id: str  # the paid order's transaction id
    scope: str  # sub_mchid, or "" for a direct merchant
    order: OrderRecord
    params: tuple[object, ...]  # the whole issue request, emails decrypted
    buyer: tuple[str, str, str, str]  # type, name, taxpayer_id, email
    items: tuple[ItemRecord, ...]
    total: int
    blue_number: str
    blue_check_code: str
    blue_time: str
    blue_code: str = ""  # fully digital (数电) invoices have no code
    status: FapiaoStatus = FapiaoStatus.ISSUED
    red_number: str | None = None
    red_time: str | None = None

    @property
    def tax(self) -> int:
        return sum(item.tax for item in self.items)

    def to_json(self) -> dict[str, object]:
        """The invoice as a query shows it."""
        kind, name, tax_id, _ = self.buyer
        buyer: dict[str, object] = {"type": kind, "name": name}
        if tax_id:
            buyer["taxpayer_id"] = tax_id
        out: dict[str, object] = {
            "fapiao_id": self.fapiao_id,
            "status": self.status.value,
            "blue_fapiao": self._numbered(self.blue_number, self.blue_time),
            "total_amount": self.total,
            "tax_amount": self.tax,
            "amount": self.total - self.tax,
            "seller_information": dict(SELLER),
            "buyer_information": buyer,
            "extra_information": {"drawer": DRAWER},
            "items": [item.to_json() for item in self.items],
        }
        if self.red_number is not None and self.red_time is not None:
            out["red_fapiao"] = self._numbered(self.red_number, self.red_time)
        return out

    def _numbered(self, number: str, time: str) -> dict[str, object]:
        return {"fapiao_code": self.blue_code, "fapiao_number": number,
                "check_code": self.blue_check_code, "password": "", "fapiao_time": time}

    def notice(self) -> dict[str, object]:
        """This invoice's entry in a FAPIAO.* notification."""
        reversed_ = self.status is FapiaoStatus.REVERSED
        return {"fapiao_id": self.fapiao_id, "fapiao_status": self.status.value,
                "card_status": "DISCARDED" if reversed_ else "INSERTED"}

    def ledger_row(self) -> dict[str, object]:
        return {"status": self.status.value, "total": self.total, "tax": self.tax,
                "order": self.order.out_trade_no}
