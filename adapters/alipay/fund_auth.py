"""Pre-authorisation on the Alipay rail (fund authorisation, 资金授权).

An `Authorize` in `quickpay` is the in-person freeze with the payer's code
(`alipay.fund.auth.order.freeze`); in `app`, `jsapi` and `mini_program` it is the online
freeze, a signed order string the wallet opens (`alipay.fund.auth.order.app.freeze`: no
call, its outcome comes by notification or query). `AuthorizationQuery` is
`alipay.fund.auth.operation.detail.query`, `Capture` an `alipay.trade.pay` naming the
`auth_no`, `Release` `alipay.fund.auth.order.unfreeze`.

Pure functions, like `transformers` for trades. With `min_score` the freeze asks for Zhima
credit: a payer who qualifies holds nothing (`deposit_free`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import NoReturn, assert_never

import msgspec

from adapters.alipay.fund_auth_wire import (
    CAPTURE_PRODUCT,
    CREDIT_AUTH,
    IN_PERSON_PRODUCT,
    MIN_SCORE_KEY,
    ONLINE_PRODUCT,
    REMARK_MAX,
    TIMEOUT_MAX_MINUTES,
    TITLE_MAX,
    AuthCodeType,
    AuthOrderStatus,
    AuthQueryAnswer,
    AuthQueryRef,
    CaptureAnswer,
    CaptureBiz,
    CaptureSubCode,
    ConfirmMode,
    FreezeAnswer,
    FreezeBiz,
    FreezeNotification,
    FundAuthSubCode,
    FundOperationStatus,
    UnfreezeAnswer,
    UnfreezeBiz,
)
from adapters.alipay.wire import (
    Answer,
    Code,
    Method,
    OptionalYuan,
    fen_to_yuan,
    valid_fen,
    valid_out_no,
    yuan_to_fen,
)
from adapters.base import (
    Notification,
    NotificationKind,
    RailError,
    RailErrorCode,
    RailResult,
    RailStatus,
    Scene,
)
from adapters.commerce_ops import AuthorizationQuery, Authorize, Capture, Release
from adapters.wire import Malformed, convert, decode

AuthOperation = Authorize | AuthorizationQuery | Capture | Release

ONLINE_SCENES = frozenset({Scene.APP, Scene.JSAPI, Scene.MINI_PROGRAM})

# Refusals that prove nothing was held, captured or released by this call.
_FUND_REFUSALS = frozenset({
    FundAuthSubCode.ILLEGAL_ARGUMENT,
    FundAuthSubCode.AUTH_ORDER_NOT_EXIST,
    FundAuthSubCode.AUTH_OPERATION_NOT_EXIST,
    FundAuthSubCode.PAYER_BALANCE_NOT_ENOUGH,
    FundAuthSubCode.REQUEST_AMOUNT_EXCEED,
})
_CAPTURE_REFUSALS = frozenset(CaptureSubCode) - {
    CaptureSubCode.SYSTEM_ERROR,
    CaptureSubCode.TRADE_HAS_SUCCESS,  # a repeat: it may be this very capture, paid
}


# --------------------------------------------------------------------------- requests
def _refuse(message: str, *, param: str | None) -> NoReturn:
    # Raised before anything is sent: nothing can have moved.
    raise RailError(RailErrorCode.INVALID_REQUEST, message, definitive=True, param=param)


def _number(value: str) -> str:
    # The router derives the numbers: no API field is at fault.
    if not valid_out_no(value):
        _refuse("authorisation numbers must be 1-64 of [A-Za-z0-9_]", param=None)
    return value


def _yuan(amount: int, currency: str) -> str:
    if currency != "CNY" or not valid_fen(amount):
        _refuse("amount must be 1..10^10 fen of CNY", param="amount")
    return fen_to_yuan(amount)


def _json(value: Mapping[str, str]) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def freeze_method(op: Authorize) -> Method:
    if op.scene == Scene.QUICKPAY:
        return Method.AUTH_FREEZE
    if op.scene in ONLINE_SCENES:
        return Method.AUTH_APP_FREEZE
    _refuse(f"scene {op.scene!r} offers no authorisation on Alipay", param="scene")


def freeze_biz(op: Authorize) -> FreezeBiz:
    """The `biz_content` of the freeze that performs `op` (in person or online)."""
    method = freeze_method(op)
    minutes = min(max(1, -(-op.expires_s // 60)), TIMEOUT_MAX_MINUTES)
    credit = None
    if op.min_score is not None:
        # The threshold rides in the credit parameters agreed with Zhima (see README).
        credit = _json({"creditExtInfo": _json({MIN_SCORE_KEY: str(op.min_score)})})
    biz = FreezeBiz(
        out_order_no=_number(op.rail_auth_no),
        out_request_no=op.rail_auth_no,  # the freeze is the authorisation's first operation
        order_title=(op.description or op.rail_auth_no)[:TITLE_MAX],
        amount=_yuan(op.amount, op.currency),
        product_code=IN_PERSON_PRODUCT if method is Method.AUTH_FREEZE else ONLINE_PRODUCT,
        timeout_express=f"{minutes}m",
        extra_param=credit,
    )
    if method is Method.AUTH_APP_FREEZE:
        buyer = op.payer.get("buyer_id")
        identity = _json({"alipay_user_id": buyer}) if buyer else None
        return msgspec.structs.replace(biz, identity_params=identity)
    auth_code = op.payer.get("auth_code")
    if not auth_code:
        _refuse("quickpay needs payer.auth_code", param="payer.auth_code")
    kind = AuthCodeType.SECURITY_CODE if auth_code.startswith("fp") else AuthCodeType.BAR_CODE
    return msgspec.structs.replace(biz, auth_code=auth_code, auth_code_type=kind)


def query_ref(op: AuthorizationQuery) -> AuthQueryRef:
    no = _number(op.rail_auth_no)
    return AuthQueryRef(out_order_no=no, out_request_no=no)


def capture_biz(op: Capture) -> CaptureBiz:
    if not op.rail_reference:
        _refuse("a capture needs the authorisation's auth_no", param="rail_reference")
    return CaptureBiz(
        out_trade_no=_number(op.rail_order_no),
        total_amount=_yuan(op.amount, op.currency),
        subject=(op.description or op.rail_order_no)[:256],
        auth_no=op.rail_reference,
        product_code=CAPTURE_PRODUCT,
        auth_confirm_mode=ConfirmMode.COMPLETE if op.final else ConfirmMode.NOT_COMPLETE,
    )


def unfreeze_biz(op: Release) -> UnfreezeBiz:
    if not op.rail_reference:
        _refuse("a release needs the authorisation's auth_no", param="rail_reference")
    return UnfreezeBiz(
        auth_no=op.rail_reference,
        out_request_no=_number(op.rail_request_no),
        amount=_yuan(op.amount, "CNY"),
        remark=(op.reason or "release")[:REMARK_MAX],
    )


def call(op: AuthorizationQuery | Capture | Release) -> tuple[Method, msgspec.Struct]:
    """The gateway call that performs `op` (an `Authorize` may be an order string instead)."""
    match op:
        case AuthorizationQuery():
            return Method.AUTH_QUERY, query_ref(op)
        case Capture():
            return Method.PAY, capture_biz(op)
        case Release():
            return Method.AUTH_UNFREEZE, unfreeze_biz(op)
        case _:
            assert_never(op)


def method_of(op: AuthOperation) -> Method:
    match op:
        case Authorize():
            return freeze_method(op)
        case AuthorizationQuery():
            return Method.AUTH_QUERY
        case Capture():
            return Method.PAY
        case Release():
            return Method.AUTH_UNFREEZE
        case _:
            assert_never(op)


# --------------------------------------------------------------------------- answers
def answer_result(op: AuthOperation, text: str) -> RailResult:
    """The result of a verified answer to `op`'s call (its exact text)."""
    answer = decode(text, Answer)
    if isinstance(op, Capture) and answer.out_trade_no not in (None, "", op.rail_order_no):
        raise Malformed("answer is about another order")
    match answer.code:
        case Code.SUCCESS:
            return _success(op, text)
        case Code.IN_PROGRESS if isinstance(op, Authorize):
            # In person only: the payer is confirming the freeze on the phone.
            waiting = decode(text, FreezeAnswer)
            return RailResult(RailStatus.PROCESSING, rail_reference=waiting.auth_no or None)
        case Code.IN_PROGRESS | Code.UNKNOWN_ERROR:
            raise _error(answer, definitive=False)
        case Code.AUTH_TOKEN_PROBLEM | Code.MISSING_PARAMETER | Code.INVALID_PARAMETER:
            # Configuration problems: the gateway refused before any business logic ran.
            raise _error(answer, definitive=True)
        case Code.BUSINESS_FAILED:
            return _business_failure(op, answer)
        case _:
            assert_never(answer.code)


