"""What Alipay's fund authorisation (资金授权, pre-authorisation) exchanges: the in-person
freeze (`alipay.fund.auth.order.freeze`), the online freeze signed into an order string
(`alipay.fund.auth.order.app.freeze`), the unfreeze, the detail query and the freeze
notification, with their statuses and sub_codes. A capture is `alipay.trade.pay` naming the
`auth_no` (`CaptureBiz`).

Shapes only, as in `wire`, so the adapter and the simulator read and write the same thing.
Like the transfer API, the fund API's sub_codes carry no `ACQ.` prefix; a capture's do.
"""

from __future__ import annotations

import enum

import msgspec

from adapters.alipay.wire import Answer, Method, OptionalYuan
from adapters.wire import NonEmptyStr, Shape

IN_PERSON_PRODUCT = "PRE_AUTH"  # the in-person freeze (the SDK: 当面资金预授权)
ONLINE_PRODUCT = "PRE_AUTH_ONLINE"  # the online freeze (the SDK: 支付宝预授权)
CAPTURE_PRODUCT = IN_PERSON_PRODUCT  # what a capture names (see README: unconfirmed)
FREEZE_NOTIFY_TYPE = "fund_auth_freeze"
CREDIT_AUTH = "CREDIT_AUTH"  # `pre_auth_type` of a deposit-free (credit) authorisation
# Where the router's minimum credit score travels: a key of `extra_param.creditExtInfo`,
# the JSON that the merchant agrees with Zhima credit (see README).
MIN_SCORE_KEY = "minCreditScore"
TITLE_MAX = 100
REMARK_MAX = 100
TIMEOUT_MAX_MINUTES = 15 * 24 * 60  # the gateway takes 1m..15d

FUND_AUTH_METHODS = frozenset({
    Method.AUTH_FREEZE, Method.AUTH_APP_FREEZE, Method.AUTH_UNFREEZE, Method.AUTH_QUERY,
})


class AuthCodeType(enum.StrEnum):
    BAR_CODE = "bar_code"
    SECURITY_CODE = "security_code"  # a face payment's `fp…` code


class FundOperationStatus(enum.StrEnum):
    """The `status` of one fund operation (a freeze, an unfreeze, a pay)."""

    INIT = "INIT"  # waiting for the payer
    SUCCESS = "SUCCESS"
    CLOSED = "CLOSED"


class AuthOrderStatus(enum.StrEnum):
    """The `order_status` of an authorisation in the detail query."""

    INIT = "INIT"  # not authorised yet
    AUTHORIZED = "AUTHORIZED"  # something is held
    FINISH = "FINISH"  # ended after a capture: nothing held any more
    CLOSED = "CLOSED"  # ended without a capture (declined, released, expired)


class OperationType(enum.StrEnum):
    FREEZE = "FREEZE"
    UNFREEZE = "UNFREEZE"
    PAY = "PAY"


class ConfirmMode(enum.StrEnum):
    COMPLETE = "COMPLETE"  # the capture ends the authorisation: the rest is released
    NOT_COMPLETE = "NOT_COMPLETE"  # the rest stays held for later captures or a release


class FundAuthSubCode(enum.StrEnum):
    """The `sub_code`s of a 40004 fund-auth answer the adapter tells apart."""

    SYSTEM_ERROR = "SYSTEM_ERROR"
    ILLEGAL_ARGUMENT = "ILLEGAL_ARGUMENT"
    AUTH_ORDER_NOT_EXIST = "AUTH_ORDER_NOT_EXIST"
    AUTH_OPERATION_NOT_EXIST = "AUTH_OPERATION_NOT_EXIST"
    PAYER_BALANCE_NOT_ENOUGH = "PAYER_BALANCE_NOT_ENOUGH"  # the freeze is declined
    REQUEST_AMOUNT_EXCEED = "REQUEST_AMOUNT_EXCEED"  # an unfreeze above what is held
    PAYMENT_INFO_INCONSISTENCY = "PAYMENT_INFO_INCONSISTENCY"  # number reused, other params


