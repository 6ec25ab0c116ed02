"""The JSON bodies of WeChat Pay's e-invoices (电子发票, `/v3/new-tax-control-fapiao/...`),
their states, and the tax arithmetic both the adapter and the simulator use.

Shapes only, like `wire`: the adapter writes the requests and reads the answers and
FAPIAO.* notifications through them; amounts are integer fen, tax rates integers in
1/10000 (600 is 6 %).
"""

from __future__ import annotations

import enum
from typing import Final

from adapters.wire import NonEmptyStr, Shape

__all__ = [
    "APPLICATIONS_PATH",
    "QUANTITY_ONE",
    "SCENE_WITH_WECHATPAY",
    "BuyerInformation",
    "BuyerType",
    "FapiaoApplication",
    "FapiaoInformation",
    "FapiaoItem",
    "FapiaoNotice",
    "FapiaoNumber",
    "FapiaoRecord",
    "FapiaoStatus",
    "IssueRequest",
    "NoticeFapiao",
    "ReverseFapiao",
    "ReverseRequest",
    "tax_of",
]

APPLICATIONS_PATH: Final = "/v3/new-tax-control-fapiao/fapiao-applications"
SCENE_WITH_WECHATPAY: Final = "WITH_WECHATPAY"  # fapiao_apply_id = the WeChat order number
# `quantity` is sent in 1/10^8 units: the published examples write one item as 100000000.
QUANTITY_ONE: Final = 100_000_000
TAX_RATE_SCALE: Final = 10_000  # tax_rate is in 1/10000


class FapiaoStatus(enum.StrEnum):
    ISSUE_ACCEPTED = "ISSUE_ACCEPTED"
    ISSUED = "ISSUED"
    ISSUE_FAILED = "ISSUE_FAILED"
    REVERSE_ACCEPTED = "REVERSE_ACCEPTED"
    REVERSED = "REVERSED"
    REVERSE_FAILED = "REVERSE_FAILED"


class BuyerType(enum.StrEnum):
    INDIVIDUAL = "INDIVIDUAL"
    ORGANIZATION = "ORGANIZATION"  # needs a taxpayer_id


def tax_of(amount: int, rate_bp: int) -> int:
    """The tax inside a tax-included `amount` (fen) at `rate_bp`/10000, rounded half up to
    a whole fen: amount x bp / (10000 + bp), in integers only."""
    numerator, denominator = amount * rate_bp, TAX_RATE_SCALE + rate_bp
    quotient, remainder = divmod(numerator, denominator)
    return quotient + (1 if 2 * remainder >= denominator else 0)


# --------------------------------------------------------------------------- issue
class BuyerInformation(Shape, kw_only=True):
    type: BuyerType
    name: str
    taxpayer_id: str | None = None
    email: str | None = None  # RSA-OAEP ciphertext under WeChat's public key (sensitive)
    phone: str | None = None  # likewise


class FapiaoItem(Shape, kw_only=True):
    tax_code: str
    goods_name: str
    quantity: int
    total_amount: int  # fen, tax included
    tax_rate: int  # 1/10000
    discount: bool = False


class FapiaoInformation(Shape, kw_only=True):
    fapiao_id: str
    total_amount: int  # fen, tax included
    need_list: bool = False
    items: list[FapiaoItem]


class IssueRequest(Shape, kw_only=True):
    """The body of the issue call; WeChat answers 202 with no body."""

    scene: str
    fapiao_apply_id: str
    buyer_information: BuyerInformation
    fapiao_information: list[FapiaoInformation]
    sub_mchid: str | None = None


# --------------------------------------------------------------------------- reverse
class ReverseFapiao(Shape, kw_only=True):
    fapiao_id: str
    fapiao_number: str
    fapiao_code: str | None = None  # none on fully digital (数电) invoices


class ReverseRequest(Shape, kw_only=True):
    """The body of the reverse call; WeChat answers 202 with no body."""

    reverse_reason: str
    fapiao_information: list[ReverseFapiao]
    sub_mchid: str | None = None


# --------------------------------------------------------------------------- answers
class FapiaoNumber(Shape, kw_only=True):
    """A blue (issued) or red (reversing) invoice as the tax system numbered it."""

    fapiao_number: NonEmptyStr
    fapiao_code: str | None = None
    fapiao_time: str | None = None


class FapiaoRecord(Shape, kw_only=True):
    """One invoice of a query answer."""

    fapiao_id: NonEmptyStr
    status: FapiaoStatus
    blue_fapiao: FapiaoNumber | None = None
    red_fapiao: FapiaoNumber | None = None
    total_amount: int | None = None
    tax_amount: int | None = None
    fapiao_error_code: str | None = None
    fapiao_error_message: str | None = None


class FapiaoApplication(Shape, kw_only=True):
    """The query answer: every invoice filed under one fapiao_apply_id."""

    fapiao_information: list[FapiaoRecord]
    total_count: int | None = None


class NoticeFapiao(Shape, kw_only=True):
    fapiao_id: NonEmptyStr
    fapiao_status: FapiaoStatus
    card_status: str | None = None


class FapiaoNotice(Shape, kw_only=True):
    """The decrypted resource of FAPIAO.ISSUED / FAPIAO.REVERSED."""

    mchid: NonEmptyStr
    fapiao_apply_id: NonEmptyStr
    fapiao_information: list[NoticeFapiao]
    sub_mchid: str | None = None
