"""What a WeChat Pay refusal (a non-2xx answer) proves: a result, a definitive refusal
(WeChat moved no money for this call), or nothing at all.

Only a refusal WeChat signed counts, and only the codes the fact sheet documents as
refusals are definitive: anything else (5xx, 429, an unknown code) leaves the outcome
unknown, so the router queries instead of failing or paying again.
"""

from __future__ import annotations

from collections.abc import Mapping

from adapters.base import (
    Charge,
    Close,
    Operation,
    PayoutQuery,
    Query,
    RailError,
    RailResult,
    RailStatus,
    RefundQuery,
    Reverse,
)
from adapters.commerce_ops import AuthorizationQuery, BillDownload, InvoiceQuery, SplitQuery
from adapters.wechatpay.wire import ErrorAnswer
from adapters.wire import Malformed, decode

__all__ = ["refusal_result"]

# Refusals after which WeChat provably moved no money for this call (fact sheet, errors).
_DEFINITIVE: Mapping[int, frozenset[str]] = {
    400: frozenset(
        {
            "PARAM_ERROR",
            "INVALID_REQUEST",
            "APPID_MCHID_NOT_MATCH",
            "MCH_NOT_EXISTS",
            "ORDER_CLOSED",
            "ORDERPAID",  # close of a paid order: refused, nothing changed
        }
    ),
    401: frozenset({"SIGN_ERROR"}),
    403: frozenset(
        {
            "NO_AUTH",
            "OUT_TRADE_NO_USED",
            "NOTENOUGH",
            "TRADE_ERROR",
            "RULELIMIT",
            "ACCOUNTERROR",
            "NOT_ENOUGH",
            "USER_ACCOUNT_ABNORMAL",
        }
    ),
    404: frozenset({"ORDER_NOT_EXIST", "ORDERNOTEXIST", "RESOURCE_NOT_EXISTS"}),
}
# A lookup of something WeChat never received; transfer bills say NOT_FOUND.
_LOOKUP_MISSES = frozenset({"ORDER_NOT_EXIST", "ORDERNOTEXIST", "RESOURCE_NOT_EXISTS", "NOT_FOUND"})
_LOOKUPS = Query | RefundQuery | PayoutQuery | SplitQuery | AuthorizationQuery | InvoiceQuery


def refusal_result(op: Operation, status: int, body: bytes, *, signed: bool) -> RailResult:
    """A non-2xx answer: a result when it proves one, else `RailError`."""
    code, message = _code_and_message(status, body)
    if not signed:
        # Only a refusal WeChat signed may fail anything; anything else is unknown.
        raise RailError(code, f"HTTP {status} (unsigned): {message}", definitive=False)
    if status == 404 and code in _LOOKUP_MISSES and isinstance(op, _LOOKUPS):
        return RailResult(RailStatus.NOT_FOUND, failure_code=code, failure_message=message)
    if code == "ORDER_CLOSED" and isinstance(op, Charge | Query | Close | Reverse):
        return RailResult(RailStatus.CLOSED, failure_code=code, failure_message=message)
    if code == "NO_STATEMENT_EXIST" and isinstance(op, BillDownload):
        return RailResult(RailStatus.SUCCEEDED, bill=())  # no trade that day: an empty bill
    definitive = code in _DEFINITIVE.get(status, frozenset())
    if code == "ORDERPAID" and isinstance(op, Charge):
        definitive = False  # the order exists and is paid: only a query tells the rest
    if definitive:
        raise RailError(code, message, definitive=True)
    # 5xx, 429, 202-less USERPAYING and anything undocumented: maybe applied, maybe not.
    raise RailError(code, f"HTTP {status}: {message}", definitive=False)


def _code_and_message(status: int, body: bytes) -> tuple[str, str]:
    """What a refusal says; one without a code proves nothing."""
    try:
        answer = decode(body, ErrorAnswer)
    except Malformed:
        answer = ErrorAnswer()
    if not answer.code:
        raise RailError(f"HTTP_{status}", "answer without an error code", definitive=False)
    return answer.code, answer.message or answer.code
