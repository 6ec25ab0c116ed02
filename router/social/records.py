"""The social domain's records: users, payouts, red packets (transfers are packets with
one share and one recipient) and grabs, as Redis holds them and as the API shows them.

Real names are personal data: kept for the rails that must check them, shown masked
(`*三`), and never part of a log line, an error or a `repr`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, final

import orjson

from router.domain import iso

LARGE_PAYOUT = 200_000  # 2,000.00 CNY: from here a payout carries the verified name


def mask(name: str) -> str:
    """`张三` → `*三`: only the last character shows."""
    return "*" * (len(name) - 1) + name[-1:] if len(name) > 1 else "*"


# --------------------------------------------------------------------------- users
@final
@dataclass(frozen=True, slots=True)
class User:
    merchant_id: str
    id: str
    wallets: dict[str, dict[str, str]]  # {"wechatpay": {"openid"}, "alipay": {"user_id"}}
    verified: bool
    method: str | None
    name: str | None = field(default=None, repr=False)

    def pack(self) -> bytes:
        return orjson.dumps({"w": self.wallets, "v": self.verified, "m": self.method,
                             "n": self.name})

    @classmethod
    def unpack(cls, merchant_id: str, user_id: str, raw: bytes) -> User:
        d = orjson.loads(raw)
        return cls(merchant_id, user_id, d["w"], d["v"], d["m"], d["n"])

    def to_json(self) -> dict[str, Any]:
        return {
            "object": "user",
            "id": self.id,
            "wallets": self.wallets,
            "real_name": {"status": "verified" if self.verified else "unverified",
                          "method": self.method,
                          "name": mask(self.name) if self.name else None},
        }


# --------------------------------------------------------------------------- payouts
class PayoutStatus(enum.StrEnum):
    PROCESSING = "processing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


PAYOUT_EVENTS = {PayoutStatus.SUCCEEDED: "payout.succeeded",
                 PayoutStatus.FAILED: "payout.failed"}


@final
@dataclass(frozen=True, slots=True)
class PayoutOrder:
    """What a payout is, fixed at creation (the `d` JSON of its hash, with `a` apart
    because a grab's script draws it)."""

    merchant_id: str
    out_payout_no: str
    currency: str
    payee: dict[str, str]  # as the API shows it: {"user"} | {"openid"} | ...
    method: str  # wechatpay | alipay | bank
    rail: str  # the configured rail that pays it
    identity: str  # the payee at that rail: openid, Alipay user id, account number
    description: str
    created_ms: int
    # "" (the API) | "rp:<id>" (a grab of that packet or transfer) | "cmp:<id>:<payment>"
    # (a campaign's cashback for that payment)
    source: str = ""
    name: str | None = field(default=None, repr=False)

    def pack(self) -> bytes:
        return orjson.dumps({
            "m": self.merchant_id, "o": self.out_payout_no, "c": self.currency,
            "p": self.payee, "me": self.method, "r": self.rail, "i": self.identity,
            "de": self.description, "t": self.created_ms, "src": self.source,
            "n": self.name,
        })

    @classmethod
    def unpack(cls, raw: bytes) -> PayoutOrder:
        d = orjson.loads(raw)
        return cls(d["m"], d["o"], d["c"], d["p"], d["me"], d["r"], d["i"], d["de"],
                   d["t"], d["src"], d["n"])


@final
@dataclass(frozen=True, slots=True)
class PayoutState:
    """What the rail has said so far (the `x` JSON)."""

    sent: bool = False  # the Payout went out at least once (a query can tell)
    checks: int = 0
    rail_reference: str | None = None
    failure_code: str | None = None
    failure_message: str | None = None

    def pack(self) -> bytes:
        return orjson.dumps([self.sent, self.checks, self.rail_reference, self.failure_code,
                             self.failure_message])

    @classmethod
    def unpack(cls, raw: bytes) -> PayoutState:
        if raw in (b"", b"{}"):
            return cls()
        sent, checks, ref, code, message = orjson.loads(raw)
        return cls(sent, checks, ref, code, message)


@final
@dataclass(frozen=True, slots=True)
class Payout:
    id: str
    order: PayoutOrder
    amount: int
    status: PayoutStatus
    version: int
    updated_ms: int
    state: PayoutState

    @property
    def rail_payout_no(self) -> str:
        """The rail-side number: the id without its underscore (WeChat takes letters and
        digits only), so every retry sends the same one."""
        return self.id.replace("_", "")

    @classmethod
    def from_hash(cls, pid: str, h: dict[bytes, bytes]) -> Payout:
        return cls(pid, PayoutOrder.unpack(h[b"d"]), int(h[b"a"]), PayoutStatus(h[b"s"].decode()),
                   int(h[b"v"]), int(h[b"u"]), PayoutState.unpack(h.get(b"x", b"")))

    def to_json(self) -> dict[str, Any]:
        o = self.order
        out: dict[str, Any] = {
            "id": self.id, "object": "payout", "status": self.status.value,
            "amount": self.amount, "currency": o.currency, "payee": o.payee,
            "method": o.method, "out_payout_no": o.out_payout_no,
            "description": o.description, "created_at": iso(o.created_ms),
            "updated_at": iso(self.updated_ms),
        }
        if o.source.startswith("rp:"):
            out["red_packet_id"] = o.source.removeprefix("rp:")
        elif o.source.startswith("cmp:"):  # a campaign's cashback for a payment
            out["campaign_id"], _, out["payment_id"] = o.source[4:].partition(":")
        if self.state.rail_reference:
            out["rail_reference"] = self.state.rail_reference
        if self.status is PayoutStatus.FAILED:
            out["failure"] = {"code": self.state.failure_code or "unknown",
                              "message": self.state.failure_message or ""}
        return out

    def render(self) -> bytes:
        return orjson.dumps(self.to_json())
