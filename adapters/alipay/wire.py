"""What the Alipay gateway exchanges: its vocabulary (methods, codes, statuses), how it
writes values (yuan, ids, times), and the shapes of `biz_content`, of the signed
`*_response` objects and of notifications.

Shapes only, no behaviour, so the adapter and the simulator read and write the same
thing. Requests carry every field the adapter sends; optional ones are left out when
unset (the gateway drops empty parameters before signing). Answers and notifications list
the fields the adapter reads: required where it cannot do without them, and every other
field is ignored. Names are Alipay's own.
"""

from __future__ import annotations

import enum
import re
import secrets
import string
from datetime import UTC, datetime, timedelta, timezone
from typing import TypeGuard

import msgspec

from adapters.wire import NonEmptyStr, Shape

CHINA_TZ = timezone(timedelta(hours=8), "CST")  # the gateway's timestamps are Beijing time
MAX_FEN = 100_000_000 * 100  # 100 000 000.00 yuan, the gateway's ceiling for one amount

_OUT_NO_RE = re.compile(r"[A-Za-z0-9_]{1,64}")
# `\d` would also match Arabic-Indic and other Unicode digits: spell the ASCII range.
_YUAN_RE = re.compile(r"([0-9]{1,12})\.([0-9]{2})")


# --------------------------------------------------------------------------- vocabulary
class Method(enum.StrEnum):
    PRECREATE = "alipay.trade.precreate"
    PAY = "alipay.trade.pay"
    CREATE = "alipay.trade.create"
    APP_PAY = "alipay.trade.app.pay"
    WAP_PAY = "alipay.trade.wap.pay"
    PAGE_PAY = "alipay.trade.page.pay"
    QUERY = "alipay.trade.query"
    CLOSE = "alipay.trade.close"
    CANCEL = "alipay.trade.cancel"
    REFUND = "alipay.trade.refund"
    REFUND_QUERY = "alipay.trade.fastpay.refund.query"
    TRANSFER = "alipay.fund.trans.uni.transfer"  # payouts: see `fund_wire`
    TRANSFER_QUERY = "alipay.fund.trans.common.query"
    BILL_URL_QUERY = "alipay.data.dataservice.bill.downloadurl.query"  # see `bills`
    SETTLE = "alipay.trade.order.settle"  # splits: see `royalty_wire`
    SETTLE_QUERY = "alipay.trade.order.settle.query"
    AUTH_FREEZE = "alipay.fund.auth.order.freeze"  # authorisations: see `fund_auth_wire`
    AUTH_APP_FREEZE = "alipay.fund.auth.order.app.freeze"
    AUTH_UNFREEZE = "alipay.fund.auth.order.unfreeze"
    AUTH_QUERY = "alipay.fund.auth.operation.detail.query"


class TradeStatus(enum.StrEnum):
    WAIT_BUYER_PAY = "WAIT_BUYER_PAY"
    TRADE_SUCCESS = "TRADE_SUCCESS"
    TRADE_FINISHED = "TRADE_FINISHED"
    TRADE_CLOSED = "TRADE_CLOSED"


class Code(enum.StrEnum):
    SUCCESS = "10000"
    IN_PROGRESS = "10003"
    UNKNOWN_ERROR = "20000"
    AUTH_TOKEN_PROBLEM = "20001"  # noqa: S105 - a result code, not a secret
    MISSING_PARAMETER = "40001"
    INVALID_PARAMETER = "40002"
    BUSINESS_FAILED = "40004"


class SubCode(enum.StrEnum):
    """The `sub_code`s of a 40004 answer that the fact sheet documents."""

    SYSTEM_ERROR = "ACQ.SYSTEM_ERROR"
    TRADE_HAS_SUCCESS = "ACQ.TRADE_HAS_SUCCESS"
    TRADE_HAS_CLOSE = "ACQ.TRADE_HAS_CLOSE"
    CONTEXT_INCONSISTENT = "ACQ.CONTEXT_INCONSISTENT"
    TRADE_NOT_EXIST = "ACQ.TRADE_NOT_EXIST"
    BUYER_BALANCE_NOT_ENOUGH = "ACQ.BUYER_BALANCE_NOT_ENOUGH"
    BUYER_BANKCARD_BALANCE_NOT_ENOUGH = "ACQ.BUYER_BANKCARD_BALANCE_NOT_ENOUGH"
    PAYMENT_AUTH_CODE_INVALID = "ACQ.PAYMENT_AUTH_CODE_INVALID"
    TRADE_BUYER_NOT_MATCH = "ACQ.TRADE_BUYER_NOT_MATCH"
    TOTAL_FEE_EXCEED = "ACQ.TOTAL_FEE_EXCEED"
    INVALID_PARAMETER = "ACQ.INVALID_PARAMETER"
    REFUND_AMT_NOT_EQUAL_TOTAL = "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL"
    SELLER_BALANCE_NOT_ENOUGH = "ACQ.SELLER_BALANCE_NOT_ENOUGH"
    TRADE_HAS_FINISHED = "ACQ.TRADE_HAS_FINISHED"
    TRADE_STATUS_ERROR = "ACQ.TRADE_STATUS_ERROR"


# --------------------------------------------------------------------------- values
def valid_fen(value: object) -> TypeGuard[int]:
    """A chargeable amount: 0.01–100000000.00 yuan (bool is an int and is refused)."""
    return type(value) is int and 0 < value <= MAX_FEN


