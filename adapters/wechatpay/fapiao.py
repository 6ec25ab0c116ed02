"""E-invoices (fapiao) on WeChat Pay: canonical `IssueInvoice` / `InvoiceQuery` /
`ReverseInvoice` as calls of `/v3/new-tax-control-fapiao/fapiao-applications`, and what
their answers and FAPIAO.* notifications prove.

An invoice is filed under a fapiao application whose id, in the WITH_WECHATPAY scene, is
the WeChat transaction id of the paid order (the operations' `rail_reference`); the
merchant's own number of the invoice is its `fapiao_id` (`rail_invoice_no`). Issue and
reverse are only accepted (202, no body): the outcome comes by query or notification.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final, assert_never

from cryptography.hazmat.primitives.asymmetric import rsa

from adapters.base import Notification, NotificationKind, RailResult, RailStatus
from adapters.commerce_ops import InvoiceQuery, IssueInvoice, ReverseInvoice
from adapters.wechatpay.fapiao_wire import (
    APPLICATIONS_PATH,
    QUANTITY_ONE,
    SCENE_WITH_WECHATPAY,
    BuyerInformation,
    BuyerType,
    FapiaoApplication,
    FapiaoInformation,
    FapiaoItem,
    FapiaoNotice,
    FapiaoRecord,
    FapiaoStatus,
    IssueRequest,
    ReverseFapiao,
    ReverseRequest,
)
from adapters.wechatpay.sensitive import encrypt_field
from adapters.wechatpay.transformers import check_same, refuse
from adapters.wire import Malformed, decode

__all__ = [
    "APPLICATIONS_PATH",
    "DEFAULT_REVERSE_REASON",
    "DEFAULT_TAX_CODE",
    "EVENTS",
    "application_path",
    "issue_request",
    "notification",
    "query_answer",
    "query_params",
    "reverse_request",
    "tax_code",
]

# 信息技术服务 (information technology services): a placeholder; a merchant sets its own
# goods' code with the adapter option `fapiao_tax_code`.
DEFAULT_TAX_CODE: Final = "3040201010000000000"
TAX_CODE_LENGTH: Final = 19
DEFAULT_REVERSE_REASON: Final = "SALES_RETURN"
EVENTS: Final = frozenset({"FAPIAO.ISSUED", "FAPIAO.REVERSED"})
_EVENT_STATUS: Final = {"FAPIAO.ISSUED": FapiaoStatus.ISSUED,
                        "FAPIAO.REVERSED": FapiaoStatus.REVERSED}
MAX_TITLE = 100
MAX_GOODS_NAME = 64
_FAPIAO_ID_RE = re.compile(r"[0-9A-Za-z_\-]{1,32}")
_APPLY_ID_RE = re.compile(r"[0-9A-Za-z]{1,32}")


def tax_code(options: Mapping[str, object], rail: str) -> str:
    """The tax classification code of the merchant's goods (option `fapiao_tax_code`)."""
    code = options.get("fapiao_tax_code", DEFAULT_TAX_CODE)
    if not isinstance(code, str) or not code.isdigit() or len(code) != TAX_CODE_LENGTH:
        raise ValueError(f"rail {rail!r}: option fapiao_tax_code must be 19 digits")
    return code


# --------------------------------------------------------------------------- requests
def _fapiao_id(value: str) -> str:
    # The router derives the number: no API field is at fault.
    if not _FAPIAO_ID_RE.fullmatch(value):
        refuse("rail_invoice_no must be 1-32 characters of [0-9A-Za-z_-]", param=None)
    return value


def _apply_id(value: str | None) -> str:
    if value is None or not _APPLY_ID_RE.fullmatch(value):
        refuse("rail_reference must be the WeChat transaction id of the paid order",
               param=None)
    return value


def application_path(rail_reference: str | None) -> str:
    return f"{APPLICATIONS_PATH}/{_apply_id(rail_reference)}"


