"""Payments and refunds: statuses, the one transition table, and their public JSON.

A payment record in Redis is a small hash (see `store/keys.py`): immutable creation data
in one msgpack blob, the mutable rail-facing state in another, and the few numbers the
Lua scripts must read (status, version, amount, refunded, reserved) as plain fields.
"""

from __future__ import annotations

import enum
import functools
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, final

import msgpack
import orjson

from adapters.base import Scene
from router.promotions.applied import AppliedReward, discount_of
from router.store import codec


class Status(enum.StrEnum):
    REQUIRES_ACTION = "requires_action"
    PROCESSING = "processing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CLOSED = "closed"
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"


class RefundStatus(enum.StrEnum):
    PROCESSING = "processing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


# Every allowed move of a payment. Refund-driven moves (succeeded → partially_refunded →
# refunded) are applied by the refund script from the refunded sum, listed here for the
# record. Staying in the same status (e.g. processing → processing with new rail data)
# is allowed for the non-terminal ones.
TRANSITIONS: Final[dict[Status, frozenset[Status]]] = {
    Status.PROCESSING: frozenset(
        {Status.PROCESSING, Status.REQUIRES_ACTION, Status.SUCCEEDED, Status.FAILED, Status.CLOSED}
    ),
    Status.REQUIRES_ACTION: frozenset(
        {Status.REQUIRES_ACTION, Status.PROCESSING, Status.SUCCEEDED, Status.FAILED, Status.CLOSED}
    ),
    Status.SUCCEEDED: frozenset({Status.PARTIALLY_REFUNDED, Status.REFUNDED}),
    Status.PARTIALLY_REFUNDED: frozenset({Status.PARTIALLY_REFUNDED, Status.REFUNDED}),
    Status.FAILED: frozenset(),
    Status.CLOSED: frozenset(),
    Status.REFUNDED: frozenset(),
}

UNSETTLED: Final = frozenset({Status.PROCESSING, Status.REQUIRES_ACTION})

# The webhook event sent when a payment enters a status.
PAYMENT_EVENTS: Final[dict[Status, str]] = {
    Status.SUCCEEDED: "payment.succeeded",
    Status.FAILED: "payment.failed",
    Status.CLOSED: "payment.closed",
}
REFUND_EVENTS: Final[dict[RefundStatus, str]] = {
    RefundStatus.SUCCEEDED: "refund.succeeded",
    RefundStatus.FAILED: "refund.failed",
}


# One packer for every blob (`packb` builds one per call); it resets itself after each
# `pack`, an error included, and nothing awaits inside one.
_PACKER: Final = msgpack.Packer()


def _pack(obj: object) -> bytes:
    packed: bytes = _PACKER.pack(obj)
    return packed


def _pack_creation(fields: list[Any]) -> bytes:
    """A creation blob (`d`, written once, read on every load): msgpack, compressed
    (codec.py; about 280 → 175 bytes for a payment)."""
    return codec.pack(_pack(fields))


def _unpack_creation(stored: bytes) -> Any:
    return msgpack.unpackb(codec.unpack(stored))


def _optional(*tail: Any) -> list[Any]:
    """Trailing optional fields of a blob, the unset ones at its end left out (so a blob
    without them is as it was before they existed)."""
    items = list(tail)
    while items and items[-1] is None:
        items.pop()
    return items


def iso(ms: int) -> str:
    """RFC 3339 UTC with millisecond precision."""
    seconds, millis = divmod(ms, 1000)
    return f"{_iso_seconds(seconds)}.{millis:03d}Z"


@functools.lru_cache(maxsize=64)
def _iso_seconds(seconds: int) -> str:
    # Formatting a datetime is slow, and a busy gateway stamps the same second many times.
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")


