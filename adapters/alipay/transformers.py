"""Canonical operations ↔ Alipay `biz_content`, and Alipay's codes and statuses ↔
`RailStatus`.

Pure functions over `adapters.base` and `wire`: what a charge or refund becomes on the
wire, what a request Alipay cannot take is refused for (and which API field is at
fault), and what each signed answer or notification proves.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NoReturn, assert_never

import msgspec

from adapters.alipay.pricing import minor_units
from adapters.alipay.wire import (
    Answer,
    Code,
    CreateAnswer,
    Method,
    OptionalYuan,
    OrderBiz,
    PayAnswer,
    PrecreateAnswer,
    QueryAnswer,
    RefundAnswer,
    RefundBiz,
    RefundQueryAnswer,
    SubCode,
    TradeNotification,
    TradeStatus,
    fen_to_yuan,
    valid_fen,
    valid_out_no,
)
from adapters.base import (
    Action,
    ActionType,
    Charge,
    Close,
    Notification,
    NotificationKind,
    Query,
    RailError,
    RailErrorCode,
    RailResult,
    RailStatus,
    Refund,
    RefundQuery,
    Reverse,
    Scene,
)
from adapters.wire import Malformed, decode

# Router scene -> the gateway method that serves it.
CHARGE_METHODS: Mapping[str, Method] = {
    Scene.NATIVE: Method.PRECREATE,
    Scene.QUICKPAY: Method.PAY,
    Scene.JSAPI: Method.CREATE,
    Scene.MINI_PROGRAM: Method.CREATE,
    Scene.APP: Method.APP_PAY,
    Scene.H5: Method.WAP_PAY,
}
# App and h5 are answered by `build`: their signed order string is the result.
CALL_FREE = frozenset({Method.APP_PAY, Method.WAP_PAY})
# The operations on trades; payouts are mapped by `payouts`.
TradeOperation = Charge | Query | Close | Reverse | Refund | RefundQuery

_SUBJECT_MAX = 256
_REASON_MAX = 256
_REFUND_SUCCESS = "REFUND_SUCCESS"
_BUYER_FIELDS = ("buyer_id", "buyer_open_id", "op_app_id", "op_buyer_open_id")
# `op_app_id` only says in which app an `op_buyer_open_id` is: it names no buyer.
_BUYER_IDS = frozenset({"buyer_id", "buyer_open_id", "op_buyer_open_id"})


# --------------------------------------------------------------------------- requests
def _refuse(message: str, *, param: str | None) -> NoReturn:
    # Raised before anything is sent: nothing can have moved.
    raise RailError(RailErrorCode.INVALID_REQUEST, message, definitive=True, param=param)


def out_no(value: str) -> str:
    # The router derives the numbers: no API field is at fault.
    if not valid_out_no(value):
        _refuse("order and refund numbers must be 1-64 of [A-Za-z0-9_]", param=None)
    return value


def _yuan(amount: int, currency: str) -> str:
    if currency != "CNY" or not valid_fen(amount):
        _refuse("amount must be 1..10^10 fen of CNY", param="amount")
    return fen_to_yuan(amount)


def order_biz(op: Charge) -> OrderBiz:
    """The `biz_content` of the call that serves the charge's scene."""
    base = OrderBiz(
        out_trade_no=out_no(op.rail_order_no),
        total_amount=_yuan(op.amount, op.currency),
        subject=(op.description or op.rail_order_no)[:_SUBJECT_MAX],
        timeout_express=op.metadata.get("timeout_express") or None,
    )
    match op.scene:
        case Scene.NATIVE:
            return base
        case Scene.QUICKPAY:
            auth_code = op.payer.get("auth_code")
            if not auth_code:
                _refuse("quickpay needs payer.auth_code", param="payer.auth_code")
            # Face payments present `fp…` codes and must be declared as such.
            scene = "security_code" if auth_code.startswith("fp") else "bar_code"
            return msgspec.structs.replace(
                base, auth_code=auth_code, scene=scene, product_code="FACE_TO_FACE_PAYMENT"
            )
        case Scene.JSAPI | Scene.MINI_PROGRAM:
            return msgspec.structs.replace(base, product_code="JSAPI_PAY", **_buyer(op))
        case Scene.APP:
            return msgspec.structs.replace(base, product_code="QUICK_MSECURITY_PAY")
        case Scene.H5:
            quit_url = op.metadata.get("quit_url") or None
            return msgspec.structs.replace(base, product_code="QUICK_WAP_WAY", quit_url=quit_url)
        case _:
            _refuse(f"scene {op.scene!r} is not offered by Alipay", param="scene")


def _buyer(op: Charge) -> dict[str, str]:
    buyer = {k: op.payer[k] for k in _BUYER_FIELDS if op.payer.get(k)}
    if not buyer.keys() & _BUYER_IDS:
        _refuse(f"{op.scene} needs payer.buyer_id or payer.buyer_open_id", param="payer.buyer_id")
    return buyer