def fen_to_yuan(fen: int) -> str:
    """`1000` → `"10.00"` exactly; integers only, no float ever involved."""
    if type(fen) is not int or fen < 0:
        raise ValueError("an amount in fen must be a non-negative integer")
    return f"{fen // 100}.{fen % 100:02d}"


def yuan_to_fen(text: str) -> int:
    """`"10.00"` → `1000`; anything but digits, a dot and exactly two decimals is refused."""
    match = _YUAN_RE.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError("an amount must look like 10.00")
    return int(match.group(1)) * 100 + int(match.group(2))


def valid_out_no(value: object) -> TypeGuard[str]:
    """`out_trade_no` / `out_request_no`: 1–64 characters of `[A-Za-z0-9_]`."""
    return isinstance(value, str) and _OUT_NO_RE.fullmatch(value) is not None


def format_time(now: float) -> str:
    """`yyyy-MM-dd HH:mm:ss` in Beijing time, as the gateway writes and expects it."""
    return datetime.fromtimestamp(now, CHINA_TZ).strftime("%Y-%m-%d %H:%M:%S")


def new_trade_no(now: float, serial: int) -> str:
    """A 28-digit `trade_no` in Alipay's shape: date, a product tag, then a serial."""
    day = datetime.fromtimestamp(now, UTC).astimezone(CHINA_TZ).strftime("%Y%m%d")
    return f"{day}22001{serial % 10**15:015d}"


def new_buyer_id() -> str:
    return "2088" + "".join(secrets.choice(string.digits) for _ in range(12))


# --------------------------------------------------------------------------- requests
class GatewayParams(Shape, kw_only=True):
    """The common parameters of every call (`sign` is added over them), all strings."""

    app_id: str
    method: str
    format: str
    charset: str
    sign_type: str
    timestamp: str
    version: str
    app_auth_token: str | None = None  # a service provider acting for a merchant
    notify_url: str | None = None
    return_url: str | None = None  # wap.pay / page.pay
    biz_content: str  # JSON of one of the *Biz shapes below


class OrderBiz(Shape, kw_only=True):
    """`biz_content` of the order calls: precreate, pay, create, app.pay and wap.pay."""

    out_trade_no: str
    total_amount: str  # yuan
    subject: str
    timeout_express: str | None = None
    auth_code: str | None = None  # pay
    scene: str | None = None  # pay: bar_code, or security_code for face codes
    product_code: str | None = None
    buyer_id: str | None = None  # create: one of the buyer ids
    buyer_open_id: str | None = None
    op_app_id: str | None = None
    op_buyer_open_id: str | None = None
    quit_url: str | None = None  # wap.pay
    trans_currency: str | None = None  # cross-border: the priced currency (`pricing`)
    settle_currency: str | None = None


class TradeRef(Shape, kw_only=True):
    """`biz_content` of query, close and cancel; with `out_request_no`, of refund query."""

    out_trade_no: str
    out_request_no: str | None = None


class RefundBiz(Shape, kw_only=True):
    out_trade_no: str
    refund_amount: str  # yuan
    out_request_no: str  # one refund of the trade, applied at most once
    refund_reason: str | None = None


# --------------------------------------------------------------------------- answers
class Answer(Shape, kw_only=True):
    """What every `*_response` object says, error answers entirely: the verdict and the
    order (or refund) it is about."""

    code: Code
    msg: str | None = None
    sub_code: str | None = None
    sub_msg: str | None = None
    out_trade_no: str | None = None
    trade_no: str | None = None
    out_request_no: str | None = None  # refunds
    out_biz_no: str | None = None  # transfers
    retry_flag: str | None = None  # cancel: "Y" asks for the call again
    trans_currency: str | None = None  # cross-border: the currency of its amounts


class PrecreateAnswer(Answer, kw_only=True):
    qr_code: NonEmptyStr


class PayAnswer(Answer, kw_only=True):
    trade_no: NonEmptyStr
    total_amount: NonEmptyStr


class CreateAnswer(Answer, kw_only=True):
    trade_no: NonEmptyStr  # what the page hands to my.tradePay


# An amount may be absent, but one that is present must be an amount: null is refused.
OptionalYuan = str | msgspec.UnsetType


class QueryAnswer(Answer, kw_only=True):
    trade_status: TradeStatus
    total_amount: OptionalYuan = msgspec.UNSET


class RefundAnswer(Answer, kw_only=True):
    fund_change: str | None = None  # "Y": this call moved the money
    refund_fee: OptionalYuan = msgspec.UNSET  # cumulative over the trade


class RefundQueryAnswer(Answer, kw_only=True):
    refund_status: str | None = None  # REFUND_SUCCESS; absent: not received or failed
    refund_amount: OptionalYuan = msgspec.UNSET


# --------------------------------------------------------------------------- notifications
class TradeNotification(Shape, kw_only=True):
    """The form fields of an asynchronous notification (all strings on the wire)."""

    app_id: str
    out_trade_no: NonEmptyStr
    trade_status: TradeStatus
    trade_no: str | None = None
    seller_id: str | None = None
    total_amount: OptionalYuan = msgspec.UNSET
    out_biz_no: str | None = None  # set for a refund: its out_request_no
    refund_fee: OptionalYuan = msgspec.UNSET  # cumulative over the trade
    trans_currency: str | None = None  # cross-border: the currency of its amounts