# --------------------------------------------------------------------------- payment
@final
@dataclass(slots=True)
class Attempt:
    """One try at one rail; `rail_order_no` is the rail-side idempotency key."""

    number: int
    rail: str
    rail_order_no: str
    failure_code: str | None = None  # set when the rail refused it and the router moved on
    # A payment handed over to another payer (a pay-for-me link) is paid in that payer's
    # wallet and scene: the attempt then carries its own scene and payer.
    scene: Scene | None = None
    payer: dict[str, str] | None = None
    via: str | None = None  # e.g. "share_link"

    def to_wire(self) -> list[Any]:
        return [self.number, self.rail, self.rail_order_no, self.failure_code, self.scene,
                self.payer, self.via]

    @classmethod
    def from_wire(cls, raw: list[Any]) -> Attempt:
        number, rail, rail_order_no, failure_code, scene, payer, via = raw
        return cls(number, rail, rail_order_no, failure_code,
                   Scene(scene) if scene else None, payer, via)

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"number": self.number, "adapter": self.rail,
                                "rail_order_no": self.rail_order_no}
        if self.failure_code is not None:
            body["failure_code"] = self.failure_code
        if self.scene is not None:
            body["scene"] = self.scene
        if self.via is not None:
            body["via"] = self.via
        return body


@final
@dataclass(slots=True)
class RailState:
    """The mutable, rail-facing part of a payment (blob `x`)."""

    attempts: list[Attempt] = field(default_factory=list)
    action: dict[str, Any] | None = None
    failure: dict[str, str] | None = None
    rail_reference: str | None = None
    checks: int = 0  # how many times the sweeper has queried the rail
    # The router asked the rail to close or reverse the order: a "closed" the rail
    # reports later is then the router's own doing (`closed`), not the payer's failure.
    closing: bool = False
    # The current attempt's charge was sent and no answer came (timeout, 5xx): a retry
    # of the create sends it again (same rail_order_no) to learn what the rail says.
    unanswered: bool = False
    # Cross-border: what the payer paid in their currency and the rail's rate, as the
    # API shows them ({"payer_amount": {...}, "exchange_rate": {...}}).
    fx: dict[str, Any] | None = None

    def pack(self) -> bytes:
        return _pack(
            [
                [a.to_wire() for a in self.attempts],
                self.action,
                self.failure,
                self.rail_reference,
                self.checks,
                self.closing,
                self.unanswered,
                *([self.fx] if self.fx else []),
            ]
        )

    @classmethod
    def unpack(cls, blob: bytes) -> RailState:
        attempts, action, failure, ref, checks, closing, unanswered, *fx = msgpack.unpackb(blob)
        return cls([Attempt.from_wire(a) for a in attempts], action, failure, ref, checks,
                   closing, unanswered, fx[0] if fx else None)

    @property
    def current(self) -> Attempt:
        return self.attempts[-1]


