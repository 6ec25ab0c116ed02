"""The JSON bodies of WeChat Pay Score (微信支付分) service orders, shared by the adapter
and the simulator: requests as the adapter sends them, the order as WeChat shows it
(create, query and complete answers, PAYSCORE.* notifications), states and limits.

Field names are WeChat's own (wechatpay.im `openapi/v3/payscore/serviceorder*`). One
field is the router's addition: `out_trade_no` on complete names the payment the
collection becomes (see the adapter README).
"""

from __future__ import annotations

import enum
import re

import msgspec

from adapters.wire import NonEmptyStr, Shape

__all__ = [
    "CancelAnswer",
    "CancelRequest",
    "Collection",
    "CollectionDetail",
    "CollectionState",
    "CompleteRequest",
    "PostPayment",
    "RiskFund",
    "RiskFundName",
    "ServiceOrder",
    "ServiceOrderRequest",
    "ServiceState",
    "TimeRange",
    "valid_service_order_no",
]

# WeChat allows `|` and `*` too; the router never makes them (the SDK breaks on `|`).
_SERVICE_ORDER_NO_RE = re.compile(r"[0-9A-Za-z_\-]{1,32}")


def valid_service_order_no(value: object) -> bool:
    return isinstance(value, str) and _SERVICE_ORDER_NO_RE.fullmatch(value) is not None


class ServiceState(enum.StrEnum):
    CREATED = "CREATED"  # waiting for the payer to confirm
    DOING = "DOING"  # confirmed (USER_CONFIRM), or completed and collecting (MCH_COMPLETE)
    DONE = "DONE"  # collected
    REVOKED = "REVOKED"  # cancelled
    EXPIRED = "EXPIRED"


class CollectionState(enum.StrEnum):
    USER_PAYING = "USER_PAYING"  # WeChat keeps trying to collect
    USER_PAID = "USER_PAID"


class RiskFundName(enum.StrEnum):
    DEPOSIT = "DEPOSIT"
    ADVANCE = "ADVANCE"
    CASH_DEPOSIT = "CASH_DEPOSIT"
    ESTIMATE_ORDER_COST = "ESTIMATE_ORDER_COST"


# --------------------------------------------------------------------------- requests
class PostPayment(Shape, kw_only=True):
    name: str
    amount: int | None = None
    description: str | None = None
    count: int | None = None


class TimeRange(Shape, kw_only=True):
    start_time: str  # yyyyMMddHHmmss, yyyyMMdd or "OnAccept"
    end_time: str | None = None


class RiskFund(Shape, kw_only=True):
    name: RiskFundName
    amount: int
    description: str | None = None


class ServiceOrderRequest(Shape, kw_only=True):
    out_order_no: str
    appid: str
    service_id: str
    service_introduction: str
    post_payments: list[PostPayment] | None = None
    time_range: TimeRange
    risk_fund: RiskFund
    notify_url: str
    openid: str | None = None
    need_user_confirm: bool  # sent always: omitted, it would be left to WeChat's default


class CompleteRequest(Shape, kw_only=True):
    appid: str
    service_id: str
    post_payments: list[PostPayment]
    total_amount: int
    out_trade_no: str | None = None  # the router's payment number for the collection


class CancelRequest(Shape, kw_only=True):
    appid: str
    service_id: str
    reason: str


# --------------------------------------------------------------------------- answers
class CollectionDetail(Shape, kw_only=True):
    amount: int
    transaction_id: str | None = None
    seq: int | None = None
    paid_type: str | None = None  # NEWTON | MCH
    paid_time: str | None = None


class Collection(Shape, kw_only=True):
    state: CollectionState
    total_amount: int | None = None
    paying_amount: int | None = None
    paid_amount: int | None = None
    details: list[CollectionDetail] = msgspec.field(default_factory=list)


class ServiceOrder(Shape, kw_only=True):
    """A service order as WeChat shows it; only the fields the adapter reads."""

    out_order_no: NonEmptyStr
    state: ServiceState
    state_description: str | None = None  # USER_CONFIRM | MCH_COMPLETE
    order_id: str | None = None
    package: str | None = None  # only in the create answer
    mchid: str | None = None
    appid: str | None = None
    service_id: str | None = None
    risk_fund: RiskFund | None = None
    total_amount: int | None = None
    need_collection: bool | None = None
    collection: Collection | None = None
    out_trade_no: str | None = None  # the collection's payment (notifications, answers)


class CancelAnswer(Shape, kw_only=True):
    out_order_no: NonEmptyStr
    order_id: str | None = None
