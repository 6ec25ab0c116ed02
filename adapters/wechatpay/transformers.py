"""Canonical operations ↔ WeChat Pay v3 bodies, and WeChat's states ↔ `RailStatus`.

Pure functions over `adapters.base` and `wire`: what a charge or refund becomes on the
wire, what a request WeChat cannot take is refused for (and which API field is at
fault), and what each answer proves. Payouts are in `payouts`, refusals in `refusals`.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import NoReturn, assert_never

import msgspec

from adapters.base import (
    Charge,
    Notification,
    NotificationKind,
    Operation,
    Query,
    RailError,
    RailErrorCode,
    RailResult,
    RailStatus,
    Refund,
    Reverse,
    Scene,
)
from adapters.wechatpay.wire import (
    ErrorAnswer,
    H5Info,
    Merchant,
    MerchantApp,
    OrderAmount,
    OrderRequest,
    Payer,
    RefundAmount,
    RefundAnswer,
    RefundedAmount,
    RefundNotice,
    RefundRequest,
    RefundStatus,
    ReverseAnswer,
    SceneInfo,
    StoreInfo,
    TradeState,
    Transaction,
    valid_amount,
    valid_out_refund_no,
    valid_out_trade_no,
)
from adapters.wire import Malformed, decode


class Endpoint(enum.StrEnum):
    """The v3 order call (`…/transactions/<endpoint>`) that serves a scene."""

    CODEPAY = "codepay"
    NATIVE = "native"
    JSAPI = "jsapi"
    APP = "app"
    H5 = "h5"


ENDPOINTS: Mapping[str, Endpoint] = {
    Scene.QUICKPAY: Endpoint.CODEPAY,
    Scene.NATIVE: Endpoint.NATIVE,
    Scene.JSAPI: Endpoint.JSAPI,
    Scene.MINI_PROGRAM: Endpoint.JSAPI,
    Scene.APP: Endpoint.APP,
    Scene.H5: Endpoint.H5,
}

MAX_DESCRIPTION = 127
MAX_REASON = 80
DEFAULT_STORE_ID = "default"
H5_TYPES = frozenset({"iOS", "Android", "Wap"})

_REFUND_EVENTS = frozenset({"REFUND.SUCCESS", "REFUND.ABNORMAL", "REFUND.CLOSED"})


# --------------------------------------------------------------------------- requests
def endpoint_for(scene: str) -> Endpoint:
    endpoint = ENDPOINTS.get(scene)
    if endpoint is None:
        refuse(f"scene {scene!r} is not offered by WeChat Pay", param="scene")
    return endpoint


def refuse(message: str, *, param: str | None) -> NoReturn:
    # Raised before anything is sent: nothing can have moved.
    raise RailError(RailErrorCode.INVALID_REQUEST, message, definitive=True, param=param)


def _required(fields: Mapping[str, str], key: str, scene: str) -> str:
    """`payer.<key>`, which `scene` cannot do without."""
    value = fields.get(key)
    if not value:
        refuse(f"{scene} needs payer.{key}", param=f"payer.{key}")
    return value


def checked_order_no(value: str) -> str:
    # The router derives the number: no API field is at fault.
    if not valid_out_trade_no(value):
        refuse("rail_order_no must be 6-32 characters of [0-9A-Za-z_-]", param=None)
    return value


def checked_refund_no(value: str) -> str:
    if not valid_out_refund_no(value):
        refuse("rail_refund_no must be 1-64 characters of [0-9A-Za-z_-]", param=None)
    return value


def check_money(amount: int, currency: str) -> None:
    if not valid_amount(amount):
        refuse("amount must be a positive integer of fen", param="amount")
    if currency != "CNY":
        refuse(f"currency {currency!r} is not supported (CNY only)", param="currency")


def order_request(op: Charge, endpoint: Endpoint, app: MerchantApp) -> OrderRequest:
    """The order body, for the merchant (and app) `app` names."""
    check_money(op.amount, op.currency)
    out_trade_no = checked_order_no(op.rail_order_no)
    payer, scene_info = _scene_fields(op, endpoint, app)
    return OrderRequest(
        **msgspec.structs.asdict(app),
        description=(op.description or op.rail_order_no)[:MAX_DESCRIPTION],
        out_trade_no=out_trade_no,
        amount=OrderAmount(total=op.amount, currency=op.currency),
        notify_url=None if endpoint is Endpoint.CODEPAY else op.notify_url,
        payer=payer,
        scene_info=scene_info,
    )


def jsapi_payer(fields: Mapping[str, str], app: MerchantApp) -> Payer:
    """Whom a jsapi order is for: a partner may name the payer in its own app (`sp_openid`)
    or in the sub-merchant's (`sub_openid`)."""
    if app.sp_mchid is None:
        return Payer(openid=_required(fields, "openid", Scene.JSAPI))
    if sub_openid := fields.get("sub_openid"):
        return Payer(sub_openid=sub_openid)
    if sp_openid := fields.get("sp_openid"):
        return Payer(sp_openid=sp_openid)
    openid = _required(fields, "openid", Scene.JSAPI)
    # A plain openid belongs to the sub-merchant's app when there is one.
    return Payer(sub_openid=openid) if app.sub_appid else Payer(sp_openid=openid)