@final
@dataclass(slots=True)
class Payment:
    id: str
    merchant_id: str
    amount: int
    currency: str
    out_trade_no: str
    scene: Scene
    method: str
    description: str
    payer: dict[str, str]
    notify_url: str | None
    metadata: dict[str, str]
    routing: dict[str, Any]
    created_ms: int
    # mutable
    status: Status
    version: int
    updated_ms: int
    refunded_amount: int
    rail: RailState
    # The service provider that made the payment for its sub-merchant `merchant_id`
    # (partner mode): only it sees the payment. Stored only when set, so a direct
    # merchant's creation blob is unchanged.
    service_provider: str | None = None
    # The payment's current e-invoice (field `iv`, written by the invoice scripts,
    # router/commerce/invoices.py); None until one is asked for.
    invoice: str | None = None
    # Campaign rewards reserved with the payment (router/promotions/campaign_holds.py),
    # in the creation blob after `service_provider`, only when there are any.
    promotions: tuple[AppliedReward, ...] = ()

    @property
    def charged_amount(self) -> int:
        """What the rail charges: the amount less a campaign's discount."""
        return self.amount - discount_of(self.promotions) if self.promotions else self.amount

    @property
    def scope(self) -> str:
        """Whose Idempotency-Keys answer for this payment (as `Merchant.scope`)."""
        if self.service_provider is None:
            return self.merchant_id
        return f"{self.merchant_id}~{self.service_provider}"

    # -- creation blob (`d`): written once
    def pack_creation(self) -> bytes:
        return _pack_creation(
            [
                self.id,
                self.merchant_id,
                self.amount,
                self.currency,
                self.out_trade_no,
                self.scene,
                self.method,
                self.description,
                self.payer,
                self.notify_url,
                self.metadata,
                self.routing,
                self.created_ms,
                *_optional(self.service_provider,
                           [p.to_wire() for p in self.promotions] or None),
            ]
        )

    @classmethod
    def from_hash(cls, fields: dict[bytes, bytes]) -> Payment:
        (pid, mid, amount, currency, otn, scene, method, desc, payer, url, meta, routing,
         created, *provider) = _unpack_creation(fields[b"d"])
        promotions = provider[1] if len(provider) > 1 else ()
        return cls(
            id=pid,
            merchant_id=mid,
            amount=amount,
            currency=currency,
            out_trade_no=otn,
            scene=Scene(scene),
            method=method,
            description=desc,
            payer=payer,
            notify_url=url,
            metadata=meta,
            routing=routing,
            created_ms=created,
            status=Status(fields[b"s"].decode()),
            version=int(fields[b"v"]),
            updated_ms=int(fields[b"u"]),
            refunded_amount=int(fields.get(b"rf", b"0")),  # written by the first refund
            rail=RailState.unpack(fields[b"x"]),
            service_provider=provider[0] if provider else None,
            promotions=tuple(AppliedReward.from_wire(p) for p in promotions),
            invoice=fields[b"iv"].decode() if b"iv" in fields else None,
        )

    def render(self) -> bytes:
        """The payment as the API answers it, serialised."""
        return orjson.dumps(self.to_json())

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id,
            "object": "payment",
            "status": self.status.value,
            "amount": self.amount,
            "currency": self.currency,
            "out_trade_no": self.out_trade_no,
            "scene": self.scene,
            "method": self.method,
            "adapter": self.rail.current.rail if self.rail.attempts else self.method,
            "description": self.description,
            "refunded_amount": self.refunded_amount,
            "metadata": self.metadata,
            "created_at": iso(self.created_ms),
            "updated_at": iso(self.updated_ms),
            "routing": self.routing,
            "attempts": [a.to_json() for a in self.rail.attempts],
        }
        if self.notify_url:
            body["notify_url"] = self.notify_url
        if self.rail.action is not None and self.status in UNSETTLED:
            body["action"] = self.rail.action
        if self.rail.failure is not None and self.status is Status.FAILED:
            body["failure"] = self.rail.failure
        if self.rail.rail_reference:
            body["rail_reference"] = self.rail.rail_reference
        if self.promotions:
            body["promotions"] = [p.to_json(self.status.value) for p in self.promotions]
            if (discount := discount_of(self.promotions)) and not self.rail.fx:
                body["payer_amount"] = {"amount": self.amount - discount,
                                        "currency": self.currency}
        if self.rail.fx:
            body.update(self.rail.fx)
        if self.service_provider is not None:
            body["service_provider"] = self.service_provider
        if self.invoice is not None:
            body["invoice"] = self.invoice
        return body


FUNDING_SUFFIX: Final = ":fund"  # ':' is refused in an API out_trade_no: no forgery


def funding_trade_no(object_id: str) -> str:
    """The out_trade_no of the payment that funds a red packet or transfer."""
    return object_id + FUNDING_SUFFIX


def funded_object(payment: Payment) -> str | None:
    """The red packet or transfer this payment funds, if it is a funding payment."""
    otn = payment.out_trade_no
    return otn.removesuffix(FUNDING_SUFFIX) if otn.endswith(FUNDING_SUFFIX) else None
