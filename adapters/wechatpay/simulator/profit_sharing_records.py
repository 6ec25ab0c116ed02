"""Split orders, their receivers and returns as the WeChat Pay simulator keeps them, and
how WeChat shows them (create and query answers, returns, the ledger's `splits`)."""

from __future__ import annotations

from dataclasses import dataclass

from adapters.wechatpay.profit_sharing import (
    ReceiverResult,
    ReceiverType,
    ReturnResult,
    SplitState,
)
from adapters.wechatpay.simulator.records import OrderRecord


@dataclass(slots=True)
class ReceiverRecord:
    type: ReceiverType
    account: str
    amount: int
    description: str
    detail_id: str
    create_time: str
    result: ReceiverResult = ReceiverResult.PENDING
    fail_reason: str | None = None
    finish_time: str | None = None
    returned: int = 0

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "type": self.type.value, "account": self.account, "amount": self.amount,
            "description": self.description, "result": self.result.value,
            "detail_id": self.detail_id, "create_time": self.create_time,
        }  # fmt: skip
        if self.finish_time is not None:
            out["finish_time"] = self.finish_time
        if self.fail_reason is not None:
            out["fail_reason"] = self.fail_reason
        return out


@dataclass(slots=True)
class SplitRecord:
    key: tuple[str, str]  # (sub_mchid or "", out_order_no)
    params: tuple[object, ...]  # what a repeat must match (names decrypted)
    order: OrderRecord
    order_id: str
    receivers: list[ReceiverRecord]
    state: SplitState = SplitState.PROCESSING

    @property
    def amount(self) -> int:
        return sum(r.amount for r in self.receivers)

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "transaction_id": self.order.transaction_id, "out_order_no": self.key[1],
            "order_id": self.order_id, "state": self.state.value,
            "receivers": [r.to_json() for r in self.receivers],
        }  # fmt: skip
        return {"sub_mchid": self.key[0], **out} if self.key[0] else out

    def ledger_row(self) -> dict[str, object]:
        sub, no = self.order.key
        return {
            "order": f"{sub}/{no}" if sub else no,
            "amount": self.amount,
            "status": self.state.value,
            "receivers": [{"type": r.type.value, "account": r.account, "amount": r.amount,
                           "result": r.result.value, "returned": r.returned}
                          for r in self.receivers],
            "returned": sum(r.returned for r in self.receivers),
        }


@dataclass(slots=True)
class ReturnRecord:
    key: tuple[str, str]  # (sub_mchid or "", out_return_no)
    params: tuple[object, ...]
    split: SplitRecord
    return_id: str
    return_mchid: str
    amount: int
    description: str
    create_time: str
    result: ReturnResult = ReturnResult.SUCCESS

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "order_id": self.split.order_id, "out_order_no": self.split.key[1],
            "out_return_no": self.key[1], "return_id": self.return_id,
            "return_mchid": self.return_mchid, "amount": self.amount,
            "description": self.description, "result": self.result.value,
            "create_time": self.create_time, "finish_time": self.create_time,
        }  # fmt: skip
        return {"sub_mchid": self.key[0], **out} if self.key[0] else out