def _scene_fields(
    op: Charge, endpoint: Endpoint, app: MerchantApp
) -> tuple[Payer | None, SceneInfo | None]:
    match endpoint:
        case Endpoint.CODEPAY:
            auth_code = _required(op.payer, "auth_code", Scene.QUICKPAY)
            store = StoreInfo(out_id=op.metadata.get("store_id") or DEFAULT_STORE_ID)
            device = op.metadata.get("device_id") or None
            return Payer(auth_code=auth_code), SceneInfo(store_info=store, device_id=device)
        case Endpoint.H5:
            ip = _required(op.payer, "client_ip", Scene.H5)
            h5_type = op.payer.get("h5_type") or op.metadata.get("h5_type") or "Wap"
            if h5_type not in H5_TYPES:
                refuse(f"h5_type must be one of {sorted(H5_TYPES)}", param="payer")
            return None, SceneInfo(payer_client_ip=ip, h5_info=H5Info(type=h5_type))
        case Endpoint.JSAPI:
            return jsapi_payer(op.payer, app), None
        case Endpoint.NATIVE | Endpoint.APP:
            return None, None
        case _:
            assert_never(endpoint)


def refund_request(op: Refund, sub_mchid: str | None) -> RefundRequest:
    check_money(op.amount, op.currency)
    if type(op.total) is not int or op.total < op.amount:
        refuse("refund total must be the order amount, at least the refund", param="amount")
    return RefundRequest(
        out_trade_no=checked_order_no(op.rail_order_no),
        out_refund_no=checked_refund_no(op.rail_refund_no),
        amount=RefundAmount(refund=op.amount, total=op.total, currency=op.currency),
        sub_mchid=sub_mchid,
        reason=op.reason[:MAX_REASON] or None,
        notify_url=op.notify_url or None,
    )


# --------------------------------------------------------------------------- answers
def check_same(actual: str | None, expected: str | None, name: str) -> None:
    """An answer about another order, refund or merchant is never applied to this one."""
    if actual is None or actual != expected:
        raise Malformed(f"answer names another {name}")


def transaction_answer(body: bytes, rail_order_no: str, *, codepay: bool = False) -> RailResult:
    """A query or codepay answer: the Transaction of `rail_order_no`."""
    tx = decode(body, Transaction)
    check_same(tx.out_trade_no, rail_order_no, "out_trade_no")
    return _transaction_result(tx, codepay=codepay)


def _transaction_result(tx: Transaction, *, codepay: bool = False) -> RailResult:
    ref = tx.transaction_id or None
    amount = tx.amount.total if tx.amount else None
    state = tx.trade_state
    match state:
        case TradeState.NOTPAY:
            # A codepay order is never waiting for the payer to act: it is being decided.
            waiting = not codepay and tx.trade_type != "MICROPAY"
            status = RailStatus.REQUIRES_ACTION if waiting else RailStatus.PROCESSING
            return RailResult(status, rail_reference=ref, amount=amount)
        case TradeState.USERPAYING:
            return RailResult(RailStatus.PROCESSING, rail_reference=ref, amount=amount)
        case TradeState.SUCCESS | TradeState.REFUND:
            # REFUND: paid, refunds started; the router sums refunds itself.
            return RailResult(RailStatus.SUCCEEDED, rail_reference=ref, amount=amount)
        case TradeState.PAYERROR:
            return RailResult(
                RailStatus.FAILED,
                rail_reference=ref,
                amount=amount,
                failure_code="PAYERROR",
                failure_message=tx.trade_state_desc or None,
            )
        case TradeState.CLOSED | TradeState.REVOKED:
            return RailResult(
                RailStatus.CLOSED, rail_reference=ref, amount=amount, failure_code=state.value
            )
        case _:
            assert_never(state)


