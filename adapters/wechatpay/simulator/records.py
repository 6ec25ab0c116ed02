"""The WeChat Pay simulator's records of orders, refunds and transfer bills, and how WeChat
shows them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from adapters.simkit.payees import PayoutRow
from adapters.simkit.replies import Reply
from adapters.simkit.snapshot import LedgerRow
from adapters.wechatpay.protocol import RefundStatus, TradeState
from adapters.wechatpay.wire import TransferBillState

CN = timezone(timedelta(hours=8))
KINDS = ("codepay", "native", "jsapi", "app", "h5")
_TRADE_TYPES: Mapping[str, str] = {
    "codepay": "MICROPAY",
    "native": "NATIVE",
    "jsapi": "JSAPI",
    "app": "APP",
    "h5": "MWEB",
}
_DESCS: Mapping[TradeState, str] = {
    TradeState.NOTPAY: "订单未支付",
    TradeState.USERPAYING: "需要用户输入支付密码",
    TradeState.SUCCESS: "支付成功",
    TradeState.REFUND: "转入退款",
    TradeState.PAYERROR: "支付失败",
    TradeState.CLOSED: "订单已关闭",
    TradeState.REVOKED: "订单已撤销",
}


def now_text() -> str:
    return datetime.now(CN).isoformat(timespec="seconds")


@dataclass(slots=True)
class OrderRecord:
    key: tuple[str, str]  # (sub_mchid or "", out_trade_no)
    kind: str  # one of KINDS
    params: Mapping[str, object]  # the whole request body: repeats must match it exactly
    ident: Mapping[str, str]  # appid/mchid, or sp_appid/sp_mchid/sub_mchid/sub_appid
    amount: int
    notify_url: str | None
    payer: dict[str, str] = field(default_factory=dict)
    state: TradeState = TradeState.NOTPAY
    state_desc: str | None = None
    transaction_id: str | None = None
    prepay: Mapping[str, str] | None = None  # {prepay_id} | {code_url} | {h5_url}
    refusal: Reply | None = None  # codepay declines are answered the same on a repeat
    success_time: str | None = None
    charged: int = 0
    charges: int = 0
    refunded: int = 0
    refund_reserved: int = 0  # refunded + refunds still processing
    refund_count: int = 0

    @property
    def out_trade_no(self) -> str:
        return self.key[1]

    def transaction(self) -> dict[str, object]:
        amount: dict[str, object] = {"total": self.amount, "currency": "CNY"}
        out: dict[str, object] = {
            **self.ident,
            "out_trade_no": self.out_trade_no,
            "trade_type": _TRADE_TYPES[self.kind],
            "trade_state": self.state.value,
            "trade_state_desc": self.state_desc or _DESCS[self.state],
            "amount": amount,
        }
        if self.transaction_id is not None:
            out["transaction_id"] = self.transaction_id
            out["bank_type"] = "OTHERS"
            out["success_time"] = self.success_time
            amount.update(payer_total=self.charged, payer_currency="CNY")
        if self.payer:
            out["payer"] = dict(self.payer)
        if isinstance(self.params.get("attach"), str):
            out["attach"] = self.params["attach"]
        return out

    def ledger_row(self) -> LedgerRow:
        return LedgerRow(self.state.value, self.charged, self.charges, self.refunded)


@dataclass(slots=True)
class RefundRecord:
    key: tuple[str, str]  # (sub_mchid or "", out_refund_no)
    params: tuple[object, ...]
    order: OrderRecord
    refund_id: str
    amount: int
    notify_url: str | None
    create_time: str
    status: RefundStatus = RefundStatus.PROCESSING
    success_time: str | None = None

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "refund_id": self.refund_id,
            "out_refund_no": self.key[1],
            "transaction_id": self.order.transaction_id,
            "out_trade_no": self.order.out_trade_no,
            "channel": "ORIGINAL",
            "user_received_account": "支付用户零钱",
            "create_time": self.create_time,
            "status": self.status.value,
            "funds_account": "AVAILABLE",
            "amount": self._amount(),
        }
        if self.success_time is not None:
            out["success_time"] = self.success_time
        return out

    def _amount(self) -> dict[str, object]:
        total = self.order.amount
        return {
            "total": total,
            "refund": self.amount,
            "payer_total": total,
            "payer_refund": self.amount,
            "settlement_total": total,
            "settlement_refund": self.amount,
            "discount_refund": 0,
            "currency": "CNY",
        }

    def notification(self) -> dict[str, object]:
        ident = self.order.ident
        owner = (
            {"sp_mchid": ident["sp_mchid"], "sub_mchid": ident["sub_mchid"]}
            if "sub_mchid" in ident
            else {"mchid": ident["mchid"]}
        )
        amount = self._amount()
        return {
            **owner,
            "transaction_id": self.order.transaction_id,
            "out_trade_no": self.order.out_trade_no,
            "refund_id": self.refund_id,
            "out_refund_no": self.key[1],
            "refund_status": self.status.value,
            "success_time": self.success_time,
            "user_received_account": "支付用户零钱",
            "amount": {k: amount[k] for k in ("total", "refund", "payer_total", "payer_refund")},
        }


@dataclass(slots=True)
class BillRecord:
    """A transfer bill (a payout to a payee's balance) of the simulated merchant."""

    out_bill_no: str
    params: tuple[object, ...]  # what a repeat must match (the name decrypted, not its cipher)
    mchid: str
    appid: str
    openid: str
    amount: int
    remark: str
    notify_url: str | None
    transfer_bill_no: str
    package_info: str  # what the payee's WeChat opens to confirm
    create_time: str
    update_time: str
    state: TransferBillState = TransferBillState.ACCEPTED
    fail_reason: str | None = None
    paid: int = 0
    payouts: int = 0  # how many times money went to the payee: never above 1

    def created(self) -> dict[str, object]:
        """The answer of the create call (and of an identical repeat)."""
        out: dict[str, object] = {
            "out_bill_no": self.out_bill_no,
            "transfer_bill_no": self.transfer_bill_no,
            "create_time": self.create_time,
            "state": self.state.value,
        }
        if self.fail_reason is not None:
            out["fail_reason"] = self.fail_reason
        if self.state is TransferBillState.WAIT_USER_CONFIRM:
            out["package_info"] = self.package_info
        return out

    def cancelled(self) -> dict[str, object]:
        return {
            "out_bill_no": self.out_bill_no,
            "transfer_bill_no": self.transfer_bill_no,
            "state": self.state.value,
            "update_time": self.update_time,
        }

    def to_json(self) -> dict[str, object]:
        """The bill as a query shows it."""
        return {**self.notification(), "appid": self.appid, "transfer_remark": self.remark}

    def notification(self) -> dict[str, object]:
        """The plaintext of MCHTRANSFER.BILL.FINISHED."""
        out: dict[str, object] = {
            "mch_id": self.mchid,
            "out_bill_no": self.out_bill_no,
            "transfer_bill_no": self.transfer_bill_no,
            "state": self.state.value,
            "transfer_amount": self.amount,
            "openid": self.openid,
            "create_time": self.create_time,
            "update_time": self.update_time,
        }
        if self.fail_reason is not None:
            out["fail_reason"] = self.fail_reason
        return out

    def ledger_row(self) -> PayoutRow:
        return PayoutRow(self.state.value, self.amount, self.openid, self.paid, self.payouts)
