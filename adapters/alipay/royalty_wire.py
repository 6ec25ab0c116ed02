"""What Alipay's royalty (商家分账) calls exchange: `alipay.trade.order.settle` (share part
of a paid trade) and `alipay.trade.order.settle.query` (how each share went), with their
sub_codes, states and shapes.

Shapes only, as in `wire`, so the adapter and the simulator read and write the same thing.
"""

from __future__ import annotations

import enum

import msgspec

from adapters.alipay.wire import Answer
from adapters.wire import NonEmptyStr, Shape

ROYALTY_MODE = "sync"  # the answer settles the split; async would report it by message
MAX_SPLIT_BP = 3000  # splits of a trade stay within 30 % of it by default (basis points)
DESC_MAX = 128


class RoyaltyType(enum.StrEnum):
    TRANSFER = "transfer"  # an ordinary share (`replenish` is unconfirmed, not offered)


class TransInType(enum.StrEnum):
    USER_ID = "userId"  # the 2088… id of a person's or a merchant's Alipay account
    LOGIN_NAME = "loginName"
    OPEN_ID = "openId"


class RoyaltyState(enum.StrEnum):
    """The `state` of one share in a settle query."""

    SUCCESS = "SUCCESS"
    FAIL = "FAIL"
    PROCESSING = "PROCESSING"


class RoyaltySubCode(enum.StrEnum):
    """The `sub_code`s of a 40004 settle answer the adapter tells apart; the others are read
    as unknown outcomes."""

    SYSTEM_ERROR = "ACQ.SYSTEM_ERROR"
    TRADE_SETTLE_ERROR = "ACQ.TRADE_SETTLE_ERROR"  # retry with identical parameters
    INVALID_PARAMETER = "ACQ.INVALID_PARAMETER"
    TRADE_NOT_EXIST = "ACQ.TRADE_NOT_EXIST"
    # The trade cannot be shared now: unpaid, refunded, or its split already finished.
    ILLEGAL_SETTLE_STATE = "ACQ.ILLEGAL_SETTLE_STATE"
    ALLOC_AMOUNT_VALIDATE_ERROR = "ACQ.ALLOC_AMOUNT_VALIDATE_ERROR"  # above what may be split
    DISCORDANT_REPEAT_REQUEST = "ACQ.DISCORDANT_REPEAT_REQUEST"  # number reused, other params
    ROYALTY_ACCOUNT_NOT_EXIST = "ACQ.ROYALTY_ACCOUNT_NOT_EXIST"  # no such receiver


# --------------------------------------------------------------------------- requests
class RoyaltyDetail(Shape, kw_only=True):
    """One share (`OpenApiRoyaltyDetailInfoPojo`): who receives how much."""

    royalty_type: RoyaltyType
    trans_in_type: TransInType
    trans_in: str
    amount: str  # yuan
    desc: str | None = None
    trans_in_name: str | None = None  # the receiver's name, checked when present


class SettleExtend(Shape, kw_only=True):
    royalty_finish: str | None = None  # "true": what is left unshared goes to the merchant


class SettleBiz(Shape, kw_only=True):
    """`biz_content` of `alipay.trade.order.settle`."""

    out_request_no: str  # this split, applied at most once
    trade_no: str
    royalty_parameters: list[RoyaltyDetail]
    extend_params: SettleExtend | None = None
    royalty_mode: str | None = None


class SettleRef(Shape, kw_only=True):
    """`biz_content` of `alipay.trade.order.settle.query` by the merchant's number."""

    out_request_no: str
    trade_no: str


# --------------------------------------------------------------------------- answers
class SettleAnswer(Answer, kw_only=True):
    trade_no: NonEmptyStr
    settle_no: NonEmptyStr


class RoyaltyResult(Shape, kw_only=True):
    """One share as a settle query reports it."""

    state: RoyaltyState
    trans_in: str | None = None
    amount: str | None = None  # yuan
    detail_id: str | None = None
    error_code: str | None = None
    error_desc: str | None = None


class SettleQueryAnswer(Answer, kw_only=True):
    settle_no: str | None = None
    royalty_detail_list: list[RoyaltyResult] = msgspec.field(default_factory=list)