def refund_biz(op: Refund) -> RefundBiz:
    return RefundBiz(
        out_trade_no=out_no(op.rail_order_no),
        refund_amount=_yuan(op.amount, op.currency),
        out_request_no=out_no(op.rail_refund_no),
        refund_reason=op.reason[:_REASON_MAX] or None,
    )


# --------------------------------------------------------------------------- answers
def _fen(yuan: str, name: str, currency: str | None = None) -> int:
    try:
        return minor_units(yuan, currency)  # a cross-border trade's are in its currency
    except ValueError:
        raise Malformed(f"field {name!r} is not an amount") from None


def _opt_fen(yuan: OptionalYuan, name: str, currency: str | None = None) -> int | None:
    return None if yuan is msgspec.UNSET else _fen(yuan, name, currency)


def answer_result(op: TradeOperation, text: str) -> RailResult:
    """The result of a verified `*_response` object (its exact text)."""
    answer = decode(text, Answer)
    _check_identity(op, answer)
    match answer.code:
        case Code.SUCCESS:
            return _success(op, answer, text)
        case Code.IN_PROGRESS:
            # Only trade.pay may answer 10003 (the payer is confirming on the phone).
            if isinstance(op, Charge) and op.scene == Scene.QUICKPAY:
                return RailResult(RailStatus.PROCESSING, rail_reference=answer.trade_no or None)
            raise RailError("10003", "in progress", definitive=False)
        case Code.UNKNOWN_ERROR:
            raise _error(answer, definitive=False)
        case Code.AUTH_TOKEN_PROBLEM | Code.MISSING_PARAMETER | Code.INVALID_PARAMETER:
            # Configuration problems: the gateway refused before any business logic ran.
            raise _error(answer, definitive=True)
        case Code.BUSINESS_FAILED:
            return _business_failure(op, answer)
        case _:
            assert_never(answer.code)


def _check_identity(op: TradeOperation, answer: Answer) -> None:
    """An answer naming another order or refund is never applied to this one."""
    if answer.out_trade_no and answer.out_trade_no != op.rail_order_no:
        raise Malformed("answer is about another order")
    if (
        isinstance(op, RefundQuery)
        and answer.out_request_no
        and answer.out_request_no != op.rail_refund_no
    ):
        raise Malformed("answer is about another refund")


def _error(answer: Answer, *, definitive: bool) -> RailError:
    sub_code = answer.sub_code or answer.code.value
    message = answer.sub_msg or answer.msg or sub_code
    return RailError(sub_code, message, definitive=definitive)


def _business_failure(op: TradeOperation, answer: Answer) -> RailResult:
    try:
        sub = SubCode(answer.sub_code or "")
    except ValueError:
        # Undocumented: nothing proves that no money moved.
        raise _error(answer, definitive=False) from None
    if isinstance(op, Reverse) and answer.retry_flag == "Y":
        raise _error(answer, definitive=False)
    match sub:
        case SubCode.SYSTEM_ERROR:
            raise _error(answer, definitive=False)
        case SubCode.TRADE_HAS_SUCCESS:
            # A repeated trade.pay: paid, maybe by this very attempt earlier. Only a
            # query (same amount, buyer) can tell, so for a charge it proves nothing.
            raise _error(answer, definitive=not isinstance(op, Charge))
        case SubCode.TRADE_NOT_EXIST:
            return _not_exist(op, answer)
        case SubCode.TRADE_HAS_CLOSE:
            if isinstance(op, Close | Reverse):
                return RailResult(RailStatus.CLOSED, rail_reference=answer.trade_no or None)
            raise _error(answer, definitive=True)
        case (
            SubCode.CONTEXT_INCONSISTENT
            | SubCode.BUYER_BALANCE_NOT_ENOUGH
            | SubCode.BUYER_BANKCARD_BALANCE_NOT_ENOUGH
            | SubCode.PAYMENT_AUTH_CODE_INVALID
            | SubCode.TRADE_BUYER_NOT_MATCH
            | SubCode.TOTAL_FEE_EXCEED
            | SubCode.INVALID_PARAMETER
            | SubCode.REFUND_AMT_NOT_EQUAL_TOTAL
            | SubCode.SELLER_BALANCE_NOT_ENOUGH
            | SubCode.TRADE_HAS_FINISHED
            | SubCode.TRADE_STATUS_ERROR
        ):
            # Payer-code failures, refund refusals and the like: Alipay moved no money.
            raise _error(answer, definitive=True)
        case _:
            assert_never(sub)


def _not_exist(op: TradeOperation, answer: Answer) -> RailResult:
    match op:
        case Query() | Close() | Reverse() | RefundQuery():
            # No proof of anything: an unscanned QR, or a lost trade.pay, looks the same.
            return RailResult(
                RailStatus.NOT_FOUND,
                failure_code=SubCode.TRADE_NOT_EXIST.value,
                failure_message=answer.sub_msg or None,
            )
        case Refund():
            raise _error(answer, definitive=True)
        case Charge():
            raise _error(answer, definitive=False)
        case _:
            assert_never(op)


