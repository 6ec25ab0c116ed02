"""Splits on the Alipay rail (royalty, 商家分账): a `Split` is one synchronous
`alipay.trade.order.settle` of a paid trade, a `SplitQuery` is
`alipay.trade.order.settle.query` by the split's `out_request_no` and the `trade_no`.

Pure functions, like `transformers` for trades. A `SplitReturn` is not offered: Alipay
takes shared money back only inside a refund to the buyer (see README).
"""

from __future__ import annotations

from typing import NoReturn, assert_never

from adapters.alipay.royalty_wire import (
    DESC_MAX,
    ROYALTY_MODE,
    RoyaltyDetail,
    RoyaltyResult,
    RoyaltyState,
    RoyaltySubCode,
    RoyaltyType,
    SettleAnswer,
    SettleBiz,
    SettleExtend,
    SettleQueryAnswer,
    SettleRef,
    TransInType,
)
from adapters.alipay.wire import (
    Answer,
    Code,
    Method,
    fen_to_yuan,
    valid_fen,
    valid_out_no,
    yuan_to_fen,
)
from adapters.base import RailError, RailErrorCode, RailResult, RailStatus
from adapters.commerce_ops import Split, SplitQuery, SplitReceiver
from adapters.wire import Malformed, decode

SplitOperation = Split | SplitQuery

# A refusal of the split itself: nothing was shared, the same request is refused again.
_REFUSALS = frozenset({
    RoyaltySubCode.INVALID_PARAMETER,
    RoyaltySubCode.TRADE_NOT_EXIST,
    RoyaltySubCode.ILLEGAL_SETTLE_STATE,
    RoyaltySubCode.ALLOC_AMOUNT_VALIDATE_ERROR,
    RoyaltySubCode.ROYALTY_ACCOUNT_NOT_EXIST,
})


# --------------------------------------------------------------------------- requests
def _refuse(message: str, *, param: str | None) -> NoReturn:
    # Raised before anything is sent: nothing can have moved.
    raise RailError(RailErrorCode.INVALID_REQUEST, message, definitive=True, param=param)


def _number(value: str) -> str:
    # The router derives the numbers: no API field is at fault.
    if not valid_out_no(value):
        _refuse("split and trade numbers must be 1-64 of [A-Za-z0-9_]", param=None)
    return value


def _detail(receiver: SplitReceiver) -> RoyaltyDetail:
    # A merchant receives into its Alipay account, named by that account's user id too.
    if not receiver.account:
        _refuse("a split receiver needs its Alipay user id", param="receivers.account")
    if not valid_fen(receiver.amount):
        _refuse("a split amount must be 1..10^10 fen", param="receivers.amount")
    return RoyaltyDetail(
        royalty_type=RoyaltyType.TRANSFER,
        trans_in_type=TransInType.USER_ID,
        trans_in=receiver.account,
        amount=fen_to_yuan(receiver.amount),
        desc=receiver.description[:DESC_MAX] or None,
        trans_in_name=receiver.name or None,
    )


def settle_biz(op: Split) -> SettleBiz:
    """The `biz_content` of the settle that performs `op`."""
    if not op.rail_reference:
        _refuse("a split needs the trade's Alipay trade_no", param="rail_reference")
    if not op.receivers and not op.finish:
        _refuse("a split needs receivers (or finish)", param="receivers")
    return SettleBiz(
        out_request_no=_number(op.rail_split_no),
        trade_no=op.rail_reference,
        royalty_parameters=[_detail(r) for r in op.receivers],
        extend_params=SettleExtend(royalty_finish="true") if op.finish else None,
        royalty_mode=ROYALTY_MODE,
    )


def settle_ref(op: SplitQuery) -> SettleRef:
    if not op.rail_reference:
        _refuse("a split query needs the trade's Alipay trade_no", param="rail_reference")
    return SettleRef(out_request_no=_number(op.rail_split_no), trade_no=op.rail_reference)


def call(op: SplitOperation) -> tuple[Method, SettleBiz | SettleRef]:
    """The gateway call that performs `op`."""
    match op:
        case Split():
            return Method.SETTLE, settle_biz(op)
        case SplitQuery():
            return Method.SETTLE_QUERY, settle_ref(op)
        case _:
            assert_never(op)


def method_of(op: SplitOperation) -> Method:
    return Method.SETTLE if isinstance(op, Split) else Method.SETTLE_QUERY


# --------------------------------------------------------------------------- answers
def answer_result(op: SplitOperation, text: str) -> RailResult:
    """The result of a verified settle or settle-query answer (its exact text)."""
    answer = decode(text, Answer)
    if answer.out_request_no and answer.out_request_no != op.rail_split_no:
        raise Malformed("answer is about another split")
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


def _business_failure(op: SplitOperation, answer: Answer) -> RailResult:
    try:
        sub = RoyaltySubCode(answer.sub_code or "")
    except ValueError:
        # Undocumented: nothing proves that nothing was shared.
        raise _error(answer, definitive=False) from None
    if isinstance(op, SplitQuery) and sub is RoyaltySubCode.TRADE_NOT_EXIST:
        return RailResult(RailStatus.NOT_FOUND, failure_code=sub.value,
                          failure_message=answer.sub_msg or None)
    # SYSTEM_ERROR, TRADE_SETTLE_ERROR: unknown, repeat as it was. The number reused with
    # other parameters: this call moved nothing, but only a query tells what the first did.
    raise _error(answer, definitive=sub in _REFUSALS)


def _fen(yuan: str | None, name: str) -> int | None:
    if yuan is None:
        return None
    try:
        return yuan_to_fen(yuan)
    except ValueError:
        raise Malformed(f"field {name!r} is not an amount") from None


def _success(op: SplitOperation, text: str) -> RailResult:
    match op:
        case Split():
            settled = decode(text, SettleAnswer)
            if settled.trade_no != op.rail_reference:
                raise Malformed("answer is about another trade")
            # Synchronous mode: the answer is the split's outcome.
            shared = sum(r.amount for r in op.receivers)
            return RailResult(RailStatus.SUCCEEDED, rail_reference=settled.settle_no,
                              amount=shared)
        case SplitQuery():
            state = decode(text, SettleQueryAnswer)
            if not state.out_request_no and not state.royalty_detail_list:
                # Success naming no split: not received (or refused, which shares nothing).
                return RailResult(RailStatus.NOT_FOUND)
            return _query_result(state.royalty_detail_list, state.settle_no or None)
        case _:
            assert_never(op)


def _query_result(shares: list[RoyaltyResult], settle_no: str | None) -> RailResult:
    """The split's status from its shares: any still processing → PROCESSING; else any
    failed → FAILED (the first failure's code); else SUCCEEDED (no share at all: a split
    that only finished the trade's sharing)."""
    if any(s.state is RoyaltyState.PROCESSING for s in shares):
        return RailResult(RailStatus.PROCESSING, rail_reference=settle_no)
    failed = next((s for s in shares if s.state is RoyaltyState.FAIL), None)
    if failed is not None:
        return RailResult(RailStatus.FAILED, rail_reference=settle_no,
                          failure_code=failed.error_code or RoyaltyState.FAIL.value,
                          failure_message=failed.error_desc or None)
    amounts = [_fen(s.amount, "amount") for s in shares]
    shared = None if None in amounts else sum(a for a in amounts if a is not None)
    return RailResult(RailStatus.SUCCEEDED, rail_reference=settle_no, amount=shared)
