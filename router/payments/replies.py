"""What a request is answered, decoupled from aiohttp so a script can store it verbatim,
and the ONE table from a typed refusal to its HTTP answer."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, assert_never, final

import orjson

from adapters.base import RailError, RailErrorCode
from router.errors import RouterError, invalid_state, not_found
from router.store.outcomes import (
    ExceedsPaid,
    KeyInUse,
    KeyReused,
    Limited,
    NotRefundable,
    OutRefundNoConflict,
    OutTradeNoConflict,
    PaymentMissing,
    SharesInFlight,
)


@final
@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    # An answer that says the outcome is not known yet: never stored for replay, so a
    # retry with the same Idempotency-Key asks the rail again.
    provisional: bool = False

    @classmethod
    def json(cls, status: int, obj: Any) -> Reply:
        return cls(status, orjson.dumps(obj))

    @classmethod
    def error(cls, err: RouterError, *, provisional: bool = False) -> Reply:
        return cls(err.http_status, err.body(), dict(err.headers), provisional)


REPLAYED: dict[str, str] = {"Idempotent-Replayed": "true"}


@final
@dataclass(frozen=True, slots=True)
class IdemTicket:
    """Proof that this request owns an idempotency key until it stores its response."""

    shard: int
    merchant_id: str
    key: str
    owner: str


Refusal = (KeyInUse | KeyReused | Limited | OutTradeNoConflict | OutRefundNoConflict
           | NotRefundable | ExceedsPaid | PaymentMissing | SharesInFlight)


def refusal(outcome: Refusal, *, limit: str = "merchant") -> RouterError:
    """The error a store refusal is answered with (`limit` names a Limited's bucket)."""
    match outcome:
        case KeyInUse():
            return RouterError(409, "idempotency_key_in_use",
                               "A request with this Idempotency-Key is still in progress.")
        case KeyReused():
            return RouterError(422, "idempotency_key_reused",
                               "This Idempotency-Key was used with a different request body.")
        case Limited():
            return too_many(outcome, limit)
        case OutTradeNoConflict():
            return RouterError(409, "out_trade_no_used",
                               "out_trade_no was already used with different parameters.",
                               param="out_trade_no")
        case OutRefundNoConflict():
            return RouterError(409, "out_refund_no_used",
                               "out_refund_no was already used with different parameters.",
                               param="out_refund_no")
        case NotRefundable():
            return invalid_state(
                f"Only a paid payment can be refunded; this one is {outcome.status}.")
        case ExceedsPaid():
            return RouterError(422, "refund_exceeds_amount",
                               f"Refunds would exceed the amount paid; at most "
                               f"{outcome.refundable} can still be refunded.", param="amount")
        case PaymentMissing():
            return not_found("payment")
        case SharesInFlight():
            return invalid_state(
                f"This refund needs {outcome.short} more of the money shared from this "
                f"payment, and a split still processing holds it; retry once it settles.")
        case _:
            assert_never(outcome)


def too_many(limited: Limited, which: str) -> RouterError:
    retry_s = max(1, math.ceil(limited.wait_ms / 1000))
    return RouterError(
        429,
        "rate_limited",
        f"Too many requests: the {which} limit was reached. Retry after {retry_s} s.",
        headers={
            "Retry-After": str(retry_s),
            "RateLimit-Limit": str(limited.burst),
            "RateLimit-Remaining": "0",
            "RateLimit-Reset": str(retry_s),
        },
    )


def rail_unknown(err: RailError, payment_id: str, status: str) -> RouterError:
    """A charge whose outcome is unknown (or a rail never reached): the payment stands
    as `status`, and a retry of the same request asks the rail again."""
    extra: dict[str, object] = {"payment_id": payment_id, "payment_status": status}
    if err.code == RailErrorCode.UNREACHABLE:
        return RouterError(502, "adapter_error",
                           "The rail could not be reached; the payment failed.", extra=extra)
    if err.code == RailErrorCode.TIMEOUT:
        return RouterError(504, "adapter_timeout",
                           "The rail's answer is unknown; the payment stays processing and is "
                           "settled by querying the rail.", extra=extra)
    return RouterError(502, "adapter_error",
                       "The rail's answer is unknown; the payment stays processing and is "
                       "settled by querying the rail.", extra=extra)


def rail_refused_request(err: RailError) -> RouterError:
    """The rail cannot take the request as it is: the caller's error, nothing written;
    `param` is the request field the adapter named."""
    return RouterError(422, "validation_error", err.message, param=err.param)
