"""The merchant-services operations of the adapter boundary: profit sharing, credit
pre-authorisation, e-invoices and the rails' bills (`base.Operation` includes them).

Each carries a rail-side number derived from the router's own object, like a charge's
`rail_order_no`: repeating an operation with it must never split, freeze, capture or
invoice twice. A rail that lacks one refuses it definitively before sending
(`unsupported`), so the router answers the caller's request as invalid for that rail.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, final


# --------------------------------------------------------------------------- profit sharing
@final
@dataclass(frozen=True, slots=True)
class SplitReceiver:
    """Who receives part of a payment: a merchant account (`merchant`), a person's wallet
    (`user`: an openid / Alipay user id)."""

    kind: Literal["merchant", "user"]
    account: str
    amount: int
    description: str
    name: str | None = None  # the receiver's real or legal name, when the rail wants it


@final
@dataclass(frozen=True, slots=True)
class Split:
    """Share part of a paid order (WeChat `/v3/profitsharing/orders`, Alipay
    `alipay.trade.order.settle`). `rail_reference` is the rail's transaction id."""

    rail_order_no: str
    rail_reference: str
    rail_split_no: str
    receivers: tuple[SplitReceiver, ...]
    finish: bool = False  # release what is left unshared to the merchant


@final
@dataclass(frozen=True, slots=True)
class SplitQuery:
    rail_order_no: str
    rail_reference: str
    rail_split_no: str


@final
@dataclass(frozen=True, slots=True)
class SplitReturn:
    """Take shared money back from a receiver (before a refund that needs it)."""

    rail_order_no: str
    rail_split_no: str
    rail_return_no: str
    account: str
    amount: int
    description: str


# --------------------------------------------------------------------------- pre-authorisation
@final
@dataclass(frozen=True, slots=True)
class Authorize:
    """Hold an amount on the payer (Alipay fund authorisation freeze, WeChat Pay Score
    service order). With `min_score`, a payer whose credit score meets it holds nothing
    (`RailResult.deposit_free`)."""

    rail_auth_no: str
    amount: int
    currency: str
    scene: str
    description: str
    payer: Mapping[str, str]
    notify_url: str
    min_score: int | None = None
    expires_s: int = 86400


@final
@dataclass(frozen=True, slots=True)
class AuthorizationQuery:
    rail_auth_no: str


@final
@dataclass(frozen=True, slots=True)
class Capture:
    """Turn (part of) a hold into a payment: Alipay `trade.pay` with the `auth_no`, WeChat
    Pay Score `complete`. `final`: the rest is released with it."""

    rail_auth_no: str
    rail_reference: str  # the rail's number of the hold (auth_no / order_id)
    rail_order_no: str  # the payment the capture creates
    amount: int
    currency: str
    description: str
    final: bool = True


@final
@dataclass(frozen=True, slots=True)
class Release:
    """Give back (part of) a hold without taking it (unfreeze / cancel)."""

    rail_auth_no: str
    rail_reference: str
    rail_request_no: str
    amount: int
    reason: str


# --------------------------------------------------------------------------- e-invoices
@final
@dataclass(frozen=True, slots=True)
class InvoiceBuyer:
    kind: Literal["individual", "organization"]
    title: str
    tax_id: str | None = None
    email: str | None = None


@final
@dataclass(frozen=True, slots=True)
class InvoiceItem:
    name: str
    amount: int  # tax included, minor units
    tax_rate_bp: int  # basis points: 600 is 6 %


@final
@dataclass(frozen=True, slots=True)
class IssueInvoice:
    """Issue a fapiao for a paid order (WeChat `/v3/new-tax-control-fapiao/...`)."""

    rail_invoice_no: str
    rail_order_no: str
    rail_reference: str  # the rail's transaction id of the payment
    buyer: InvoiceBuyer
    items: tuple[InvoiceItem, ...]
    total: int
    tax: int


@final
@dataclass(frozen=True, slots=True)
class ReverseInvoice:
    """Reverse (red-letter) an issued invoice. WeChat finds it by the payment's transaction
    id (`rail_reference`, its fapiao_apply_id) and the invoice's number (`invoice_number`:
    the `rail_reference` InvoiceQuery gave once it was issued)."""

    rail_invoice_no: str
    reason: str
    rail_reference: str | None = None
    invoice_number: str | None = None


@final
@dataclass(frozen=True, slots=True)
class InvoiceQuery:
    """`rail_reference`: the payment's transaction id, which WeChat files invoices under."""

    rail_invoice_no: str
    rail_reference: str | None = None


# --------------------------------------------------------------------------- bills
@final
@dataclass(frozen=True, slots=True)
class BillLine:
    """One line of a rail's daily bill."""

    kind: Literal["payment", "refund"]
    rail_order_no: str  # the merchant-side number the rail knows (out_trade_no)
    rail_reference: str
    amount: int
    currency: str
    rail_refund_no: str | None = None


@final
@dataclass(frozen=True, slots=True)
class BillDownload:
    """The rail's bill of one day (`date` YYYY-MM-DD), in two calls: without `url` it asks
    where the bill is (the result's `rail_reference` is the download URL), with it, it
    downloads and reads the bill (the result's `bill`)."""

    date: str
    url: str | None = None


@final
@dataclass(frozen=True, slots=True)
class ExchangeRate:
    """A rate as the rail reported it: `rate` is a decimal string (never a float)."""

    rate: str
    source: str  # e.g. "wechatpay:SETTLEMENT_RATE"
    base: str  # the priced currency
    quote: str  # the currency the payer paid


@final
@dataclass(frozen=True, slots=True)
class PayerAmount:
    """What the payer paid in their own currency, with the rate used."""

    amount: int
    currency: str
    rate: ExchangeRate


MerchantServiceOp = (Split | SplitQuery | SplitReturn | Authorize | AuthorizationQuery
                     | Capture | Release | IssueInvoice | ReverseInvoice | InvoiceQuery
                     | BillDownload)
MERCHANT_SERVICE_OPS = (Split, SplitQuery, SplitReturn, Authorize, AuthorizationQuery,
                        Capture, Release, IssueInvoice, ReverseInvoice, InvoiceQuery,
                        BillDownload)

__all__ = [
    "MERCHANT_SERVICE_OPS", "AuthorizationQuery", "Authorize", "BillDownload", "BillLine",
    "Capture", "ExchangeRate", "InvoiceBuyer", "InvoiceItem", "InvoiceQuery", "IssueInvoice",
    "MerchantServiceOp", "PayerAmount", "Release", "ReverseInvoice", "Split", "SplitQuery",
    "SplitReceiver", "SplitReturn",
]
