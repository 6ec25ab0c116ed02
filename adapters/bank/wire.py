"""The JSON bodies of the bank rail as merchant and bank exchange them, with their
statuses and the limits of their fields.

Shapes only, no behaviour, so the adapter and the simulator read and write the same
thing. Requests carry every field the adapter sends; optional ones are left out of a body
when unset. Answers and notifications list the fields the adapter reads: required where
it cannot do without them, and every other field is ignored.
"""

from __future__ import annotations

import enum
import re
from typing import TypeGuard

import msgspec

from adapters.wire import Shape

MAX_AMOUNT = 10**12  # minor units; anything larger is a bug upstream, not a payment
SUPPORTED_CURRENCIES = frozenset({"CNY"})

_ORDER_NO_RE = re.compile(r"[0-9A-Za-z_\-]{1,64}")
_ACCOUNT_RE = re.compile(r"[0-9A-Za-z\-]{1,64}")


class OrderStatus(enum.StrEnum):
    WAITING = "WAITING"
    PAYING = "PAYING"
    SUCCESS = "SUCCESS"
    FAILED = "FAILED"
    CLOSED = "CLOSED"
    REVERSED = "REVERSED"


class RefundStatus(enum.StrEnum):
    PROCESSING = "PROCESSING"
    SUCCESS = "SUCCESS"
    FAILED = "FAILED"


class TransferStatus(enum.StrEnum):
    """A credit transfer's state; FAILED carries a `TransferFailure` as `failure_code`."""

    PROCESSING = "PROCESSING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


class TransferFailure(enum.StrEnum):
    ACCOUNT_FROZEN = "ACCOUNT_FROZEN"  # the payee's account cannot receive
    NAME_NOT_CORRECT = "NAME_NOT_CORRECT"  # the name sent is not the account holder's


def valid_amount(value: object) -> TypeGuard[int]:
    """Positive integer minor units (bool is an int in Python and is refused)."""
    return type(value) is int and 0 < value <= MAX_AMOUNT


def valid_currency(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and value in SUPPORTED_CURRENCIES


def valid_order_no(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and _ORDER_NO_RE.fullmatch(value) is not None


def valid_account(value: object) -> TypeGuard[str]:
    """A payee's account number: 1–64 of `[0-9A-Za-z-]`."""
    return isinstance(value, str) and _ACCOUNT_RE.fullmatch(value) is not None


# --------------------------------------------------------------------------- requests
class ChargeRequest(Shape, kw_only=True):
    """`POST /v1/charges` (payer code) and `POST /v1/qr-orders` (QR)."""

    order_no: str
    amount: int
    currency: str
    description: str
    auth_code: str | None = None  # charges
    notify_url: str | None = None  # qr-orders


class RefundRequest(Shape):
    """`POST /v1/refunds`; every field is sent, empty or not."""

    order_no: str
    refund_no: str
    amount: int
    reason: str
    notify_url: str


class TransferRequest(Shape, kw_only=True):
    """`POST /v1/credit-transfers`: pay `amount` into the payee's `account`."""

    transfer_no: str
    amount: int
    currency: str
    account: str
    remark: str
    notify_url: str | None = None  # where `transfer.*` notifications go
    name: str | None = None  # the account holder's name, checked by the bank when sent


# --------------------------------------------------------------------------- answers
class OrderState(Shape, kw_only=True):
    """An order's state: every order answer, and the data of `order.*` notifications."""

    order_no: str
    bank_txn_id: str
    status: OrderStatus
    amount: int
    refunded: int
    qr_code: str | None = None  # a QR order still waiting to be scanned
    failure_code: str | None = None
    failure_message: str | None = None


class RefundState(Shape, kw_only=True):
    """A refund's state: refund answers, and the data of `refund.*` notifications."""

    refund_no: str
    bank_refund_id: str
    status: RefundStatus
    amount: int
    order_no: str | None = None  # a notification needs it, an answer need not
    failure_code: str | None = None


class TransferState(Shape, kw_only=True):
    """A transfer's state: transfer answers, and the data of `transfer.*` notifications."""

    transfer_no: str
    bank_transfer_id: str
    status: TransferStatus
    amount: int
    failure_code: str | None = None
    failure_message: str | None = None


class ErrorAnswer(Shape):
    """Every non-2xx answer."""

    code: str
    message: str | None = None


class NotificationEnvelope(Shape):
    id: str
    # order.paid | order.failed | refund.succeeded | transfer.succeeded | transfer.failed
    event: str
    data: msgspec.Raw  # an OrderState, a RefundState or a TransferState, by event
