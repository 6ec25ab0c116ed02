"""An authorization as Redis holds it and as the API shows it.

A hold on a payer's funds (Alipay fund authorisation) or a credit promise that holds
nothing (`deposit_free`: Alipay credit, WeChat Pay Score), captured once into a normal
payment, or released by a void or at expiry.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from typing import Any, Final, final

import orjson

from router.domain import iso


class AuthStatus(enum.StrEnum):
    PROCESSING = "processing"  # the hold was asked for and the rail's answer is unknown
    REQUIRES_ACTION = "requires_action"  # the payer has to confirm it (`action`)
    AUTHORIZED = "authorized"
    CAPTURING = "capturing"  # a capture is in flight: only the rail's word ends it
    RELEASING = "releasing"  # a void or expiry is in flight
    CAPTURED = "captured"
    VOIDED = "voided"
    EXPIRED = "expired"
    FAILED = "failed"


# Waiting for the rail's word on the hold itself.
PENDING: Final = frozenset({AuthStatus.PROCESSING, AuthStatus.REQUIRES_ACTION})
ENDED: Final = frozenset({AuthStatus.CAPTURED, AuthStatus.VOIDED, AuthStatus.EXPIRED,
                          AuthStatus.FAILED})

# The event sent when an authorization enters a status (from another one).
AUTH_EVENTS: Final[dict[AuthStatus, str]] = {
    AuthStatus.AUTHORIZED: "authorization.authorized",
    AuthStatus.CAPTURED: "authorization.captured",
    AuthStatus.VOIDED: "authorization.voided",
    AuthStatus.EXPIRED: "authorization.expired",
    AuthStatus.FAILED: "authorization.failed",
}


@final
@dataclass(frozen=True, slots=True)
class AuthOrder:
    """What an authorization is, fixed at creation (the `d` JSON of its hash)."""

    merchant_id: str
    out_auth_no: str
    amount: int
    currency: str
    method: str  # alipay | wechatpay
    rail: str  # the configured rail that holds it
    scene: str
    payer: dict[str, str]
    description: str
    min_score: int | None
    created_ms: int
    expires_ms: int

    def pack(self) -> bytes:
        return orjson.dumps({
            "m": self.merchant_id, "o": self.out_auth_no, "a": self.amount,
            "c": self.currency, "me": self.method, "r": self.rail, "sc": self.scene,
            "p": self.payer, "de": self.description, "ms": self.min_score,
            "t": self.created_ms, "ex": self.expires_ms,
        })

    @classmethod
    def unpack(cls, raw: bytes) -> AuthOrder:
        d = orjson.loads(raw)
        return cls(d["m"], d["o"], d["a"], d["c"], d["me"], d["r"], d["sc"], d["p"], d["de"],
                   d["ms"], d["t"], d["ex"])


@final
@dataclass(frozen=True, slots=True)
class AuthState:
    """What the rail has said so far (the `x` JSON)."""

    rail_reference: str | None = None  # the rail's number of the hold (auth_no / order_id)
    action: dict[str, Any] | None = None
    deposit_free: bool | None = None
    failure_code: str | None = None
    failure_message: str | None = None
    checks: int = 0
    release_to: str | None = None  # voided | expired: what a release in flight ends as

    def pack(self) -> bytes:
        return orjson.dumps([self.rail_reference, self.action, self.deposit_free,
                             self.failure_code, self.failure_message, self.checks,
                             self.release_to])

    @classmethod
    def unpack(cls, raw: bytes) -> AuthState:
        ref, action, free, code, message, checks, release_to = orjson.loads(raw)
        return cls(ref, action, free, code, message, checks, release_to)

    def counted(self) -> AuthState:
        return replace(self, checks=self.checks + 1)


@final
@dataclass(frozen=True, slots=True)
class Capture:
    """The one capture of an authorization: reserved by a script before it is sent."""

    amount: int
    payment_id: str
    out_trade_no: str


@final
@dataclass(frozen=True, slots=True)
class Authorization:
    id: str
    order: AuthOrder
    status: AuthStatus
    version: int
    updated_ms: int
    state: AuthState
    capture: Capture | None = None

    @property
    def rail_auth_no(self) -> str:
        """The rail-side number: the id without its underscore, the same on every retry."""
        return self.id.replace("_", "")

    @property
    def rail_release_no(self) -> str:
        """The number of the one release (void or expiry) of the hold."""
        return self.rail_auth_no + "R"

    @classmethod
    def from_hash(cls, auth_id: str, h: dict[bytes, bytes]) -> Authorization:
        capture = None
        if h.get(b"cp"):
            capture = Capture(int(h[b"c"]), h[b"cp"].decode(), h[b"co"].decode())
        return cls(auth_id, AuthOrder.unpack(h[b"d"]), AuthStatus(h[b"s"].decode()),
                   int(h[b"v"]), int(h[b"u"]), AuthState.unpack(h[b"x"]), capture)

    def to_json(self) -> dict[str, Any]:
        o = self.order
        captured = self.capture is not None and self.status is AuthStatus.CAPTURED
        out: dict[str, Any] = {
            "id": self.id, "object": "authorization", "status": self.status.value,
            "amount": o.amount, "currency": o.currency, "out_auth_no": o.out_auth_no,
            "method": o.method, "scene": o.scene, "description": o.description,
            "deposit_free": bool(self.state.deposit_free),
            "captured_amount": self.capture.amount if captured and self.capture else 0,
            "expires_at": iso(o.expires_ms), "created_at": iso(o.created_ms),
            "updated_at": iso(self.updated_ms),
        }
        if o.min_score is not None:
            out["min_score"] = o.min_score
        if self.capture is not None and self.status in (AuthStatus.CAPTURING,
                                                        AuthStatus.CAPTURED):
            out["payment_id"] = self.capture.payment_id
        if self.state.action is not None and self.status is AuthStatus.REQUIRES_ACTION:
            out["action"] = self.state.action
        if self.state.rail_reference:
            out["rail_reference"] = self.state.rail_reference
        if self.status is AuthStatus.FAILED:
            out["failure"] = {"code": self.state.failure_code or "unknown",
                              "message": self.state.failure_message or ""}
        return out

    def render(self) -> bytes:
        return orjson.dumps(self.to_json())