def refund_answer(body: bytes, rail_refund_no: str) -> RailResult:
    """A refund or refund-query answer about `rail_refund_no`."""
    refund = decode(body, RefundAnswer)
    check_same(refund.out_refund_no, rail_refund_no, "out_refund_no")
    return _refund_result(refund.status, refund.refund_id, refund.amount)


def _refund_result(
    status: RefundStatus, refund_id: str, amount: RefundedAmount | None
) -> RailResult:
    refunded = amount.refund if amount else None
    match status:
        case RefundStatus.PROCESSING:
            return RailResult(RailStatus.PROCESSING, rail_reference=refund_id, amount=refunded)
        case RefundStatus.SUCCESS:
            return RailResult(RailStatus.SUCCEEDED, rail_reference=refund_id, amount=refunded)
        case RefundStatus.CLOSED | RefundStatus.ABNORMAL:
            # ABNORMAL: the payer's account is unreachable; the amount stays reserved
            # until someone fixes it by hand, so the refund has not succeeded.
            return RailResult(
                RailStatus.FAILED,
                rail_reference=refund_id,
                amount=refunded,
                failure_code=f"REFUND_{status.value}",
            )
        case _:
            assert_never(status)


def userpaying_result(op: Operation, body: bytes) -> RailResult:
    """202: the payer is still confirming (codepay): poll; a reverse must be retried."""
    code = (decode(body, ErrorAnswer).code or None) if body else None
    if isinstance(op, Charge | Query):
        return RailResult(RailStatus.PROCESSING, failure_code=code)
    raise RailError(code or "USERPAYING", "HTTP 202: payer still confirming", definitive=False)


def reverse_result(op: Reverse, body: bytes) -> RailResult:
    # The reverse answer only echoes ids; a Transaction-shaped answer is honoured too.
    if not body:
        return RailResult(RailStatus.CLOSED)
    echo = decode(body, ReverseAnswer)
    if echo.trade_state is not msgspec.UNSET:
        return transaction_answer(body, op.rail_order_no)
    check_same(echo.out_trade_no, op.rail_order_no, "out_trade_no")
    return RailResult(RailStatus.CLOSED)


def notification(event_type: str, plain: bytes, app: MerchantApp) -> Notification:
    """A decrypted notification for the merchant (and app) `app` names."""
    if event_type == "TRANSACTION.SUCCESS":
        tx = decode(plain, Transaction)
        _check_owner(tx, app, payment=True)
        return Notification(NotificationKind.PAYMENT, tx.out_trade_no, _transaction_result(tx))
    if event_type in _REFUND_EVENTS:
        refund = decode(plain, RefundNotice)
        _check_owner(refund, app, payment=False)
        result = _refund_result(refund.refund_status, refund.refund_id, refund.amount)
        return Notification(
            NotificationKind.REFUND, refund.out_trade_no, result, refund.out_refund_no
        )
    raise Malformed(f"unknown event_type {event_type!r}")


def _check_owner(plain: Merchant | MerchantApp, app: MerchantApp, *, payment: bool) -> None:
    """A message for another merchant (or app) must never settle one of ours."""
    if app.sp_mchid is None:
        expected = {"mchid": app.mchid}
        if payment:
            expected["appid"] = app.appid
    else:
        expected = {"sp_mchid": app.sp_mchid, "sub_mchid": app.sub_mchid}
        if payment:
            expected["sp_appid"] = app.sp_appid
    named = msgspec.structs.asdict(plain)
    for key, value in expected.items():
        check_same(named.get(key), value, key)
