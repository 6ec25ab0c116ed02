"""Gateway answers before signing, the refusal that carries one, and how a trade shows in
answers and notifications."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import final

from adapters.alipay import protocol
from adapters.alipay.protocol import Code, SubCode
from adapters.alipay.simulator.abroad import amount_fields
from adapters.alipay.simulator.records import RefundRecord, TradeRecord

ERROR_KEY = "error_response"
_MESSAGES = {
    Code.SUCCESS: "Success",
    Code.IN_PROGRESS: "order success pay inprocess",
    Code.UNKNOWN_ERROR: "Service Currently Unavailable",
    Code.AUTH_TOKEN_PROBLEM: "Insufficient Token Permissions",
    Code.MISSING_PARAMETER: "Missing Required Arguments",
    Code.INVALID_PARAMETER: "Invalid Arguments",
    Code.BUSINESS_FAILED: "Business Failed",
}


@final
@dataclass(frozen=True, slots=True)
class Answer:
    """A gateway answer before signing. `withhold`: applied, but never answered."""

    payload: Mapping[str, object]
    withhold: bool = False
    key: str | None = None  # `error_response` for gateway-level failures


class Refused(Exception):
    """A call turned down before anything was applied; `answer` answers it."""

    def __init__(self, answer: Answer) -> None:
        super().__init__(answer.payload.get("sub_code"))
        self.answer = answer


def ok(**fields: object) -> Answer:
    return Answer({"code": Code.SUCCESS.value, "msg": _MESSAGES[Code.SUCCESS], **fields})


def failure(code: Code, sub_code: str, sub_msg: str, *, key: str | None = None) -> Answer:
    payload = {"code": code.value, "msg": _MESSAGES[code], "sub_code": sub_code, "sub_msg": sub_msg}
    return Answer(payload, key=key)


def business(sub: SubCode, sub_msg: str) -> Answer:
    return failure(Code.BUSINESS_FAILED, sub.value, sub_msg)


def invalid(sub_msg: str) -> Refused:
    return Refused(business(SubCode.INVALID_PARAMETER, sub_msg))


def in_progress(trade: TradeRecord) -> Answer:
    return Answer(
        {
            "code": Code.IN_PROGRESS.value,
            "msg": _MESSAGES[Code.IN_PROGRESS],
            "out_trade_no": trade.out_trade_no,
            "trade_no": trade.trade_no,
        }
    )


# --------------------------------------------------------------------------- trade views
def buyer_fields(trade: TradeRecord) -> dict[str, str]:
    if not trade.buyer_id:
        return {}
    return {"buyer_user_id": trade.buyer_id, "buyer_logon_id": f"159****{trade.buyer_id[-4:]}"}


def paid_answer(trade: TradeRecord) -> dict[str, object]:
    paid = trade.money(trade.charged)
    return {
        "code": Code.SUCCESS.value,
        "msg": _MESSAGES[Code.SUCCESS],
        "out_trade_no": trade.out_trade_no,
        "trade_no": trade.trade_no,
        **buyer_fields(trade),
        "total_amount": trade.money(trade.amount),
        "receipt_amount": paid,
        "buyer_pay_amount": paid,
        "gmt_payment": protocol.format_time(trade.paid_at or time.time()),
        "fund_bill_list": [{"fund_channel": "ALIPAYACCOUNT", "amount": paid}],
        **amount_fields(trade),
    }


def trade_view(trade: TradeRecord) -> dict[str, object]:
    view: dict[str, object] = {
        "out_trade_no": trade.out_trade_no,
        "trade_no": trade.trade_no,
        "trade_status": trade.status.value,
        **buyer_fields(trade),
    }
    if trade.fingerprint is not None:
        view["total_amount"] = trade.money(trade.amount)
    if trade.charged:
        paid = trade.money(trade.charged)
        view["buyer_pay_amount"] = view["receipt_amount"] = paid
        view["send_pay_date"] = protocol.format_time(trade.paid_at or time.time())
        view["fund_bill_list"] = [{"fund_channel": "ALIPAYACCOUNT", "amount": paid}]
    return {**view, **amount_fields(trade)}


def notification_fields(
    trade: TradeRecord, refund: RefundRecord | None, *, app_id: str, seller_id: str
) -> dict[str, str]:
    """The unsigned fields of a `trade_status_sync` notification about `trade`."""
    fields = {
        "notify_type": "trade_status_sync",
        "notify_id": uuid.uuid4().hex,
        "app_id": app_id,
        "charset": protocol.CHARSET,
        "version": "1.0",
        "sign_type": protocol.SIGN_TYPE,
        "trade_no": trade.trade_no,
        "out_trade_no": trade.out_trade_no,
        "buyer_id": trade.buyer_id,
        "buyer_logon_id": buyer_fields(trade).get("buyer_logon_id", ""),
        "seller_id": seller_id,
        "trade_status": trade.status.value,
        "total_amount": trade.money(trade.amount),
        "subject": trade.subject,
        "gmt_create": protocol.format_time(trade.created_at),
        **_paid_fields(trade),
        **amount_fields(trade),
    }
    if refund is not None:
        fields["out_biz_no"] = refund.out_request_no
        fields["refund_fee"] = trade.money(trade.refunded)
        fields["gmt_refund"] = protocol.format_time(refund.at)
    if trade.closed_at is not None:
        fields["gmt_close"] = protocol.format_time(trade.closed_at)
    # Alipay leaves empty fields out; the Python SDK's verify would choke on them.
    return {k: v for k, v in fields.items() if v}


def _paid_fields(trade: TradeRecord) -> dict[str, str]:
    if not trade.charged:
        return {}
    paid = trade.money(trade.charged)
    return {
        "receipt_amount": paid,
        "invoice_amount": paid,
        "buyer_pay_amount": paid,
        "point_amount": "0.00",
        "gmt_payment": protocol.format_time(trade.paid_at or time.time()),
        "fund_bill_list": json.dumps(
            [{"amount": paid, "fundChannel": "ALIPAYACCOUNT"}], separators=(",", ":")
        ),
    }
