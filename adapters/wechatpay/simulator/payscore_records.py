"""A Pay Score service order as the WeChat Pay simulator keeps it, and how WeChat shows it
(create, query, complete and cancel answers, PAYSCORE.* notifications, the ledger)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from adapters.wechatpay.payscore_wire import ServiceState
from adapters.wechatpay.simulator.records import CN, OrderRecord


@dataclass(slots=True)
class ServiceOrderRecord:
    no: str  # out_order_no
    params: Mapping[str, object]  # the create body: a repeat must match it exactly
    appid: str
    mchid: str
    service_id: str
    introduction: str
    risk_name: str
    risk_amount: int
    notify_url: str
    openid: str | None
    score: int | None  # the payer's credit score, once the payer is known
    order_id: str
    package: str  # what the payer's WeChat opens to confirm
    state: ServiceState = ServiceState.CREATED
    state_description: str | None = None  # USER_CONFIRM while DOING
    cancel_reason: str | None = None
    completion: Mapping[str, object] | None = None  # the complete body, once completed
    total_amount: int | None = None
    released: int = 0  # what was held and given back (the rest of the risk fund)
    collection: OrderRecord | None = None  # the payment WeChat collected

    def created(self) -> dict[str, object]:
        """The create answer (and an identical repeat's): the order and its `package`."""
        return {**self.to_json(), "package": self.package}

    def cancelled(self) -> dict[str, object]:
        return {"appid": self.appid, "mchid": self.mchid, "out_order_no": self.no,
                "service_id": self.service_id, "order_id": self.order_id}

    def to_json(self) -> dict[str, object]:
        """The order as a query (or a complete answer) shows it."""
        out: dict[str, object] = {
            "appid": self.appid, "mchid": self.mchid, "out_order_no": self.no,
            "service_id": self.service_id, "service_introduction": self.introduction,
            "state": self.state.value, "order_id": self.order_id,
            "risk_fund": {"name": self.risk_name, "amount": self.risk_amount},
            "notify_url": self.notify_url,
        }  # fmt: skip
        if self.state_description is not None:
            out["state_description"] = self.state_description
        for key in ("time_range", "post_payments", "attach"):
            if key in self.params:
                out[key] = self.params[key]
        if self.openid is not None:
            out["openid"] = self.openid
        if self.completion is not None:
            out["post_payments"] = self.completion["post_payments"]
            out["total_amount"] = self.total_amount
            out["need_collection"] = bool(self.total_amount)
        if self.collection is not None:
            out["out_trade_no"] = self.collection.out_trade_no
            out["collection"] = self._collection(self.collection)
        return out

    def notification(self) -> dict[str, object]:
        """The plaintext of PAYSCORE.USER_CONFIRM and PAYSCORE.USER_PAID."""
        return self.to_json()

    @staticmethod
    def _collection(payment: OrderRecord) -> dict[str, object]:
        paid_time = datetime.fromisoformat(payment.success_time or "").astimezone(CN)
        return {
            "state": "USER_PAID",
            "total_amount": payment.amount,
            "paying_amount": 0,
            "paid_amount": payment.charged,
            "details": [{
                "seq": 1, "amount": payment.charged, "paid_type": "NEWTON",
                "paid_time": f"{paid_time:%Y%m%d%H%M%S}",
                "transaction_id": payment.transaction_id,
            }],
        }  # fmt: skip

    def ledger_row(self) -> dict[str, object]:
        """Pay Score freezes nothing: `frozen` stays 0, whatever the risk fund."""
        captured = self.collection.charged if self.collection is not None else 0
        return {"status": self.state.value, "amount": self.risk_amount, "frozen": 0,
                "captured": captured, "released": self.released, "score": self.score,
                "deposit_free": True}
