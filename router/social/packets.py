"""Red packets and transfers as records: a transfer is a packet with one share that only
its named recipient can take, so both share the grab, expiry and refund machinery and
differ in what the API calls their states."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, final

import orjson

from router.domain import iso


class PacketStatus(enum.StrEnum):
    AWAITING_PAYMENT = "awaiting_payment"
    OPEN = "open"
    FINISHED = "finished"  # every share taken
    EXPIRED = "expired"  # closed at expiry (or declined); the rest went back
    CANCELED = "canceled"  # the funding payment failed or was closed: nothing to give


class Kind(enum.StrEnum):
    RED_PACKET = "red_packet"
    TRANSFER = "transfer"


@final
@dataclass(frozen=True, slots=True)
class PacketOrder:
    """What a packet is, fixed at creation (the `d` JSON of its hash)."""

    kind: Kind
    merchant_id: str
    out_no: str
    sender: str
    recipient: str  # transfers: the one user who may take it; "" for red packets
    amount: int
    currency: str
    count: int
    split: str  # random | equal
    note: str  # a red packet's wishing, a transfer's message
    created_ms: int
    expires_ms: int
    payment_id: str

    def pack(self) -> bytes:
        return orjson.dumps([self.kind.value, self.merchant_id, self.out_no, self.sender,
                             self.recipient, self.amount, self.currency, self.count,
                             self.split, self.note, self.created_ms, self.expires_ms,
                             self.payment_id])

    @classmethod
    def unpack(cls, raw: bytes) -> PacketOrder:
        (kind, mid, out_no, sender, recipient, amount, currency, count, split, note,
         created, expires, pid) = orjson.loads(raw)
        return cls(Kind(kind), mid, out_no, sender, recipient, amount, currency, count,
                   split, note, created, expires, pid)


@final
@dataclass(frozen=True, slots=True)
class Grab:
    user: str
    seq: int
    amount: int
    at_ms: int
    payout_id: str

    @classmethod
    def parse(cls, user: str, text: str) -> Grab:
        seq, amount, at, payout_id = text.split(":", 3)
        return cls(user, int(seq), int(amount), int(at), payout_id)

    def to_json(self, packet_id: str, payout_status: str, best_luck: bool) -> dict[str, Any]:
        return {"object": "grab", "id": "grab_" + self.payout_id.removeprefix("po_"),
                "red_packet_id": packet_id, "user": self.user, "amount": self.amount,
                "grabbed_at": iso(self.at_ms), "best_luck": best_luck,
                "payout": {"id": self.payout_id, "status": payout_status}}


@final
@dataclass(frozen=True, slots=True)
class Packet:
    id: str
    order: PacketOrder
    status: PacketStatus
    remaining_amount: int
    remaining_count: int
    best_luck: str
    refunded: int
    pending_event: str  # an event still to send ("" none): finished, expired, refunded
    expiry_done: bool
    updated_ms: int

    @classmethod
    def from_hash(cls, pid: str, h: dict[bytes, bytes]) -> Packet:
        return cls(pid, PacketOrder.unpack(h[b"d"]), PacketStatus(h[b"s"].decode()),
                   int(h[b"ra"]), int(h[b"rc"]), h.get(b"bl", b"").decode(),
                   int(h.get(b"rf", b"0")), h.get(b"ev", b"").decode(),
                   h.get(b"xd", b"0") == b"1", int(h[b"u"]))

    def to_json(self, payment: dict[str, Any] | None, grabs: list[Grab],
                payout_status: dict[str, str]) -> dict[str, Any]:
        if self.order.kind is Kind.TRANSFER:
            return self._transfer_json(payment, grabs, payout_status)
        o = self.order
        out: dict[str, Any] = {
            "id": self.id, "object": "red_packet", "status": self.status.value,
            "out_red_packet_no": o.out_no, "sender": o.sender, "amount": o.amount,
            "currency": o.currency, "count": o.count, "split": o.split, "wishing": o.note,
            "remaining_amount": self.remaining_amount,
            "remaining_count": self.remaining_count, "refunded_amount": self.refunded,
            "created_at": iso(o.created_ms), "expires_at": iso(o.expires_ms),
            "updated_at": iso(self.updated_ms),
            "payment": payment,
            "grabs": [g.to_json(self.id, payout_status.get(g.payout_id, "processing"),
                                g.user == self.best_luck)
                      for g in sorted(grabs, key=lambda g: g.seq)],
        }
        if self.best_luck:
            out["best_luck"] = self.best_luck
        return out

    def transfer_status(self, payout_status: str | None) -> str:
        match self.status:
            case PacketStatus.OPEN:
                return "awaiting_acceptance"
            case PacketStatus.FINISHED:
                # Its payout failed and the money went back. An accepted transfer is also
                # worked out at its expiry, with nothing to give back: still completed.
                if self.expiry_done and self.refunded:
                    return "returned"
                return "completed" if payout_status == "succeeded" else "accepted"
            case PacketStatus.EXPIRED:
                return "returned"
            case _:
                return self.status.value

    def _transfer_json(self, payment: dict[str, Any] | None, grabs: list[Grab],
                       payout_status: dict[str, str]) -> dict[str, Any]:
        o = self.order
        grab = grabs[0] if grabs else None
        status = payout_status.get(grab.payout_id) if grab else None
        return {
            "id": self.id, "object": "transfer", "status": self.transfer_status(status),
            "out_transfer_no": o.out_no, "from": o.sender, "to": o.recipient,
            "amount": o.amount, "currency": o.currency, "message": o.note,
            "refunded_amount": self.refunded, "created_at": iso(o.created_ms),
            "expires_at": iso(o.expires_ms), "updated_at": iso(self.updated_ms),
            "payment": payment,
            "payout": {"id": grab.payout_id, "status": status or "processing"} if grab else None,
        }