def _error(answer: Answer, *, definitive: bool) -> RailError:
    sub_code = answer.sub_code or answer.code.value
    return RailError(sub_code, answer.sub_msg or answer.msg or sub_code, definitive=definitive)


def _business_failure(op: AuthOperation, answer: Answer) -> RailResult:
    sub_code = answer.sub_code or ""
    if isinstance(op, Capture):
        try:
            capture_sub = CaptureSubCode(sub_code)
        except ValueError:
            raise _error(answer, definitive=False) from None
        raise _error(answer, definitive=capture_sub in _CAPTURE_REFUSALS)
    try:
        sub = FundAuthSubCode(sub_code)
    except ValueError:
        # Undocumented: nothing proves that nothing was held.
        raise _error(answer, definitive=False) from None
    not_found = {FundAuthSubCode.AUTH_ORDER_NOT_EXIST, FundAuthSubCode.AUTH_OPERATION_NOT_EXIST}
    if isinstance(op, AuthorizationQuery) and sub in not_found:
        return RailResult(RailStatus.NOT_FOUND, failure_code=sub.value,
                          failure_message=answer.sub_msg or None)
    # SYSTEM_ERROR: unknown. The number reused with other parameters: this call moved
    # nothing, but only a query tells what the first did.
    raise _error(answer, definitive=sub in _FUND_REFUSALS)


