"""Payouts on the Alipay rail: a `Payout` is one `alipay.fund.trans.uni.transfer` to an
Alipay user id, a `PayoutQuery` is `alipay.fund.trans.common.query` by `out_biz_no`.

Pure functions, like `transformers` for trades. Alipay spells the payee's refusals its
own way; they become the router's canonical `ACCOUNT_FROZEN` and `NAME_NOT_CORRECT`, with
Alipay's message kept. Alipay's payout notification is unconfirmed, so none is asked for:
the router settles a payout whose answer it lacks by querying.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NoReturn, assert_never

import msgspec

from adapters.alipay.fund_wire import (
    BIZ_SCENE,
    ORDER_TITLE_MAX,
    PRODUCT_CODE,
    FundSubCode,
    IdentityType,
    Participant,
    TransferAnswer,
    TransferBiz,
    TransferQueryAnswer,
    TransferRef,
    TransferStatus,
)
from adapters.alipay.wire import Answer, Code, fen_to_yuan, valid_fen, valid_out_no, yuan_to_fen
from adapters.base import Payout, PayoutQuery, RailError, RailErrorCode, RailResult, RailStatus
from adapters.wire import Malformed, decode

PayoutOperation = Payout | PayoutQuery

# Alipay's words for "the payee cannot receive" and "wrong name" -> the router's codes.
_CANONICAL: Mapping[str, str] = {
    FundSubCode.PAYEE_ACCOUNT_STATUS_ERROR: "ACCOUNT_FROZEN",
    FundSubCode.PAYEE_USERINFO_STATUS_ERROR: "ACCOUNT_FROZEN",
    FundSubCode.PAYEE_USER_INFO_ERROR: "NAME_NOT_CORRECT",
}


# --------------------------------------------------------------------------- requests
def _refuse(message: str, *, param: str | None) -> NoReturn:
    # Raised before anything is sent: nothing can have moved.
    raise RailError(RailErrorCode.INVALID_REQUEST, message, definitive=True, param=param)


def _out_biz_no(value: str) -> str:
    # The router derives the number: no API field is at fault.
    if not valid_out_no(value):
        _refuse("payout numbers must be 1-64 of [A-Za-z0-9_]", param=None)
    return value


def transfer_biz(op: Payout) -> TransferBiz:
    """The `biz_content` of the transfer that performs `op`."""
    if op.currency != "CNY":
        _refuse(f"Alipay pays out CNY only, not {op.currency!r}", param="currency")
    if not valid_fen(op.amount):
        _refuse("amount must be 1..10^10 fen", param="amount")
    if not op.payee:
        _refuse("a payout needs the payee's Alipay user id", param="payee")
    return TransferBiz(
        out_biz_no=_out_biz_no(op.rail_payout_no),
        trans_amount=fen_to_yuan(op.amount),
        product_code=PRODUCT_CODE,
        biz_scene=BIZ_SCENE,
        order_title=(op.remark or op.rail_payout_no)[:ORDER_TITLE_MAX],
        payee_info=Participant(identity=op.payee, identity_type=IdentityType.USER_ID,
                               name=op.name or None),
    )


def transfer_ref(op: PayoutQuery) -> TransferRef:
    return TransferRef(out_biz_no=_out_biz_no(op.rail_payout_no), product_code=PRODUCT_CODE,
                       biz_scene=BIZ_SCENE)


# --------------------------------------------------------------------------- answers
def answer_result(op: PayoutOperation, text: str) -> RailResult:
    """The result of a verified transfer or transfer-query answer (its exact text)."""
    answer = decode(text, Answer)
    if answer.out_biz_no and answer.out_biz_no != op.rail_payout_no:
        raise Malformed("answer is about another transfer")
    match answer.code:
        case Code.SUCCESS:
            return _success(op, text)
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


def _failed(code: str, message: str | None, reference: str | None = None) -> RailResult:
    return RailResult(RailStatus.FAILED, rail_reference=reference,
                      failure_code=_CANONICAL.get(code, code), failure_message=message or None)


def _business_failure(op: PayoutOperation, answer: Answer) -> RailResult:
    try:
        sub = FundSubCode(answer.sub_code or "")
    except ValueError:
        # Undocumented: nothing proves that no money moved.
        raise _error(answer, definitive=False) from None
    match sub:
        case FundSubCode.SYSTEM_ERROR:
            raise _error(answer, definitive=False)
        case FundSubCode.ORDER_NOT_EXIST:
            if isinstance(op, PayoutQuery):
                return RailResult(RailStatus.NOT_FOUND, failure_code=sub.value,
                                  failure_message=answer.sub_msg or None)
            raise _error(answer, definitive=False)
        case FundSubCode.PAYMENT_INFO_INCONSISTENCY:
            # The number is taken by a transfer with other parameters, which may well have
            # paid: this call moved nothing, but only a query tells what the first did.
            raise _error(answer, definitive=False)
        case FundSubCode.INVALID_PARAMETER:
            raise _error(answer, definitive=True)
        case (
            FundSubCode.PAYEE_ACCOUNT_STATUS_ERROR
            | FundSubCode.PAYEE_USERINFO_STATUS_ERROR
            | FundSubCode.PAYEE_USER_INFO_ERROR
            | FundSubCode.PAYEE_NOT_EXIST
            | FundSubCode.PAYER_BALANCE_NOT_ENOUGH
            | FundSubCode.EXCEED_LIMIT_SM_MIN_AMOUNT
            | FundSubCode.EXCEED_LIMIT_SM_AMOUNT
        ):
            if isinstance(op, PayoutQuery):
                raise _error(answer, definitive=True)
            # Refused for the payee, the payer or the amount: Alipay paid nothing.
            return _failed(sub.value, answer.sub_msg or answer.msg)
        case _:
            assert_never(sub)


def _success(op: PayoutOperation, text: str) -> RailResult:
    match op:
        case Payout():
            paid = decode(text, TransferAnswer)
            if paid.status is None:  # accepted without a verdict: the query decides
                return RailResult(RailStatus.PROCESSING, rail_reference=paid.order_id or None)
            return _transfer_result(paid.status, paid, op.amount)
        case PayoutQuery():
            state = decode(text, TransferQueryAnswer)
            amount = None
            if state.trans_amount is not msgspec.UNSET:
                try:
                    amount = yuan_to_fen(state.trans_amount)
                except ValueError:
                    raise Malformed("field 'trans_amount' is not an amount") from None
            return _transfer_result(state.status, state, amount)
        case _:
            assert_never(op)


def _transfer_result(status: TransferStatus, answer: TransferAnswer | TransferQueryAnswer,
                     amount: int | None) -> RailResult:
    ref = answer.order_id or None
    match status:
        case TransferStatus.SUCCESS:
            return RailResult(RailStatus.SUCCEEDED, rail_reference=ref, amount=amount)
        case TransferStatus.FAIL | TransferStatus.CLOSED | TransferStatus.REFUND:
            # Refused, closed unpaid, or paid and returned: the payee keeps nothing.
            return _failed(answer.error_code or status.value, answer.fail_reason, ref)
        case (
            TransferStatus.DEALING
            | TransferStatus.WAIT_PAY
            | TransferStatus.INIT
            | TransferStatus.UNKNOWN
        ):
            return RailResult(RailStatus.PROCESSING, rail_reference=ref)
        case _:
            assert_never(status)