class CaptureSubCode(enum.StrEnum):
    """The `sub_code`s of a 40004 capture (`alipay.trade.pay` with `auth_no`) that the
    adapter tells apart; the others are read as unknown outcomes."""

    SYSTEM_ERROR = "ACQ.SYSTEM_ERROR"
    TRADE_HAS_SUCCESS = "ACQ.TRADE_HAS_SUCCESS"  # a repeat: the query tells what it did
    INVALID_PARAMETER = "ACQ.INVALID_PARAMETER"
    CONTEXT_INCONSISTENT = "ACQ.CONTEXT_INCONSISTENT"
    TRADE_HAS_CLOSE = "ACQ.TRADE_HAS_CLOSE"
    AUTH_AMOUNT_NOT_ENOUGH = "ACQ.AUTH_AMOUNT_NOT_ENOUGH"  # above what is still held
    AUTH_NO_ERROR = "ACQ.AUTH_NO_ERROR"
    AUTH_ORDER_HAS_CLOSED = "ACQ.AUTH_ORDER_HAS_CLOSED"
    AUTH_ORDER_HAS_FINISHED = "ACQ.AUTH_ORDER_HAS_FINISHED"
    AUTH_ORDER_NOT_PAID = "ACQ.AUTH_ORDER_NOT_PAID"
    PRE_AUTH_PROD_CODE_INCONSISTENT = "ACQ.PRE_AUTH_PROD_CODE_INCONSISTENT"


# --------------------------------------------------------------------------- requests
class FreezeBiz(Shape, kw_only=True):
    """`biz_content` of both freezes: the in-person one carries the payer's code."""

    out_order_no: str
    out_request_no: str
    order_title: str
    amount: str  # yuan
    product_code: str
    auth_code: str | None = None
    auth_code_type: AuthCodeType | None = None
    timeout_express: str | None = None
    extra_param: str | None = None  # JSON: Zhima credit's `category`, `serviceId`...
    identity_params: str | None = None  # JSON: `alipay_user_id`, the expected payer


class UnfreezeBiz(Shape, kw_only=True):
    auth_no: str
    out_request_no: str  # this release, applied at most once
    amount: str  # yuan
    remark: str


class AuthQueryRef(Shape, kw_only=True):
    """`biz_content` of the detail query: the authorisation and one of its operations."""

    out_order_no: str
    out_request_no: str


class CaptureBiz(Shape, kw_only=True):
    """`biz_content` of the `alipay.trade.pay` that turns a hold into a payment."""

    out_trade_no: str
    total_amount: str  # yuan
    subject: str
    auth_no: str
    product_code: str
    auth_confirm_mode: ConfirmMode


# --------------------------------------------------------------------------- answers
class FreezeAnswer(Answer, kw_only=True):
    """A 10000 or 10003 freeze answer (10003 may say no more than the order)."""

    auth_no: str | None = None
    out_order_no: str | None = None
    status: FundOperationStatus | None = None
    amount: OptionalYuan = msgspec.UNSET
    credit_amount: OptionalYuan = msgspec.UNSET
    fund_amount: OptionalYuan = msgspec.UNSET
    pre_auth_type: str | None = None


class UnfreezeAnswer(Answer, kw_only=True):
    auth_no: str | None = None
    status: FundOperationStatus
    amount: OptionalYuan = msgspec.UNSET


class AuthQueryAnswer(Answer, kw_only=True):
    auth_no: NonEmptyStr
    out_order_no: str | None = None
    order_status: AuthOrderStatus
    rest_amount: OptionalYuan = msgspec.UNSET
    total_freeze_fund_amount: OptionalYuan = msgspec.UNSET
    pre_auth_type: str | None = None


class CaptureAnswer(Answer, kw_only=True):
    trade_no: NonEmptyStr
    total_amount: NonEmptyStr


# --------------------------------------------------------------------------- notifications
class FreezeNotification(Shape, kw_only=True):
    """The form fields of a `fund_auth_freeze` notification that the adapter reads."""

    app_id: str
    notify_type: str
    out_order_no: NonEmptyStr
    auth_no: NonEmptyStr
    status: FundOperationStatus
    amount: OptionalYuan = msgspec.UNSET
    rest_amount: OptionalYuan = msgspec.UNSET
    fund_amount: OptionalYuan = msgspec.UNSET
    credit_amount: OptionalYuan = msgspec.UNSET
    pre_auth_type: str | None = None
