"""What the store's scripts decided, as types: callers `match` on these, never on the
scripts' reply strings (which stay inside the store).

`router/payments/replies.py` is the one table from a refusal here to an HTTP answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import final

from router.store import codec


# --------------------------------------------------------------------------- idempotency
@final
@dataclass(frozen=True, slots=True)
class Claimed:
    """The request now owns its idempotency key (or used none)."""


@final
@dataclass(frozen=True, slots=True)
class Replayed:
    """The key already holds an answer: send it again, byte for byte."""

    status: int
    body: bytes


@final
@dataclass(frozen=True, slots=True)
class KeyInUse:
    """Another request holds the key and its lease is live."""


@final
@dataclass(frozen=True, slots=True)
class KeyReused:
    """The key was used with a different request."""


@final
@dataclass(frozen=True, slots=True)
class TakenOver:
    """The key's previous owner died before answering; this request owns it now.
    `payment_id` is the payment that owner was creating ("" when unknown)."""

    payment_id: str


# --------------------------------------------------------------------------- limits
@final
@dataclass(frozen=True, slots=True)
class Limited:
    """A rate limit refused the call: `which` is the index of the refusing spec."""

    wait_ms: float
    burst: int
    which: int


# --------------------------------------------------------------------------- payments
@final
@dataclass(frozen=True, slots=True)
class Created:
    """Written: the caller goes on to the rail."""


@final
@dataclass(frozen=True, slots=True)
class Exists:
    """The natural key (out_trade_no) already holds this very payment."""

    payment_id: str


@final
@dataclass(frozen=True, slots=True)
class OutTradeNoConflict:
    """The natural key holds a payment with other parameters."""


@final
@dataclass(frozen=True, slots=True)
class Moved:
    """A compare-and-set went through."""


@final
@dataclass(frozen=True, slots=True)
class Stale:
    """A compare-and-set lost a race (the record changed, or is missing): re-read."""


CreateOutcome = (Created | Replayed | KeyInUse | KeyReused | TakenOver | Limited | Exists
                 | OutTradeNoConflict)
ClaimOutcome = Claimed | Replayed | KeyInUse | KeyReused | TakenOver
MoveOutcome = Moved | Stale


# --------------------------------------------------------------------------- refunds
@final
@dataclass(frozen=True, slots=True)
class RefundExists:
    refund_id: str


@final
@dataclass(frozen=True, slots=True)
class OutRefundNoConflict:
    pass


@final
@dataclass(frozen=True, slots=True)
class NotRefundable:
    """The payment is not paid (its status is `status`)."""

    status: str


@final
@dataclass(frozen=True, slots=True)
class ExceedsPaid:
    """The refund would take reserved + amount above the amount paid."""

    refundable: int


@final
@dataclass(frozen=True, slots=True)
class PaymentMissing:
    pass


@final
@dataclass(frozen=True, slots=True)
class RefundReserved:
    """Written; `returning` is the shared money (profit sharing) the refund first takes
    back from split receivers (0: none); `payer_amount` what the rail refunds when a
    campaign's reward makes it differ from the amount (None: the amount)."""

    returning: int = 0
    payer_amount: int | None = None


@final
@dataclass(frozen=True, slots=True)
class SharesInFlight:
    """The refund needs shared money that a split still processing holds (`short`)."""

    short: int


# --------------------------------------------------------------------------- social
@final
@dataclass(frozen=True, slots=True)
class Recorded:
    """A new record (payout, red packet, transfer) was written."""


@final
@dataclass(frozen=True, slots=True)
class Existing:
    """Its natural key already holds this very record."""


@final
@dataclass(frozen=True, slots=True)
class NaturalKeyConflict:
    """Its natural key holds a record with other parameters."""


RecordOutcome = Recorded | Existing | NaturalKeyConflict

RefundOutcome = (RefundReserved | RefundExists | OutRefundNoConflict | NotRefundable
                 | ExceedsPaid | PaymentMissing | SharesInFlight)

Reply = Sequence[bytes | int | str]


def _text(value: bytes | int | str) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _idempotency(head: str, rest: Reply) -> Replayed | KeyInUse | KeyReused | TakenOver | None:
    match head:
        case "replay":
            body = rest[1]
            assert isinstance(body, bytes)
            return Replayed(int(_text(rest[0])), codec.unpack(body))
        case "in_use":
            return KeyInUse()
        case "reused":
            return KeyReused()
        case "takeover":
            return TakenOver(_text(rest[0]) if rest else "")
    return None


def limited_of(rest: Reply) -> Limited:
    return Limited(float(_text(rest[0])), int(_text(rest[1])), int(_text(rest[2])) - 1)


def limit_outcome(reply: Reply) -> Limited | None:
    """rate_limit.lua's verdict: None when every bucket admitted the call."""
    return limited_of(reply[1:]) if _text(reply[0]) == "limited" else None


def done(reply: Reply) -> bool:
    """A script that answers {'ok'} or {'missing'}: True for ok."""
    return _text(reply[0]) == "ok"


def create_outcome(reply: Reply) -> CreateOutcome:
    head, *rest = reply
    kind = _text(head)
    if (decided := _idempotency(kind, rest)) is not None:
        return decided
    match kind:
        case "created":
            return Created()
        case "limited":
            return limited_of(rest)
        case "exists":
            return Exists(_text(rest[0]))
        case "conflict":
            return OutTradeNoConflict()
    raise RuntimeError(f"create_payment.lua answered {kind!r}")


def claim_outcome(reply: Reply) -> ClaimOutcome:
    head, *rest = reply
    kind = _text(head)
    if (decided := _idempotency(kind, rest)) is not None:
        return decided
    if kind == "claimed":
        return Claimed()
    raise RuntimeError(f"idem_claim.lua answered {kind!r}")


def move_outcome(reply: Reply) -> MoveOutcome:
    return Moved() if done(reply) else Stale()


def record_outcome(reply: Reply) -> RecordOutcome:
    match _text(reply[0]):
        case "created":
            return Recorded()
        case "exists":
            return Existing()
        case "conflict":
            return NaturalKeyConflict()
    raise RuntimeError(f"a create script answered {_text(reply[0])!r}")


def refund_outcome(reply: Reply) -> RefundOutcome:
    head, *rest = reply
    match _text(head):
        case "created":
            paid_back = _text(rest[1]) if len(rest) > 1 else ""
            return RefundReserved(int(_text(rest[0])) if rest else 0,
                                  int(paid_back) if paid_back else None)
        case "exists":
            return RefundExists(_text(rest[0]))
        case "conflict":
            return OutRefundNoConflict()
        case "state":
            return NotRefundable(_text(rest[0]))
        case "exceeds":
            return ExceedsPaid(int(_text(rest[0])))
        case "missing":
            return PaymentMissing()
        case "sharing":
            return SharesInFlight(int(_text(rest[0])))
    raise RuntimeError(f"create_refund.lua answered {_text(head)!r}")
