"""A refund as Redis holds it and the API shows it (the payment's own record is in
`router/domain.py`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, final

import msgpack

from router.domain import RefundStatus, _pack, iso


@final
@dataclass(slots=True)
class Refund:
    id: str
    payment_id: str
    merchant_id: str
    amount: int
    currency: str
    out_refund_no: str
    reason: str | None
    rail: str
    rail_order_no: str
    created_ms: int
    status: RefundStatus
    updated_ms: int
    failure: dict[str, str] | None = None
    rail_reference: str | None = None
    checks: int = 0
    # Shared money (profit sharing) this refund first takes back from split receivers:
    # reserved by create_refund.lua with the refund (field `rt`), sent before it.
    returning: int = 0
    # What the rail refunds when a campaign's reward makes it differ from `amount` (the
    # payer's part, computed by create_refund.lua: field `ra`); None: the amount.
    payer_amount: int | None = None

    @property
    def paid_back(self) -> int:
        """What the rail refunds to the payer."""
        return self.amount if self.payer_amount is None else self.payer_amount

    def pack_creation(self) -> bytes:
        return _pack(
            [
                self.id,
                self.payment_id,
                self.merchant_id,
                self.amount,
                self.currency,
                self.out_refund_no,
                self.reason,
                self.rail,
                self.rail_order_no,
                self.created_ms,
            ]
        )

    def pack_state(self) -> bytes:
        return _pack([self.failure, self.rail_reference, self.checks])

    @classmethod
    def from_hash(cls, fields: dict[bytes, bytes]) -> Refund:
        rid, pid, mid, amount, currency, orn, reason, rail, rail_order_no, created = (
            msgpack.unpackb(fields[b"d"])
        )
        failure, ref, checks = msgpack.unpackb(fields[b"x"])
        return cls(
            id=rid,
            payment_id=pid,
            merchant_id=mid,
            amount=amount,
            currency=currency,
            out_refund_no=orn,
            reason=reason,
            rail=rail,
            rail_order_no=rail_order_no,
            created_ms=created,
            status=RefundStatus(fields[b"s"].decode()),
            updated_ms=int(fields[b"u"]),
            failure=failure,
            rail_reference=ref,
            checks=checks,
            returning=int(fields.get(b"rt", b"0")),
            payer_amount=int(fields[b"ra"]) if b"ra" in fields else None,
        )

    @property
    def rail_refund_no(self) -> str:
        """The rail-side key of this refund: stable across retries."""
        return self.id.removeprefix("re_")

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id,
            "object": "refund",
            "payment_id": self.payment_id,
            "amount": self.amount,
            "currency": self.currency,
            "out_refund_no": self.out_refund_no,
            "status": self.status.value,
            "created_at": iso(self.created_ms),
            "updated_at": iso(self.updated_ms),
        }
        if self.reason:
            body["reason"] = self.reason
        if self.failure is not None and self.status is RefundStatus.FAILED:
            body["failure"] = self.failure
        if self.rail_reference:
            body["rail_reference"] = self.rail_reference
        if self.payer_amount is not None:
            body["payer_amount"] = {"amount": self.payer_amount, "currency": self.currency}
        return body
