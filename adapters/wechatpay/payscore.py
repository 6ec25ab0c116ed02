"""WeChat Pay Score (微信支付分) service orders as the router's pre-authorisations: an
`Authorize` creates an order the payer confirms in WeChat, `Capture` completes it (WeChat
then collects the money), `Release` cancels it. The wire shapes are in `payscore_wire`.

Pay Score never freezes money: the risk fund is a promise the payer's credit covers, so
every authorisation it grants is deposit-free. Whether a payer qualifies is WeChat's word,
by the score bar of the merchant's service (`service_id`); the router's `min_score` cannot
be sent, so an `Authorize` asking for more than the configured bar is refused before
sending, and a payer under the bar is refused by WeChat (definitively), so the router can
ask for a deposit on another rail. Direct-merchant mode only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NoReturn, assert_never, final

from adapters.base import (
    Action,
    ActionType,
    Notification,
    NotificationKind,
    RailError,
    RailErrorCode,
    RailResult,
    RailStatus,
    Scene,
)
from adapters.commerce_ops import AuthorizationQuery, Authorize, Capture, Release
from adapters.wechatpay.payscore_wire import (
    CancelAnswer,
    CancelRequest,
    CollectionState,
    CompleteRequest,
    PostPayment,
    RiskFund,
    RiskFundName,
    ServiceOrder,
    ServiceOrderRequest,
    ServiceState,
    TimeRange,
    valid_service_order_no,
)
from adapters.wechatpay.profit_sharing import WireCall
from adapters.wechatpay.transformers import check_money, check_same, checked_order_no, refuse
from adapters.wire import Malformed, decode

__all__ = [
    "EVENTS",
    "ORDERS_PATH",
    "PayScoreService",
    "answer",
    "cancel_answer",
    "capture_answer",
    "notification",
    "order_answer",
    "payscore_service",
    "refuse_in_partner_mode",
    "request",
]

ORDERS_PATH = "/v3/payscore/serviceorder"
EVENTS = frozenset({"PAYSCORE.USER_CONFIRM", "PAYSCORE.USER_PAID"})
SANDBOX_SERVICE_ID = "50000000000000000000000000000001"  # 32 digits, like WeChat's
DEFAULT_MIN_SCORE = 550  # the bar of the sandbox service; a real one is WeChat's decision
MAX_INTRODUCTION = 20  # service_introduction
MAX_ITEM_NAME = 20  # post_payments[].name
MAX_CANCEL_REASON = 30
RISK_FUND_NAME = RiskFundName.DEPOSIT
# The payer confirms in WeChat: the wallet scenes that can open the confirmation page.
SCENES = frozenset({Scene.JSAPI, Scene.MINI_PROGRAM, Scene.APP})
_SERVICE_ID_RE = re.compile(r"[0-9]{1,32}")


@final
@dataclass(frozen=True, slots=True)
class PayScoreService:
    """The Pay Score service the merchant was granted, and the score bar WeChat applies."""

    service_id: str = SANDBOX_SERVICE_ID
    min_score: int = DEFAULT_MIN_SCORE


def payscore_service(options: Mapping[str, object], rail: str) -> PayScoreService:
    """From the adapter options `payscore_service_id` and `payscore_min_score`."""
    service_id = options.get("payscore_service_id", SANDBOX_SERVICE_ID)
    if not isinstance(service_id, str) or not _SERVICE_ID_RE.fullmatch(service_id):
        raise ValueError(f"rail {rail!r}: option payscore_service_id must be up to 32 digits")
    bar = options.get("payscore_min_score", DEFAULT_MIN_SCORE)
    if type(bar) is not int or not 0 <= bar <= 1000:
        raise ValueError(f"rail {rail!r}: option payscore_min_score must be a score (0-1000)")
    return PayScoreService(service_id, bar)


def refuse_in_partner_mode() -> NoReturn:
    raise RailError(RailErrorCode.INVALID_REQUEST,
                    "Pay Score authorisations are not offered in partner (sub_mchid) mode: "
                    "configure a direct-merchant WeChat Pay rail for them", definitive=True)


# --------------------------------------------------------------------------- requests
def request(op: Authorize | AuthorizationQuery | Capture | Release, appid: str,
            service: PayScoreService) -> WireCall:
    """The call that performs `op`; refuses, before sending, what WeChat cannot take."""
    match op:
        case Authorize():
            return WireCall("POST", ORDERS_PATH, body=_create_request(op, appid, service))
        case AuthorizationQuery():
            query = {"service_id": service.service_id, "appid": appid,
                     "out_order_no": _checked_no(op.rail_auth_no)}
            return WireCall("GET", ORDERS_PATH, query=query)
        case Capture():
            return WireCall("POST", f"{_order_path(op.rail_auth_no)}/complete",
                            body=_complete_request(op, appid, service))
        case Release():
            reason = (op.reason or "取消服务")[:MAX_CANCEL_REASON]
            body = CancelRequest(appid=appid, service_id=service.service_id, reason=reason)
            return WireCall("POST", f"{_order_path(op.rail_auth_no)}/cancel", body=body)
        case _:
            assert_never(op)


def _create_request(op: Authorize, appid: str,
                    service: PayScoreService) -> ServiceOrderRequest:
    check_money(op.amount, op.currency)
    if op.scene not in SCENES:
        refuse(f"Pay Score is confirmed in WeChat: scene must be one of {sorted(SCENES)}",
               param="scene")
    if op.min_score is not None and op.min_score > service.min_score:
        refuse(f"WeChat applies the Pay Score bar of service {service.service_id} "
               f"({service.min_score}); it cannot promise min_score {op.min_score}",
               param="min_score")
    if not op.notify_url:
        refuse("Pay Score needs a notify_url", param="notify_url")
    introduction = (op.description or op.rail_auth_no)[:MAX_INTRODUCTION]
    return ServiceOrderRequest(
        out_order_no=_checked_no(op.rail_auth_no),
        appid=appid,
        service_id=service.service_id,
        service_introduction=introduction,
        post_payments=[PostPayment(name=introduction, amount=op.amount, count=1)],
        # "OnAccept": the service starts when the payer confirms. A clock time here would
        # change on every retry, and WeChat's idempotency wants identical parameters.
        time_range=TimeRange(start_time="OnAccept"),
        risk_fund=RiskFund(name=RISK_FUND_NAME, amount=op.amount),
        notify_url=op.notify_url,
        openid=op.payer.get("openid") or None,
        need_user_confirm=True,
    )


def _complete_request(op: Capture, appid: str, service: PayScoreService) -> CompleteRequest:
    check_money(op.amount, op.currency)
    if not op.final:
        refuse("a Pay Score order is completed once: a capture must be final", param="final")
    return CompleteRequest(
        appid=appid,
        service_id=service.service_id,
        post_payments=[PostPayment(name=(op.description or "服务费用")[:MAX_ITEM_NAME],
                                   amount=op.amount, count=1)],
        total_amount=op.amount,
        out_trade_no=checked_order_no(op.rail_order_no),
    )


def _order_path(rail_auth_no: str) -> str:
    return f"{ORDERS_PATH}/{_checked_no(rail_auth_no)}"  # [0-9A-Za-z_-]: no escaping


def _checked_no(value: str) -> str:
    # The router derives the number: no API field is at fault.
    if not valid_service_order_no(value):
        refuse("rail_auth_no must be 1-32 characters of [0-9A-Za-z_-]", param=None)
    return value


# --------------------------------------------------------------------------- answers
def answer(op: Authorize | AuthorizationQuery | Capture | Release, body: bytes,
           mchid: str) -> RailResult:
    """What a 2xx answer to `op` proves, for the merchant `mchid`."""
    match op:
        case Authorize() | AuthorizationQuery():
            return order_answer(body, op.rail_auth_no, mchid)
        case Capture():
            return capture_answer(body, op, mchid)
        case Release():
            return cancel_answer(body, op.rail_auth_no)
        case _:
            assert_never(op)


def order_answer(body: bytes, rail_auth_no: str, mchid: str) -> RailResult:
    """A create or query answer: the service order `rail_auth_no` as an authorisation."""
    order = decode(body, ServiceOrder)
    check_same(order.out_order_no, rail_auth_no, "out_order_no")
    _check_owner(order, mchid, required=False)
    return _authorisation(order, mchid)


def capture_answer(body: bytes, op: Capture, mchid: str) -> RailResult:
    """A complete answer: SUCCEEDED once WeChat collected the money (the collection's
    transaction is the payment's `rail_reference`), PROCESSING while it is collecting."""
    order = decode(body, ServiceOrder)
    check_same(order.out_order_no, op.rail_auth_no, "out_order_no")
    _check_owner(order, mchid, required=False)
    collection = order.collection
    if collection is not None and collection.state is CollectionState.USER_PAID:
        paid = [d for d in collection.details if d.transaction_id]
        if not paid:
            raise Malformed("a paid collection names no transaction")
        if order.out_trade_no is not None:
            check_same(order.out_trade_no, op.rail_order_no, "out_trade_no")
        return RailResult(RailStatus.SUCCEEDED, rail_reference=paid[-1].transaction_id,
                          amount=collection.paid_amount)
    if order.state in (ServiceState.REVOKED, ServiceState.EXPIRED):
        return RailResult(RailStatus.FAILED, rail_reference=order.order_id,
                          failure_code=order.state.value)
    return RailResult(RailStatus.PROCESSING, amount=order.total_amount)


def cancel_answer(body: bytes, rail_auth_no: str) -> RailResult:
    """A cancel answer (it echoes the ids): the hold is given back."""
    answer = decode(body, CancelAnswer)
    check_same(answer.out_order_no, rail_auth_no, "out_order_no")
    return RailResult(RailStatus.CLOSED, rail_reference=answer.order_id or None,
                      failure_code=ServiceState.REVOKED.value)


def notification(event_type: str, plain: bytes, mchid: str, appid: str) -> Notification:
    """PAYSCORE.USER_CONFIRM / USER_PAID: the service order, as an authorisation."""
    if event_type not in EVENTS:
        raise Malformed(f"unknown event_type {event_type!r}")
    order = decode(plain, ServiceOrder)
    _check_owner(order, mchid, required=True)
    check_same(order.appid, appid, "appid")
    return Notification(NotificationKind.AUTHORIZATION, order.out_order_no,
                        _authorisation(order, mchid))


def _check_owner(order: ServiceOrder, mchid: str, *, required: bool) -> None:
    """An order of another merchant must never settle one of ours."""
    if required or order.mchid is not None:
        check_same(order.mchid, mchid, "mchid")


def _authorisation(order: ServiceOrder, mchid: str) -> RailResult:
    held = order.risk_fund.amount if order.risk_fund else None
    ref = order.order_id
    match order.state:
        case ServiceState.CREATED:
            action = None
            if order.package:
                data = {"businessType": "wxpayScoreUse", "mch_id": mchid,
                        "package": order.package}
                action = Action(ActionType.SDK_PARAMS, data)
            return RailResult(RailStatus.REQUIRES_ACTION, rail_reference=ref, action=action,
                              amount=held, deposit_free=True)
        case ServiceState.DOING | ServiceState.DONE:
            # DOING: confirmed (USER_CONFIRM) or completed and collecting (MCH_COMPLETE).
            return RailResult(RailStatus.SUCCEEDED, rail_reference=ref, amount=held,
                              deposit_free=True)
        case ServiceState.REVOKED | ServiceState.EXPIRED:
            return RailResult(RailStatus.CLOSED, rail_reference=ref, amount=held,
                              failure_code=order.state.value)
        case _:
            assert_never(order.state)

