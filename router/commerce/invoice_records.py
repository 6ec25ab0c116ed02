"""E-invoices' records: a fapiao of a paid payment, as Redis holds it and as the API
shows it, and the tax arithmetic.

Amounts are tax-inclusive integer minor units; a rate is in basis points (600 is 6 %),
as WeChat Pay's `tax_rate` (1/10000 units). An item's tax is its share of the
tax-inclusive amount, rounded half up in integers only:
`tax = round_half_up(amount × bp / (10000 + bp))`, the same rule the rail applies.

An invoice's id is derived from its payment's id and its place in the payment's line of
invoices (1, 2, ...: a reissue after a partial refund is the next), so a script retried
after a lost answer writes the same invoice, and its rail-side number (the id without its
underscore) is the same on every call. The buyer's title and tax id are what the invoice
is made out to and are shown; the email is personal data, masked in every answer.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Final, final

import orjson

from adapters.commerce_ops import InvoiceBuyer, InvoiceItem
from router.domain import iso

BP_WHOLE: Final = 10_000


class InvoiceStatus(enum.StrEnum):
    ISSUING = "issuing"  # asked for, the rail's word awaited
    ISSUED = "issued"
    FAILED = "failed"  # the rail refused to issue it
    REVERSING = "reversing"  # a refund succeeded: the reversal is asked for
    REVERSED = "reversed"


INVOICE_EVENTS: Final = {InvoiceStatus.ISSUED: "invoice.issued",
                         InvoiceStatus.FAILED: "invoice.failed",
                         InvoiceStatus.REVERSED: "invoice.reversed"}


def tax_of(amount: int, rate_bp: int) -> int:
    """The tax inside a tax-inclusive `amount` at `rate_bp`, rounded half up."""
    base = BP_WHOLE + rate_bp
    return (2 * amount * rate_bp + base) // (2 * base)


def scaled(items: tuple[InvoiceItem, ...], total: int) -> tuple[InvoiceItem, ...]:
    """`items` scaled to sum to `total` (what remains paid after a partial refund): each
    item's amount × total / their sum, rounded down, the last item taking what the
    rounding left; items that come to nothing are left out."""
    whole = sum(item.amount for item in items)
    amounts = [item.amount * total // whole for item in items[:-1]]
    amounts.append(total - sum(amounts))
    return tuple(InvoiceItem(item.name, amount, item.tax_rate_bp)
                 for item, amount in zip(items, amounts, strict=True) if amount > 0)


def mask_email(email: str) -> str:
    """`zhangsan@example.com` → `z***@example.com`."""
    local, at, domain = email.partition("@")
    return f"{local[:1]}***{at}{domain}"


@final
@dataclass(frozen=True, slots=True)
class InvoiceOrder:
    """What an invoice is, fixed at creation (the `d` JSON of its hash)."""

    payment_id: str
    merchant_id: str
    provider: str | None  # the service provider that made the payment, if one did
    seq: int  # its place among the payment's invoices: 1, then one more per reissue
    replaces: str | None  # the reversed invoice this one reissues
    currency: str
    rail: str  # the payment's rail (a partner-mode instance for a provider's payment)
    rail_order_no: str
    rail_reference: str  # the rail's transaction id of the payment
    buyer: InvoiceBuyer = field(repr=False)
    items: tuple[InvoiceItem, ...]
    created_ms: int
    notify_url: str | None  # the payment's: where the invoice's events go

    def pack(self) -> bytes:
        b = self.buyer
        return orjson.dumps({
            "p": self.payment_id, "m": self.merchant_id, "sp": self.provider, "q": self.seq,
            "rp": self.replaces, "c": self.currency, "r": self.rail, "ro": self.rail_order_no,
            "rr": self.rail_reference, "t": self.created_ms, "n": self.notify_url,
            "b": [b.kind, b.title, b.tax_id, b.email],
            "i": [[i.name, i.amount, i.tax_rate_bp] for i in self.items],
        })

    @classmethod
    def unpack(cls, raw: bytes) -> InvoiceOrder:
        d = orjson.loads(raw)
        kind, title, tax_id, email = d["b"]
        return cls(d["p"], d["m"], d["sp"], d["q"], d["rp"], d["c"], d["r"], d["ro"], d["rr"],
                   InvoiceBuyer(kind, title, tax_id, email),
                   tuple(InvoiceItem(n, a, bp) for n, a, bp in d["i"]), d["t"], d["n"])


@final
@dataclass(frozen=True, slots=True)
class InvoiceState:
    """What the rail has said so far (the `x` JSON)."""

    checks: int = 0  # looks at the rail so far (the sweeper backs off by them)
    invoice_no: str | None = None  # the fapiao's number, once issued
    failure_code: str | None = None
    failure_message: str | None = None

    def pack(self) -> bytes:
        return orjson.dumps([self.checks, self.invoice_no, self.failure_code,
                             self.failure_message])

    @classmethod
    def unpack(cls, raw: bytes) -> InvoiceState:
        checks, number, code, message = orjson.loads(raw)
        return cls(checks, number, code, message)


@final
@dataclass(frozen=True, slots=True)
class Invoice:
    id: str
    order: InvoiceOrder
    amount: int
    tax: int
    status: InvoiceStatus
    version: int
    updated_ms: int
    state: InvoiceState
    fingerprint: str = ""  # of the request that asked for it (a reissue keeps it)

    @property
    def rail_invoice_no(self) -> str:
        """The rail-side number (WeChat's fapiao_id): the id without its underscore."""
        return self.id.replace("_", "")

    @classmethod
    def from_hash(cls, invoice_id: str, h: dict[bytes, bytes]) -> Invoice:
        return cls(invoice_id, InvoiceOrder.unpack(h[b"d"]), int(h[b"a"]), int(h[b"t"]),
                   InvoiceStatus(h[b"s"].decode()), int(h[b"v"]), int(h[b"u"]),
                   InvoiceState.unpack(h[b"x"]), h.get(b"f", b"").decode())

    def to_json(self) -> dict[str, Any]:
        o, b = self.order, self.order.buyer
        buyer: dict[str, Any] = {"type": b.kind, "title": b.title}
        if b.tax_id:
            buyer["tax_id"] = b.tax_id
        if b.email:
            buyer["email"] = mask_email(b.email)
        out: dict[str, Any] = {
            "id": self.id, "object": "invoice", "status": self.status.value,
            "payment_id": o.payment_id, "amount": self.amount, "tax_amount": self.tax,
            "currency": o.currency, "buyer": buyer,
            "items": [{"name": i.name, "amount": i.amount, "tax_rate_bp": i.tax_rate_bp,
                       "tax_amount": tax_of(i.amount, i.tax_rate_bp)} for i in o.items],
            "created_at": iso(o.created_ms), "updated_at": iso(self.updated_ms),
        }
        if self.state.invoice_no:
            out["invoice_no"] = self.state.invoice_no
        if o.replaces:
            out["replaces"] = o.replaces
        if o.provider is not None:
            out["service_provider"] = o.provider
        if self.status is InvoiceStatus.FAILED:
            out["failure"] = {"code": self.state.failure_code or "invoice_failed",
                              "message": self.state.failure_message or ""}
        return out

    def render(self) -> bytes:
        return orjson.dumps(self.to_json())

