"""What Alipay's transfer calls exchange: `alipay.fund.trans.uni.transfer` (a payout to an
Alipay account) and `alipay.fund.trans.common.query` (its state), with their sub_codes,
statuses, ids and shapes.

Apart from `wire` because the fund API words things its own way: its sub_codes carry no
`ACQ.` prefix, an order is named by `out_biz_no`, and the payee is a `Participant`.
Shapes only, as in `wire`, so the adapter and the simulator read and write the same thing.
"""

from __future__ import annotations

import enum
import re
from datetime import UTC, datetime
from typing import TypeGuard

import msgspec

from adapters.alipay.wire import CHINA_TZ, Answer, OptionalYuan
from adapters.wire import Shape

# A password-free transfer to an Alipay account, made directly by the merchant (the
# product and scene a payout uses; red packets use STD_RED_PACKET, not modelled here).
PRODUCT_CODE = "TRANS_ACCOUNT_NO_PWD"
BIZ_SCENE = "DIRECT_TRANSFER"
ORDER_TITLE_MAX = 128

_OUT_BIZ_NO_RE = re.compile(r"[A-Za-z0-9_\-]{1,64}")
_USER_ID_RE = re.compile(r"2088[0-9]{12}")


class IdentityType(enum.StrEnum):
    USER_ID = "ALIPAY_USER_ID"  # the 2088… user id: what a payout names
    LOGON_ID = "ALIPAY_LOGON_ID"  # an e-mail or mobile number; needs the real name


class TransferStatus(enum.StrEnum):
    """Every `status` a transfer order can show, in the transfer answer or a query."""

    SUCCESS = "SUCCESS"
    FAIL = "FAIL"  # refused; `error_code` / `fail_reason` say why
    DEALING = "DEALING"  # still being processed
    WAIT_PAY = "WAIT_PAY"  # a cashier-funded order (fund.trans.app.pay) not paid yet
    INIT = "INIT"  # accepted, waiting to be processed
    UNKNOWN = "UNKNOWN"  # Alipay itself does not know yet
    CLOSED = "CLOSED"  # closed unpaid (a cashier-funded order that timed out)
    REFUND = "REFUND"  # paid, then returned by the payee's bank (bank-card transfers)


class FundSubCode(enum.StrEnum):
    """The `sub_code`s of a 40004 fund answer the adapter tells apart; the others are
    read as unknown outcomes."""

    SYSTEM_ERROR = "SYSTEM_ERROR"
    ORDER_NOT_EXIST = "ORDER_NOT_EXIST"  # a query: no transfer by that number (yet)
    PAYMENT_INFO_INCONSISTENCY = "PAYMENT_INFO_INCONSISTENCY"  # number reused, other params
    INVALID_PARAMETER = "INVALID_PARAMETER"
    PAYEE_ACCOUNT_STATUS_ERROR = "PAYEE_ACCOUNT_STATUS_ERROR"  # the payee's account is abnormal
    PAYEE_USERINFO_STATUS_ERROR = "PAYEE_USERINFO_STATUS_ERROR"  # the payee's user is abnormal
    PAYEE_USER_INFO_ERROR = "PAYEE_USER_INFO_ERROR"  # the name does not match the account
    PAYEE_NOT_EXIST = "PAYEE_NOT_EXIST"
    PAYER_BALANCE_NOT_ENOUGH = "PAYER_BALANCE_NOT_ENOUGH"
    EXCEED_LIMIT_SM_MIN_AMOUNT = "EXCEED_LIMIT_SM_MIN_AMOUNT"  # below the product's minimum
    EXCEED_LIMIT_SM_AMOUNT = "EXCEED_LIMIT_SM_AMOUNT"  # above the single-transfer limit


# --------------------------------------------------------------------------- values
def valid_out_biz_no(value: object) -> TypeGuard[str]:
    """`out_biz_no`: 1–64 characters of `[A-Za-z0-9_-]`."""
    return isinstance(value, str) and _OUT_BIZ_NO_RE.fullmatch(value) is not None


def valid_user_id(value: object) -> TypeGuard[str]:
    """An Alipay user id: `2088` and 12 more digits."""
    return isinstance(value, str) and _USER_ID_RE.fullmatch(value) is not None


def new_transfer_ids(now: float, serial: int) -> tuple[str, str]:
    """(`order_id`, `pay_fund_order_id`) of a new transfer: 32 digits each, dated."""
    day = datetime.fromtimestamp(now, UTC).astimezone(CHINA_TZ).strftime("%Y%m%d")
    tail = serial % 10**15
    return f"{day}110070{tail:018d}", f"{day}110070001{tail:015d}"


# --------------------------------------------------------------------------- requests
class Participant(Shape, kw_only=True):
    """The payee of a transfer. `name`, when present, is checked against the account."""

    identity: str
    identity_type: IdentityType
    name: str | None = None


class TransferBiz(Shape, kw_only=True):
    """`biz_content` of `alipay.fund.trans.uni.transfer`."""

    out_biz_no: str
    trans_amount: str  # yuan
    product_code: str
    biz_scene: str
    order_title: str  # shown on the payee's bill
    payee_info: Participant


class TransferRef(Shape, kw_only=True):
    """`biz_content` of `alipay.fund.trans.common.query` by the merchant's number: the
    product and scene are required beside `out_biz_no`."""

    out_biz_no: str
    product_code: str
    biz_scene: str


# --------------------------------------------------------------------------- answers
class TransferAnswer(Answer, kw_only=True):
    """A 10000 answer to the transfer: `status` may be absent (accepted, not settled)."""

    status: TransferStatus | None = None
    order_id: str | None = None
    error_code: str | None = None
    fail_reason: str | None = None


class TransferQueryAnswer(Answer, kw_only=True):
    status: TransferStatus
    order_id: str | None = None
    trans_amount: OptionalYuan = msgspec.UNSET  # only once paid
    error_code: str | None = None
    fail_reason: str | None = None
