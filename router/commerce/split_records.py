"""Profit sharing's records: a split of a paid payment among receivers, as Redis holds
it and as the API shows it.

A split's rail-side number is derived from its id, and its id from (payment,
out_split_no), so a retried split can never share twice. Each receiver is resolved to
its account at the rail when the split is made and kept with it: a query, a retry or a
refund's return later goes to the same account.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Final, Literal, final

import orjson

from router.domain import iso

DEFAULT_MAX_SPLIT_BP: Final = 3000  # 30 %: the rails' default ratio cap


class SplitStatus(enum.StrEnum):
    PROCESSING = "processing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


SPLIT_EVENTS: Final = {SplitStatus.SUCCEEDED: "split.succeeded",
                       SplitStatus.FAILED: "split.failed"}

ReceiverType = Literal["service_provider", "merchant", "user"]


@final
@dataclass(frozen=True, slots=True)
class Share:
    """One receiver of a split: who it is to the API, and its account at the rail (a
    merchant number for providers and sub-merchants, a wallet for a user)."""

    type: ReceiverType
    id: str
    amount: int
    account: str
    description: str

    @property
    def kind(self) -> Literal["merchant", "user"]:
        return "user" if self.type == "user" else "merchant"

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type, "id": self.id, "amount": self.amount}


@final
@dataclass(frozen=True, slots=True)
class SplitOrder:
    """What a split is, fixed at creation (the `d` JSON of its hash)."""

    payment_id: str
    merchant_id: str
    provider: str | None  # the service provider that made the payment, if one did
    out_split_no: str
    currency: str
    rail: str  # the payment's rail (a partner-mode instance for a provider's payment)
    rail_order_no: str
    rail_reference: str  # the rail's transaction id of the payment
    shares: tuple[Share, ...]
    created_ms: int
    notify_url: str | None  # the payment's: where the split's events go

    def pack(self) -> bytes:
        return orjson.dumps({
            "p": self.payment_id, "m": self.merchant_id, "sp": self.provider,
            "o": self.out_split_no, "c": self.currency, "r": self.rail,
            "ro": self.rail_order_no, "rr": self.rail_reference, "t": self.created_ms,
            "n": self.notify_url,
            "sh": [[s.type, s.id, s.amount, s.account, s.description] for s in self.shares],
        })

    @classmethod
    def unpack(cls, raw: bytes) -> SplitOrder:
        d = orjson.loads(raw)
        shares = tuple(Share(t, i, a, acc, desc) for t, i, a, acc, desc in d["sh"])
        return cls(d["p"], d["m"], d["sp"], d["o"], d["c"], d["r"], d["ro"], d["rr"], shares,
                   d["t"], d["n"])

    def share_name(self, split_id: str, index: int) -> str:
        """A share's field among the payment's returnable shares. Refunds take shares back
        in the fields' order: merchant accounts first (WeChat takes money back only from
        merchants), then the newest split first, then the split's own order."""
        person = 1 if self.shares[index].kind == "user" else 0
        return f"{person}{10**13 - self.created_ms:013d}:{split_id}:{index}"


def share_of(name: str) -> tuple[str, int]:
    """(split id, receiver index) of a share's field name."""
    _, split_id, index = name.split(":")
    return split_id, int(index)


@final
@dataclass(frozen=True, slots=True)
class SplitState:
    """What the rail has said so far (the `x` JSON)."""

    sent: bool = False  # the Split went out at least once (a query can tell)
    checks: int = 0
    rail_reference: str | None = None  # the rail's own number of the split
    failure_code: str | None = None
    failure_message: str | None = None

    def pack(self) -> bytes:
        return orjson.dumps([self.sent, self.checks, self.rail_reference, self.failure_code,
                             self.failure_message])

    @classmethod
    def unpack(cls, raw: bytes) -> SplitState:
        sent, checks, ref, code, message = orjson.loads(raw)
        return cls(sent, checks, ref, code, message)


@final
@dataclass(frozen=True, slots=True)
class Split:
    id: str
    order: SplitOrder
    amount: int
    status: SplitStatus
    version: int
    updated_ms: int
    state: SplitState
    returned: int = 0  # taken back from the receivers by refunds

    @property
    def rail_split_no(self) -> str:
        """The rail-side number: the id without its underscore, the same on every retry."""
        return self.id.replace("_", "")

    @classmethod
    def from_hash(cls, split_id: str, h: dict[bytes, bytes]) -> Split:
        return cls(split_id, SplitOrder.unpack(h[b"d"]), int(h[b"a"]),
                   SplitStatus(h[b"s"].decode()), int(h[b"v"]), int(h[b"u"]),
                   SplitState.unpack(h[b"x"]), int(h.get(b"ret", b"0")))

    def to_json(self) -> dict[str, Any]:
        o = self.order
        out: dict[str, Any] = {
            "id": self.id, "object": "split", "payment_id": o.payment_id,
            "out_split_no": o.out_split_no, "status": self.status.value,
            "amount": self.amount, "currency": o.currency,
            "receivers": [s.to_json() for s in o.shares],
            "returned_amount": self.returned,
            "created_at": iso(o.created_ms), "updated_at": iso(self.updated_ms),
        }
        if o.provider is not None:
            out["service_provider"] = o.provider
        if self.state.rail_reference:
            out["rail_reference"] = self.state.rail_reference
        if self.status is SplitStatus.FAILED:
            out["failure"] = {"code": self.state.failure_code or "split_failed",
                              "message": self.state.failure_message or ""}
        return out

    def render(self) -> bytes:
        return orjson.dumps(self.to_json())
