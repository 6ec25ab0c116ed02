"""The boundary between the router core and a payment rail.

An adapter *describes*; the core *does I/O*. For every operation the adapter turns a
canonical request into an `HttpRequest` for its rail, and the rail's `HttpResponse`
into a canonical `RailResult` (or raises `RailError`). The core sends the request,
applies timeouts and records metrics. In-process rails (like `instant`) answer directly
by returning a `RailResult` from `build`.

Adapters are discovered through the `payrouter.adapters` entry-point group; each entry
point names a factory `(AdapterConfig) -> Adapter`.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, final

from adapters.commerce_ops import BillLine, MerchantServiceOp, PayerAmount

__all__ = [
    "Action",
    "ActionType",
    "Adapter",
    "AdapterConfig",
    "Charge",
    "Close",
    "HttpRequest",
    "HttpResponse",
    "Notification",
    "NotificationKind",
    "Operation",
    "Payout",
    "PayoutQuery",
    "Query",
    "RailError",
    "RailErrorCode",
    "RailResult",
    "RailStatus",
    "Refund",
    "RefundQuery",
    "Reverse",
    "Scene",
    "unsupported",
]


# --------------------------------------------------------------------------- vocabularies
class Scene(enum.StrEnum):
    """How the payer pays: `quickpay` (merchant scans the payer's code), `native` (payer
    scans the merchant's QR), `jsapi` (in-app web / official account), `mini_program`,
    `app` (SDK in a merchant app), `h5` (mobile browser)."""

    QUICKPAY = "quickpay"  # the merchant scans the payer's code (付款码)
    NATIVE = "native"  # the payer scans the merchant's QR code
    JSAPI = "jsapi"  # inside the wallet's own browser (official account / life account)
    MINI_PROGRAM = "mini_program"
    APP = "app"
    H5 = "h5"  # a mobile browser outside the wallet


class ActionType(enum.StrEnum):
    """How the payer is shown the payment (the `type` of a payment's `action`)."""

    QR_CODE = "qr_code"  # a code for the payer to scan
    REDIRECT = "redirect"  # a page to open (mobile web)
    SDK_PARAMS = "sdk_params"  # parameters for the wallet's SDK (JSAPI, app, mini program)


class RailErrorCode(enum.StrEnum):
    """The codes the router itself gives a `RailError` (rails' own codes pass through as
    the rail spells them)."""

    TIMEOUT = "RAIL_TIMEOUT"  # sent, no answer in time: unknown
    UNREACHABLE = "RAIL_UNREACHABLE"  # never connected, so never sent: definitive
    CONNECTION_LOST = "RAIL_CONNECTION_LOST"  # broke after sending: unknown
    MALFORMED_RESPONSE = "MALFORMED_RESPONSE"  # an answer that cannot be read: unknown
    NOTIFICATION_UNVERIFIABLE = "NOTIFICATION_UNVERIFIABLE"
    INVALID_REQUEST = "INVALID_REQUEST"  # the rail cannot take the request as it is
    NEVER_RECEIVED = "rail_never_received"  # the rail still has no such order, too late


# --------------------------------------------------------------------------- wire shapes
@final
@dataclass(frozen=True, slots=True)
class HttpRequest:
    """One HTTP call to a rail, fully built and signed by the adapter."""

    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes = b""


@final
@dataclass(frozen=True, slots=True)
class HttpResponse:
    status: int
    headers: Mapping[str, str]
    body: bytes


# --------------------------------------------------------------------------- operations
@final
@dataclass(frozen=True, slots=True)
class Charge:
    """Start a payment at the rail.

    `rail_order_no` is the rail-side idempotency key of this attempt: repeating the
    call with it must never charge twice.
    """

    rail_order_no: str
    amount: int
    currency: str
    scene: str
    description: str
    payer: Mapping[str, str]
    notify_url: str
    metadata: Mapping[str, str] = field(default_factory=dict)


@final
@dataclass(frozen=True, slots=True)
class Query:
    rail_order_no: str


@final
@dataclass(frozen=True, slots=True)
class Close:
    """Close an unpaid order (QR / in-app scenes)."""

    rail_order_no: str


@final
@dataclass(frozen=True, slots=True)
class Reverse:
    """Cancel a payer-code charge whatever its state: closes if unpaid, refunds if paid."""

    rail_order_no: str


@final
@dataclass(frozen=True, slots=True)
class Refund:
    rail_order_no: str
    rail_refund_no: str
    amount: int
    total: int
    currency: str
    reason: str
    notify_url: str


@final
@dataclass(frozen=True, slots=True)
class RefundQuery:
    rail_order_no: str
    rail_refund_no: str


@final
@dataclass(frozen=True, slots=True)
class Payout:
    """Send money to a person's wallet or account (a merchant transfer, not a refund).

    `rail_payout_no` is derived from the router's payout: repeating the call with it must
    never pay twice, so a payout whose answer was lost is retried or queried, never re-sent
    under a new number. `payee` is the rail's own identity of the person: a WeChat openid,
    an Alipay user id (2088...), a bank account number. `name` is the payee's verified
    real name when it is carried (WeChat requires it from 2,000 CNY); the rail checks it
    against the account.
    """

    rail_payout_no: str
    amount: int
    currency: str
    payee: str
    remark: str
    notify_url: str
    name: str | None = None


@final
@dataclass(frozen=True, slots=True)
class PayoutQuery:
    rail_payout_no: str


Operation = (Charge | Query | Close | Reverse | Refund | RefundQuery | Payout | PayoutQuery
             | MerchantServiceOp)


def unsupported(rail: str, op: object) -> RailError:
    """A definitive refusal, before sending, of an operation the rail does not offer."""
    return RailError(RailErrorCode.INVALID_REQUEST,
                     f"the {rail} rail offers no {type(op).__name__.lower()}", definitive=True)


# --------------------------------------------------------------------------- results
class RailStatus(enum.Enum):
    """What the rail says about an order, a refund or a payout, in the router's terms.

    A payout is PROCESSING until paid (SUCCEEDED) or definitively not paid (FAILED, with
    the rail's reason in `failure_code`); NOT_FOUND means the rail never received it."""

    REQUIRES_ACTION = "requires_action"  # order open, the payer must act (scan, confirm)
    PROCESSING = "processing"  # accepted, outcome not known yet (payer confirming)
    SUCCEEDED = "succeeded"  # money taken (payments) / returned (refunds)
    FAILED = "failed"  # definitively not charged / not refunded
    CLOSED = "closed"  # closed or reversed with no money kept
    NOT_FOUND = "not_found"  # the rail has no such order: no proof of anything


@final
@dataclass(frozen=True, slots=True)
class Action:
    """What the payer must do next: shown to the upstream app as `action`."""

    type: ActionType
    data: Mapping[str, object]

    def to_json(self) -> dict[str, object]:
        return {"type": self.type.value, **self.data}


@final
@dataclass(frozen=True, slots=True)
class RailResult:
    status: RailStatus
    rail_reference: str | None = None  # the rail's own transaction / refund id
    action: Action | None = None
    failure_code: str | None = None
    failure_message: str | None = None
    amount: int | None = None  # amount the rail reports, for cross-checks
    refunded_amount: int | None = None
    payer_amount: PayerAmount | None = None  # cross-border: what the payer paid, and the rate
    deposit_free: bool | None = None  # an authorisation that holds nothing (credit)
    unshared: tuple[str, ...] = ()  # a finished split's receivers (accounts) the rail closed
    bill: tuple[BillLine, ...] | None = None  # a downloaded bill


@final
class RailError(Exception):
    """The rail refused or the outcome is unknown.

    `definitive=True` means the rail said no and moved no money: the payment may fail
    (or fail over). `definitive=False` means nothing can be concluded: the payment stays
    `processing` and the sweeper queries the rail.

    `param` names the canonical request field at fault (`amount`, `payer.openid`...)
    when the refusal is about the request itself, so the API's error can point at it.
    """

    __slots__ = ("code", "definitive", "message", "param")

    def __init__(self, code: str, message: str, *, definitive: bool,
                 param: str | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.definitive = definitive
        self.param = param


# --------------------------------------------------------------------------- notifications
class NotificationKind(enum.StrEnum):
    PAYMENT = "payment"
    REFUND = "refund"
    PAYOUT = "payout"  # `rail_order_no` then holds the payout's `rail_payout_no`
    INVOICE = "invoice"  # `rail_order_no` then holds the invoice's `rail_invoice_no`
    AUTHORIZATION = "authorization"  # `rail_order_no` then holds the `rail_auth_no`


@final
@dataclass(frozen=True, slots=True)
class Notification:
    """A verified asynchronous message from a rail."""

    kind: NotificationKind
    rail_order_no: str
    result: RailResult
    rail_refund_no: str | None = None


# --------------------------------------------------------------------------- adapter
@final
@dataclass(frozen=True, slots=True)
class AdapterConfig:
    """What an adapter factory receives: where its rail is and its credential bundle."""

    name: str
    base_url: str
    keys_dir: Path | None
    options: Mapping[str, object] = field(default_factory=dict)


class Adapter(Protocol):
    """A payment rail, as the core sees it. Implementations are pure (no I/O)."""

    @property
    def name(self) -> str: ...

    @property
    def scenes(self) -> frozenset[str]:
        """The `scene` values this rail can take."""
        ...

    def build(self, op: Operation) -> HttpRequest | RailResult:
        """The HTTP request that performs `op`, or the result itself (in-process rails).

        Must have no effect: the core builds a charge before it knows whether it will
        send it (to refuse a request the rail cannot take before anything is written).
        An in-process rail that keeps state must apply the operation when it is sent,
        not here."""
        ...

    def parse(self, op: Operation, response: HttpResponse) -> RailResult:
        """The canonical result of `op`; raises `RailError` on a refusal or an unknown outcome."""
        ...

    def verify_notification(self, headers: Mapping[str, str], body: bytes) -> Notification:
        """Check signature (and decrypt); raises `RailError` when unverifiable."""
        ...

    def notification_reply(self, accepted: bool) -> HttpResponse:
        """What the rail expects as the answer to its notification."""
        ...
