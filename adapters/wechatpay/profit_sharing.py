"""Profit sharing (分账) on WeChat Pay API v3: a canonical `Split`, `SplitQuery` or
`SplitReturn` as `/v3/profitsharing/orders` and `/return-orders` calls, and what their
answers prove.

One set of paths serves direct merchants and service providers; a partner adds the
sub-merchant (`sub_mchid`) that pays the split. Splitting is asynchronous: WeChat accepts
an order (PROCESSING) and settles each receiver later, so a split is only SUCCEEDED once
the order is FINISHED with at least one receiver paid, and FAILED when every receiver
was closed. Shapes and limits are WeChat's own (wechatpay-go `services/profitsharing`).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import assert_never, final
from urllib.parse import quote

import msgspec
from cryptography.hazmat.primitives.asymmetric import rsa

from adapters.base import RailResult, RailStatus
from adapters.commerce_ops import Split, SplitQuery, SplitReceiver, SplitReturn
from adapters.wechatpay.sensitive import encrypt_field
from adapters.wechatpay.transformers import check_same, refuse
from adapters.wechatpay.wire import MAX_OPENID, MerchantApp, valid_amount
from adapters.wire import NonEmptyStr, Shape, decode

__all__ = [
    "MAX_RECEIVERS",
    "ORDERS_PATH",
    "RETURNS_PATH",
    "ReceiverResult",
    "ReceiverType",
    "ReturnResult",
    "SplitIds",
    "SplitState",
    "WireCall",
    "answer",
    "request",
    "return_answer",
    "split_answer",
    "valid_split_no",
]

ORDERS_PATH = "/v3/profitsharing/orders"
RETURNS_PATH = "/v3/profitsharing/return-orders"
MAX_RECEIVERS = 50  # per split request (and at most 50 requests per order)
MAX_DESCRIPTION = 80
DEFAULT_DESCRIPTION = "分账"
CLOSED_REASON = "CLOSED"  # a closed receiver that names no reason
FAILED_REASON = "FAILED"  # a failed return that names no reason
# WeChat allows `|*@` too; the router never makes them and `|` breaks the SDK's signature.
_SPLIT_NO_RE = re.compile(r"[0-9A-Za-z_\-]{1,64}")


class ReceiverType(enum.StrEnum):
    MERCHANT_ID = "MERCHANT_ID"
    PERSONAL_OPENID = "PERSONAL_OPENID"  # an openid under the (service provider's) appid
    PERSONAL_SUB_OPENID = "PERSONAL_SUB_OPENID"  # an openid under the sub-merchant's app


class SplitState(enum.StrEnum):
    PROCESSING = "PROCESSING"
    FINISHED = "FINISHED"


class ReceiverResult(enum.StrEnum):
    PENDING = "PENDING"
    SUCCESS = "SUCCESS"
    CLOSED = "CLOSED"


class ReturnResult(enum.StrEnum):
    PROCESSING = "PROCESSING"
    SUCCESS = "SUCCESS"
    FAILED = "FAILED"


def valid_split_no(value: object) -> bool:
    """An `out_order_no` / `out_return_no` the adapter sends (and the simulator takes)."""
    return isinstance(value, str) and _SPLIT_NO_RE.fullmatch(value) is not None


# --------------------------------------------------------------------------- wire shapes
class SplitReceiverRequest(Shape, kw_only=True):
    type: ReceiverType
    account: str
    amount: int
    description: str
    name: str | None = None  # RSA-OAEP ciphertext (base64) under WeChat's public key


class SplitRequest(Shape, kw_only=True):
    appid: str
    transaction_id: str
    out_order_no: str
    receivers: list[SplitReceiverRequest]
    unfreeze_unsplit: bool
    sub_mchid: str | None = None
    sub_appid: str | None = None


class ReturnRequest(Shape, kw_only=True):
    out_order_no: str
    out_return_no: str
    return_mchid: str
    amount: int
    description: str
    sub_mchid: str | None = None


class SplitReceiverDetail(Shape, kw_only=True):
    account: str = ""
    amount: int
    result: ReceiverResult
    fail_reason: str | None = None


class SplitOrder(Shape, kw_only=True):
    """A split order as the create and query answers show it."""

    out_order_no: NonEmptyStr
    order_id: NonEmptyStr
    state: SplitState
    receivers: list[SplitReceiverDetail] = msgspec.field(default_factory=list)


class ReturnOrder(Shape, kw_only=True):
    out_return_no: NonEmptyStr
    return_id: NonEmptyStr
    result: ReturnResult
    amount: int | None = None
    fail_reason: str | None = None


# --------------------------------------------------------------------------- requests
@final
@dataclass(frozen=True, slots=True)
class SplitIds:
    """Whose split it is: the appid that names receivers' openids and, for a partner, the
    sub-merchant that pays the split (and its app, whose openids are `sub_openid`s)."""

    appid: str
    sub_mchid: str | None = None
    sub_appid: str | None = None

    @classmethod
    def of(cls, app: MerchantApp) -> SplitIds:
        if app.sp_appid is not None:
            return cls(app.sp_appid, app.sub_mchid, app.sub_appid)
        return cls(app.appid or "")


@final
@dataclass(frozen=True, slots=True)
class WireCall:
    """One call before it is signed: a POST with `body`, or a GET with `query`."""

    method: str
    path: str
    body: Shape | None = None
    query: Mapping[str, str] | None = None


def request(op: Split | SplitQuery | SplitReturn, app: MerchantApp,
            platform_key: rsa.RSAPublicKey) -> WireCall:
    """The call that performs `op` for the merchant (and app) `app` names; refuses, before
    sending, what WeChat cannot take."""
    ids = SplitIds.of(app)
    match op:
        case Split():
            return WireCall("POST", ORDERS_PATH, body=_split_request(op, ids, platform_key))
        case SplitQuery():
            query = {"transaction_id": _transaction_id(op.rail_reference)}
            if ids.sub_mchid is not None:
                query = {"sub_mchid": ids.sub_mchid, **query}
            path = f"{ORDERS_PATH}/{quote(_checked_no(op.rail_split_no, 'rail_split_no'))}"
            return WireCall("GET", path, query=query)
        case SplitReturn():
            return WireCall("POST", RETURNS_PATH, body=_return_request(op, ids))
        case _:
            assert_never(op)


def _split_request(op: Split, ids: SplitIds, platform_key: rsa.RSAPublicKey) -> SplitRequest:
    if not 0 < len(op.receivers) <= MAX_RECEIVERS:
        refuse(f"a split needs 1-{MAX_RECEIVERS} receivers", param="receivers")
    receivers = [_receiver(r, ids, platform_key) for r in op.receivers]
    personal_sub = any(r.type is ReceiverType.PERSONAL_SUB_OPENID for r in receivers)
    return SplitRequest(
        appid=ids.appid,
        sub_mchid=ids.sub_mchid,
        sub_appid=ids.sub_appid if personal_sub else None,
        transaction_id=_transaction_id(op.rail_reference),
        out_order_no=_checked_no(op.rail_split_no, "rail_split_no"),
        receivers=receivers,
        unfreeze_unsplit=op.finish,
    )


def _receiver(receiver: SplitReceiver, ids: SplitIds,
              platform_key: rsa.RSAPublicKey) -> SplitReceiverRequest:
    if not valid_amount(receiver.amount):
        refuse("each receiver's amount must be a positive integer of fen", param="receivers")
    if not receiver.account or len(receiver.account) > MAX_OPENID:
        refuse(f"a receiver's account must be 1-{MAX_OPENID} characters", param="receivers")
    if receiver.kind == "merchant":
        kind = ReceiverType.MERCHANT_ID
    else:
        # A plain openid belongs to the sub-merchant's app when the partner has one.
        kind = ReceiverType.PERSONAL_SUB_OPENID if ids.sub_appid else ReceiverType.PERSONAL_OPENID
    return SplitReceiverRequest(
        type=kind,
        account=receiver.account,
        amount=receiver.amount,
        description=(receiver.description or DEFAULT_DESCRIPTION)[:MAX_DESCRIPTION],
        name=encrypt_field(platform_key, receiver.name) if receiver.name else None,
    )


def _return_request(op: SplitReturn, ids: SplitIds) -> ReturnRequest:
    if not valid_amount(op.amount):
        refuse("amount must be a positive integer of fen", param="amount")
    if not op.account or len(op.account) > MAX_OPENID:
        refuse("account must be the merchant id that received the split", param="account")
    return ReturnRequest(
        sub_mchid=ids.sub_mchid,
        out_order_no=_checked_no(op.rail_split_no, "rail_split_no"),
        out_return_no=_checked_no(op.rail_return_no, "rail_return_no"),
        return_mchid=op.account,
        amount=op.amount,
        description=(op.description or DEFAULT_DESCRIPTION)[:MAX_DESCRIPTION],
    )


def _checked_no(value: str, name: str) -> str:
    # The router derives the number: no API field is at fault.
    if not valid_split_no(value):
        refuse(f"{name} must be 1-64 characters of [0-9A-Za-z_-]", param=None)
    return value


def _transaction_id(value: str) -> str:
    if not value or len(value) > 32 or not value.isascii() or not value.isalnum():
        refuse("rail_reference must be the paid order's transaction_id", param="rail_reference")
    return value


# --------------------------------------------------------------------------- answers
def answer(op: Split | SplitQuery | SplitReturn, body: bytes) -> RailResult:
    """What a 2xx answer to `op` proves."""
    if isinstance(op, SplitReturn):
        return return_answer(body, op.rail_return_no)
    return split_answer(body, op.rail_split_no)


def split_answer(body: bytes, rail_split_no: str) -> RailResult:
    """A split or split-query answer about `rail_split_no`."""
    order = decode(body, SplitOrder)
    check_same(order.out_order_no, rail_split_no, "out_order_no")
    ref = order.order_id
    match order.state:
        case SplitState.PROCESSING:
            return RailResult(RailStatus.PROCESSING, rail_reference=ref)
        case SplitState.FINISHED:
            closed = [r for r in order.receivers if r.result is ReceiverResult.CLOSED]
            if order.receivers and len(closed) == len(order.receivers):
                return RailResult(RailStatus.FAILED, rail_reference=ref,
                                  failure_code=closed[0].fail_reason or CLOSED_REASON)
            shared = sum(r.amount for r in order.receivers
                         if r.result is ReceiverResult.SUCCESS)
            return RailResult(RailStatus.SUCCEEDED, rail_reference=ref, amount=shared,
                              unshared=tuple(r.account for r in closed))
        case _:
            assert_never(order.state)


def return_answer(body: bytes, rail_return_no: str) -> RailResult:
    """A return answer about `rail_return_no`."""
    answer = decode(body, ReturnOrder)
    check_same(answer.out_return_no, rail_return_no, "out_return_no")
    ref, amount = answer.return_id, answer.amount
    match answer.result:
        case ReturnResult.PROCESSING:
            return RailResult(RailStatus.PROCESSING, rail_reference=ref, amount=amount)
        case ReturnResult.SUCCESS:
            return RailResult(RailStatus.SUCCEEDED, rail_reference=ref, amount=amount)
        case ReturnResult.FAILED:
            return RailResult(RailStatus.FAILED, rail_reference=ref,
                              failure_code=answer.fail_reason or FAILED_REASON)
        case _:
            assert_never(answer.result)