def _fen(yuan: OptionalYuan, name: str) -> int | None:
    if yuan is msgspec.UNSET:
        return None
    try:
        return yuan_to_fen(yuan)
    except ValueError:
        raise Malformed(f"field {name!r} is not an amount") from None


def _deposit_free(pre_auth_type: str | None, fund: OptionalYuan, name: str) -> bool | None:
    """Credit when Alipay says so; otherwise whether no money was frozen, when known."""
    if pre_auth_type == CREDIT_AUTH:
        return True
    frozen = _fen(fund, name)
    return None if frozen is None else frozen == 0


def _success(op: AuthOperation, text: str) -> RailResult:
    match op:
        case Authorize():
            frozen = decode(text, FreezeAnswer)
            return _freeze_result(frozen.status, frozen.auth_no, frozen.amount,
                                  _deposit_free(frozen.pre_auth_type, frozen.fund_amount,
                                                "fund_amount"))
        case AuthorizationQuery():
            state = decode(text, AuthQueryAnswer)
            return _order_result(state)
        case Capture():
            paid = decode(text, CaptureAnswer)
            return RailResult(RailStatus.SUCCEEDED, rail_reference=paid.trade_no,
                              amount=_fen(paid.total_amount, "total_amount"))
        case Release():
            released = decode(text, UnfreezeAnswer)
            if released.status is not FundOperationStatus.SUCCESS:
                raise RailError(released.status.value, "the unfreeze is not done yet",
                                definitive=False)
            # Released as asked: whether the authorisation is now over is the query's word.
            return RailResult(RailStatus.SUCCEEDED, rail_reference=released.auth_no or None,
                              amount=_fen(released.amount, "amount"))
        case _:
            assert_never(op)


def _freeze_result(status: FundOperationStatus | None, auth_no: str | None,
                   amount: OptionalYuan, deposit_free: bool | None) -> RailResult:
    ref = auth_no or None
    match status:
        case FundOperationStatus.SUCCESS:
            return RailResult(RailStatus.SUCCEEDED, rail_reference=ref,
                              amount=_fen(amount, "amount"), deposit_free=deposit_free)
        case FundOperationStatus.INIT | None:
            return RailResult(RailStatus.PROCESSING, rail_reference=ref)
        case FundOperationStatus.CLOSED:
            return RailResult(RailStatus.CLOSED, rail_reference=ref)
        case _:
            assert_never(status)


def _order_result(state: AuthQueryAnswer) -> RailResult:
    ref = state.auth_no
    match state.order_status:
        case AuthOrderStatus.INIT:
            return RailResult(RailStatus.REQUIRES_ACTION, rail_reference=ref)
        case AuthOrderStatus.AUTHORIZED | AuthOrderStatus.FINISH:
            free = _deposit_free(state.pre_auth_type, state.total_freeze_fund_amount,
                                 "total_freeze_fund_amount")
            return RailResult(RailStatus.SUCCEEDED, rail_reference=ref, deposit_free=free,
                              amount=_fen(state.rest_amount, "rest_amount"))
        case AuthOrderStatus.CLOSED:
            return RailResult(RailStatus.CLOSED, rail_reference=ref)
        case _:
            assert_never(state.order_status)


# --------------------------------------------------------------------------- notifications
def notification(params: Mapping[str, str], app_id: str) -> Notification:
    """A verified `fund_auth_freeze` notification (its form): an online freeze's outcome."""
    note = convert(params, FreezeNotification)
    if note.app_id != app_id:
        raise Malformed("notification for another app")
    result = _freeze_result(note.status, note.auth_no, note.amount,
                            _deposit_free(note.pre_auth_type, note.fund_amount, "fund_amount"))
    return Notification(NotificationKind.AUTHORIZATION, note.out_order_no, result)