def _success(op: TradeOperation, answer: Answer, text: str) -> RailResult:
    """A 10000 answer, read again as the shape of its method's success."""
    match op:
        case Charge():
            return _charge_success(op, text)
        case Query():
            trade = decode(text, QueryAnswer)
            return _trade_result(trade.trade_status, trade.trade_no, trade.total_amount,
                                 trade.trans_currency)
        case Close():
            return RailResult(RailStatus.CLOSED, rail_reference=answer.trade_no or None)
        case Reverse():
            return _cancel_result(answer)
        case Refund():
            return _refund_result(op, decode(text, RefundAnswer))
        case RefundQuery():
            return _refund_query_result(decode(text, RefundQueryAnswer))
        case _:
            assert_never(op)


def _charge_success(op: Charge, text: str) -> RailResult:
    if op.scene == Scene.NATIVE:
        action = Action(ActionType.QR_CODE, {"qr_code": decode(text, PrecreateAnswer).qr_code})
        return RailResult(RailStatus.REQUIRES_ACTION, action=action)
    if op.scene == Scene.QUICKPAY:
        paid = decode(text, PayAnswer)
        amount = _fen(paid.total_amount, "total_amount", paid.trans_currency)
        return RailResult(RailStatus.SUCCEEDED, rail_reference=paid.trade_no, amount=amount)
    # jsapi / mini_program: the page passes trade_no to my.tradePay.
    trade_no = decode(text, CreateAnswer).trade_no
    action = Action(ActionType.SDK_PARAMS, {"trade_no": trade_no})
    return RailResult(RailStatus.REQUIRES_ACTION, rail_reference=trade_no, action=action)


def _trade_result(status: TradeStatus, trade_no: str | None, total: OptionalYuan,
                  currency: str | None = None) -> RailResult:
    ref = trade_no or None
    amount = _opt_fen(total, "total_amount", currency)
    match status:
        case TradeStatus.WAIT_BUYER_PAY:
            # Query has no scene: a quickpay after 10003 looks the same (see README).
            return RailResult(RailStatus.REQUIRES_ACTION, rail_reference=ref, amount=amount)
        case TradeStatus.TRADE_SUCCESS | TradeStatus.TRADE_FINISHED:
            return RailResult(RailStatus.SUCCEEDED, rail_reference=ref, amount=amount)
        case TradeStatus.TRADE_CLOSED:
            # Unpaid and closed, or fully refunded: the core knows which from its history.
            return RailResult(RailStatus.CLOSED, rail_reference=ref, amount=amount)
        case _:
            assert_never(status)


def _cancel_result(answer: Answer) -> RailResult:
    if answer.retry_flag == "Y":
        raise RailError("CANCEL_RETRY", "Alipay asks to repeat the cancel", definitive=False)
    # action close (was unpaid) or refund (money returned): nothing is kept either way.
    return RailResult(RailStatus.CLOSED, rail_reference=answer.trade_no or None)


def _refund_result(op: Refund, answer: RefundAnswer) -> RailResult:
    ref = answer.trade_no or None
    refunded = _opt_fen(answer.refund_fee, "refund_fee", answer.trans_currency or op.currency)
    if answer.fund_change == "Y":
        return RailResult(
            RailStatus.SUCCEEDED, rail_reference=ref, amount=op.amount, refunded_amount=refunded
        )
    # N: this call moved nothing (a repeat, or still processing): ask the refund query.
    return RailResult(RailStatus.PROCESSING, rail_reference=ref, refunded_amount=refunded)


def _refund_query_result(answer: RefundQueryAnswer) -> RailResult:
    if not answer.refund_status:
        # Absent means "not received or failed": the core then sends the refund again
        # with the same out_request_no, which Alipay applies at most once.
        return RailResult(RailStatus.NOT_FOUND)
    if answer.refund_status != _REFUND_SUCCESS:
        return RailResult(RailStatus.PROCESSING, failure_message=answer.refund_status)
    return RailResult(
        RailStatus.SUCCEEDED,
        rail_reference=answer.trade_no or None,
        amount=_opt_fen(answer.refund_amount, "refund_amount", answer.trans_currency),
    )


# --------------------------------------------------------------------------- notifications
def notification(note: TradeNotification) -> Notification:
    result = _trade_result(note.trade_status, note.trade_no, note.total_amount,
                           note.trans_currency)
    if not note.out_biz_no:
        return Notification(NotificationKind.PAYMENT, note.out_trade_no, result)
    # A refund: TRADE_SUCCESS after a partial one, TRADE_CLOSED after the last one.
    if note.refund_fee is msgspec.UNSET:
        raise Malformed("a refund notification without refund_fee")
    refunded = _fen(note.refund_fee, "refund_fee", note.trans_currency)
    # The notification names the trade's total and the cumulative refund, never this
    # refund's own amount: `amount` stays unset rather than misleading a cross-check.
    refund = RailResult(
        RailStatus.SUCCEEDED, rail_reference=result.rail_reference, refunded_amount=refunded
    )
    return Notification(NotificationKind.REFUND, note.out_trade_no, refund, note.out_biz_no)
