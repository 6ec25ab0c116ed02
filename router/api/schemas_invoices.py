"""Request bodies of e-invoices (fapiao), decoded like every other body
(`schemas.decode`) and listed in `schemas.BODIES`."""

from __future__ import annotations

from typing import Annotated, Final, Literal

from msgspec import Meta, Struct

from router.api.fields import Amount

MAX_ITEMS: Final = 100


class _Body(Struct, forbid_unknown_fields=True, frozen=True):
    pass


class InvoiceBuyerCreate(_Body, frozen=True):
    type: Literal["individual", "organization"]
    title: Annotated[str, Meta(min_length=1, max_length=100, description=(
        "What the invoice is made out to: a person's name or a company's registered name."))]
    tax_id: Annotated[str, Meta(pattern=r"^[0-9A-Za-z]{15,20}$", description=(
        "The buyer's taxpayer id (unified social credit code); required for an "
        "`organization`."))] | None = None
    email: Annotated[str, Meta(max_length=254, pattern=r"^[^@\s]+@[^@\s]+$", description=(
        "Where the rail may send the invoice; masked in every answer."))] | None = None


class InvoiceItemCreate(_Body, frozen=True):
    name: Annotated[str, Meta(min_length=1, max_length=64)]
    amount: Annotated[Amount, Meta(description="Tax included, minor units.")]
    tax_rate_bp: Annotated[int, Meta(ge=0, le=10_000, description=(
        "The VAT rate in basis points (600 is 6 %)."))]


class InvoiceCreate(_Body, frozen=True):
    """An e-invoice of a paid payment (`POST /v1/payments/{id}/invoice`)."""

    buyer: InvoiceBuyerCreate
    items: Annotated[list[InvoiceItemCreate], Meta(min_length=1, max_length=MAX_ITEMS,
                                                   description=(
        "Their amounts sum to what the payment has paid less refunded. Omitted: one item "
        "named by the payment's description, at the default rate (`[invoices] "
        "default_tax_rate_bp`, 600)."))] | None = None


INVOICE_BODIES: Final[dict[tuple[str, str], type[Struct]]] = {
    ("POST", "/v1/payments/{id}/invoice"): InvoiceCreate,
}