def issue_request(op: IssueInvoice, tax_code: str,
                  platform_key: rsa.RSAPublicKey) -> IssueRequest:
    """The issue body of `op`; the buyer's email is encrypted for WeChat's eyes only."""
    buyer = op.buyer
    if not buyer.title or len(buyer.title) > MAX_TITLE:
        refuse(f"the buyer's title must be 1-{MAX_TITLE} characters", param="buyer.title")
    kind = BuyerType.ORGANIZATION if buyer.kind == "organization" else BuyerType.INDIVIDUAL
    if kind is BuyerType.ORGANIZATION and not buyer.tax_id:
        refuse("an organization's invoice needs its taxpayer id", param="buyer.tax_id")
    if not op.items:
        refuse("an invoice needs at least one item", param="items")
    for item in op.items:
        if type(item.amount) is not int or item.amount <= 0:
            refuse("each item's amount must be a positive integer of fen", param="items")
        if type(item.tax_rate_bp) is not int or not 0 <= item.tax_rate_bp <= 10_000:
            refuse("each item's tax_rate_bp must be 0-10000", param="items")
    if sum(item.amount for item in op.items) != op.total:
        refuse("the items must add up to the invoice's total", param="items")
    email = encrypt_field(platform_key, buyer.email) if buyer.email else None
    return IssueRequest(
        scene=SCENE_WITH_WECHATPAY,
        fapiao_apply_id=_apply_id(op.rail_reference),
        buyer_information=BuyerInformation(type=kind, name=buyer.title,
                                           taxpayer_id=buyer.tax_id or None, email=email),
        fapiao_information=[FapiaoInformation(
            fapiao_id=_fapiao_id(op.rail_invoice_no),
            total_amount=op.total,
            items=[FapiaoItem(tax_code=tax_code, goods_name=item.name[:MAX_GOODS_NAME],
                              quantity=QUANTITY_ONE, total_amount=item.amount,
                              tax_rate=item.tax_rate_bp)
                   for item in op.items],
        )],
    )


def query_params(op: InvoiceQuery) -> dict[str, str]:
    return {"fapiao_id": _fapiao_id(op.rail_invoice_no)}


def reverse_request(op: ReverseInvoice) -> ReverseRequest:
    if not op.invoice_number:
        refuse("reversing needs the issued invoice's number (invoice_number)", param=None)
    return ReverseRequest(
        reverse_reason=op.reason or DEFAULT_REVERSE_REASON,
        fapiao_information=[ReverseFapiao(fapiao_id=_fapiao_id(op.rail_invoice_no),
                                          fapiao_number=op.invoice_number)],
    )


# --------------------------------------------------------------------------- answers
def query_answer(body: bytes, rail_invoice_no: str) -> RailResult:
    """A query answer: the invoice `rail_invoice_no` of the application, if it is there."""
    application = decode(body, FapiaoApplication)
    for record in application.fapiao_information:
        if record.fapiao_id == rail_invoice_no:
            return record_result(record, numbered=True)
    return RailResult(RailStatus.NOT_FOUND, failure_code="FAPIAO_NOT_FOUND")


def record_result(record: FapiaoRecord, *, numbered: bool) -> RailResult:
    """`numbered`: an issued invoice must show its number (query answers do,
    notifications do not)."""
    number = record.blue_fapiao.fapiao_number if record.blue_fapiao else None
    amount, status = record.total_amount, record.status
    match status:
        case FapiaoStatus.ISSUE_ACCEPTED | FapiaoStatus.REVERSE_ACCEPTED:
            return RailResult(RailStatus.PROCESSING, rail_reference=number, amount=amount)
        case FapiaoStatus.ISSUED:
            if numbered and number is None:
                raise Malformed("an ISSUED invoice without blue_fapiao.fapiao_number")
            return RailResult(RailStatus.SUCCEEDED, rail_reference=number, amount=amount)
        case FapiaoStatus.ISSUE_FAILED:
            return RailResult(RailStatus.FAILED, failure_code=record.fapiao_error_code
                              or status.value, failure_message=record.fapiao_error_message)
        case FapiaoStatus.REVERSED:
            return RailResult(RailStatus.CLOSED, rail_reference=number, amount=amount,
                              failure_code=status.value)
        case FapiaoStatus.REVERSE_FAILED:
            # The red invoice failed: the blue one stands, still issued.
            return RailResult(RailStatus.SUCCEEDED, rail_reference=number, amount=amount,
                              failure_code=record.fapiao_error_code or status.value,
                              failure_message=record.fapiao_error_message)
        case _:
            assert_never(status)


def notification(event_type: str, plain: bytes, mchid: str) -> Notification:
    """A decrypted FAPIAO.ISSUED / FAPIAO.REVERSED resource, which must name our merchant.

    It lists every invoice of the application; the one the event is about is the first in
    the event's state (else the first). It carries no invoice number: query for it."""
    notice = decode(plain, FapiaoNotice)
    check_same(notice.mchid, mchid, "mchid")
    if not notice.fapiao_information:
        raise Malformed("a fapiao notification names no invoice")
    wanted = _EVENT_STATUS[event_type]
    entry = next((f for f in notice.fapiao_information if f.fapiao_status is wanted),
                 notice.fapiao_information[0])
    record = FapiaoRecord(fapiao_id=entry.fapiao_id, status=entry.fapiao_status)
    result = record_result(record, numbered=False)
    return Notification(NotificationKind.INVOICE, entry.fapiao_id, result)
