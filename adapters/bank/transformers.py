"""Canonical operations ↔ bank bodies, and the bank's statuses ↔ `RailStatus`.

Pure functions over `adapters.base` and `wire`: what a charge or refund becomes on the
wire, what a request the bank cannot take is refused for (and which API field is at
fault), and what each answer or notification proves.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NoReturn, assert_never

from adapters.bank.wire import (
    ChargeRequest,
    ErrorAnswer,
    NotificationEnvelope,
    OrderState,
    OrderStatus,
    RefundRequest,
    RefundState,
    RefundStatus,
    TransferRequest,
    TransferState,
    TransferStatus,
    valid_amount,
    valid_currency,
)
from adapters.base import (
    Action,
    ActionType,
    Charge,
    Close,
    Notification,
    NotificationKind,
    Operation,
    Payout,
    PayoutQuery,
    Query,
    RailError,
    RailErrorCode,
    RailResult,
    RailStatus,
    Refund,
    RefundQuery,
    Reverse,
    Scene,
    unsupported,
)
from adapters.commerce_ops import (
    AuthorizationQuery,
    Authorize,
    BillDownload,
    Capture,
    InvoiceQuery,
    IssueInvoice,
    Release,
    ReverseInvoice,
    Split,
    SplitQuery,
    SplitReturn,
)
from adapters.wire import Malformed, decode

# Router scene -> the call that charges in it.
CHARGE_PATHS: Mapping[str, str] = {Scene.QUICKPAY: "/v1/charges", Scene.NATIVE: "/v1/qr-orders"}
TRANSFERS_PATH = "/v1/credit-transfers"  # payouts; one transfer at TRANSFERS_PATH/{no}

# Refusals after which the bank provably moved no money for this call.
_DEFINITIVE: Mapping[int, frozenset[str]] = {
    400: frozenset({"INVALID_REQUEST"}),
    402: frozenset({"INSUFFICIENT_FUNDS", "CARD_DECLINED"}),
    404: frozenset({"ORDER_NOT_FOUND", "REFUND_NOT_FOUND", "TRANSFER_NOT_FOUND"}),
    409: frozenset(
        {
            "DUPLICATE_ORDER_NO",
            "ORDER_CLOSED",
            "ORDER_PAID",
            "ORDER_NOT_PAID",
            "DUPLICATE_REFUND_NO",
        }
    ),
    422: frozenset({"REFUND_EXCEEDS_AMOUNT"}),
}


# --------------------------------------------------------------------------- requests
def _refuse(message: str, *, param: str) -> NoReturn:
    # Raised before anything is sent: nothing can have moved.
    raise RailError(RailErrorCode.INVALID_REQUEST, message, definitive=True, param=param)


def _check_money(amount: int, currency: str) -> None:
    if not valid_amount(amount):
        _refuse("amount must be a positive integer of minor units", param="amount")
    if not valid_currency(currency):
        _refuse(f"currency {currency!r} is not supported", param="currency")


def charge_request(op: Charge) -> ChargeRequest:
    _check_money(op.amount, op.currency)
    charge = ChargeRequest(
        order_no=op.rail_order_no,
        amount=op.amount,
        currency=op.currency,
        description=op.description,
    )
    match op.scene:
        case Scene.QUICKPAY:
            auth_code = op.payer.get("auth_code")
            if not auth_code:
                _refuse("quickpay needs payer.auth_code", param="payer.auth_code")
            charge.auth_code = auth_code
        case Scene.NATIVE:
            charge.notify_url = op.notify_url
        case _:
            _refuse(f"scene {op.scene!r} is not offered by the bank", param="scene")
    return charge


def refund_request(op: Refund) -> RefundRequest:
    _check_money(op.amount, op.currency)
    return RefundRequest(
        order_no=op.rail_order_no,
        refund_no=op.rail_refund_no,
        amount=op.amount,
        reason=op.reason,
        notify_url=op.notify_url,
    )


def transfer_request(op: Payout) -> TransferRequest:
    _check_money(op.amount, op.currency)
    if not op.payee:
        _refuse("a payout needs the payee's account number", param="payee")
    return TransferRequest(
        transfer_no=op.rail_payout_no,
        amount=op.amount,
        currency=op.currency,
        account=op.payee,
        remark=op.remark,
        notify_url=op.notify_url or None,
        name=op.name or None,
    )


# --------------------------------------------------------------------------- answers
def success_result(op: Operation, body: bytes) -> RailResult:
    """A 2xx answer: the order or refund `op` is about."""
    match op:
        case Refund() | RefundQuery():
            refund = decode(body, RefundState)
            if refund.refund_no != op.rail_refund_no:
                raise Malformed("answer is about another refund")
            return _refund_result(refund)
        case Charge() | Query() | Close() | Reverse():
            order = decode(body, OrderState)
            if order.order_no != op.rail_order_no:
                raise Malformed("answer is about another order")
            return _order_result(order)
        case Payout() | PayoutQuery():
            transfer = decode(body, TransferState)
            if transfer.transfer_no != op.rail_payout_no:
                raise Malformed("answer is about another transfer")
            return _transfer_result(transfer)
        case (Split() | SplitQuery() | SplitReturn() | Authorize() | AuthorizationQuery()
                | Capture() | Release() | IssueInvoice() | ReverseInvoice() | InvoiceQuery()
                | BillDownload()):
            raise unsupported("bank", op)
        case _:
            assert_never(op)


def refusal_result(op: Operation, status: int, body: bytes) -> RailResult:
    """A non-2xx answer: a result when it proves one, else `RailError`."""
    refusal = decode(body, ErrorAnswer)
    code = refusal.code
    message = refusal.message or code
    if status == 404 and _is_lookup_miss(op, code):
        return RailResult(RailStatus.NOT_FOUND, failure_code=code, failure_message=message)
    if status == 401 or code in _DEFINITIVE.get(status, frozenset()):
        raise RailError(code, message, definitive=True)
    # 5xx and anything undocumented: the call may or may not have been applied.
    raise RailError(code, f"HTTP {status}: {message}", definitive=False)


def _is_lookup_miss(op: Operation, code: str) -> bool:
    if isinstance(op, Query):
        return code == "ORDER_NOT_FOUND"
    if isinstance(op, RefundQuery):
        return code == "REFUND_NOT_FOUND"
    if isinstance(op, PayoutQuery):
        return code == "TRANSFER_NOT_FOUND"
    return False


def _order_result(order: OrderState) -> RailResult:
    ref, amount, refunded = order.bank_txn_id, order.amount, order.refunded
    match order.status:
        case OrderStatus.WAITING:
            action = (Action(ActionType.QR_CODE, {"qr_code": order.qr_code})
                      if order.qr_code else None)
            return RailResult(
                RailStatus.REQUIRES_ACTION, rail_reference=ref, action=action, amount=amount
            )
        case OrderStatus.PAYING:
            return RailResult(RailStatus.PROCESSING, rail_reference=ref, amount=amount)
        case OrderStatus.SUCCESS:
            return RailResult(
                RailStatus.SUCCEEDED, rail_reference=ref, amount=amount, refunded_amount=refunded
            )
        case OrderStatus.FAILED:
            return RailResult(
                RailStatus.FAILED,
                rail_reference=ref,
                amount=amount,
                failure_code=order.failure_code or "PAYMENT_FAILED",
                failure_message=order.failure_message,
            )
        case OrderStatus.CLOSED | OrderStatus.REVERSED:
            return RailResult(
                RailStatus.CLOSED, rail_reference=ref, amount=amount, refunded_amount=refunded
            )
        case _:
            assert_never(order.status)


def _refund_result(refund: RefundState) -> RailResult:
    ref, amount = refund.bank_refund_id, refund.amount
    match refund.status:
        case RefundStatus.PROCESSING:
            return RailResult(RailStatus.PROCESSING, rail_reference=ref, amount=amount)
        case RefundStatus.SUCCESS:
            return RailResult(RailStatus.SUCCEEDED, rail_reference=ref, amount=amount)
        case RefundStatus.FAILED:
            return RailResult(
                RailStatus.FAILED,
                rail_reference=ref,
                amount=amount,
                failure_code=refund.failure_code or "REFUND_FAILED",
            )
        case _:
            assert_never(refund.status)


def _transfer_result(transfer: TransferState) -> RailResult:
    ref, amount = transfer.bank_transfer_id, transfer.amount
    match transfer.status:
        case TransferStatus.PROCESSING:
            return RailResult(RailStatus.PROCESSING, rail_reference=ref, amount=amount)
        case TransferStatus.SUCCEEDED:
            return RailResult(RailStatus.SUCCEEDED, rail_reference=ref, amount=amount)
        case TransferStatus.FAILED:
            # The bank's reasons are the router's own codes (ACCOUNT_FROZEN, NAME_NOT_CORRECT).
            return RailResult(
                RailStatus.FAILED,
                rail_reference=ref,
                amount=amount,
                failure_code=transfer.failure_code or "TRANSFER_FAILED",
                failure_message=transfer.failure_message,
            )
        case _:
            assert_never(transfer.status)


# --------------------------------------------------------------------------- notifications
def notification(body: bytes) -> Notification:
    envelope = decode(body, NotificationEnvelope)
    if envelope.event in ("order.paid", "order.failed"):
        order = decode(envelope.data, OrderState)
        return Notification(NotificationKind.PAYMENT, order.order_no, _order_result(order))
    if envelope.event == "refund.succeeded":
        refund = decode(envelope.data, RefundState)
        if refund.order_no is None:
            raise Malformed("a refund notification without order_no")
        return Notification(
            NotificationKind.REFUND, refund.order_no, _refund_result(refund), refund.refund_no
        )
    if envelope.event in ("transfer.succeeded", "transfer.failed"):
        transfer = decode(envelope.data, TransferState)
        return Notification(
            NotificationKind.PAYOUT, transfer.transfer_no, _transfer_result(transfer)
        )
    raise Malformed(f"unknown event {envelope.event!r}")
