"""The day's trade bill on WeChat Pay, in the two calls of `BillDownload`.

Without `url`: GET `/v3/bill/tradebill?bill_date=&bill_type=ALL` answers where the bill
is and its digest; the result's `rail_reference` is the download URL with the digest in
its fragment (`...#SHA1=<hex>`), which no request ever sends. With `url` (that reference,
unchanged): a signed GET of the URL answers the file itself. WeChat does not sign the
file, so the adapter checks it against the digest before reading it into
`RailResult.bill`. A day without a bill (400 NO_STATEMENT_EXIST) is an empty bill.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import date
from typing import Final
from urllib.parse import urldefrag

from adapters.base import RailError, RailResult, RailStatus
from adapters.commerce_ops import BillDownload, BillLine
from adapters.currencies import UnknownCurrency, parse_major
from adapters.wechatpay.tradebill import parse_table
from adapters.wechatpay.transformers import refuse
from adapters.wire import Malformed, NonEmptyStr, Shape, decode

__all__ = ["NO_BILL", "TRADEBILL_PATH", "bill_answer", "location_answer", "request_target"]

TRADEBILL_PATH: Final = "/v3/bill/tradebill"
NO_BILL: Final = "NO_STATEMENT_EXIST"  # no trade that day: no bill
HASH_TYPE: Final = "SHA1"


class BillLocation(Shape, kw_only=True):
    download_url: NonEmptyStr
    hash_type: NonEmptyStr
    hash_value: NonEmptyStr


def request_target(op: BillDownload, base_url: str) -> tuple[str, dict[str, str]]:
    """(path, query) of the call `op` makes, relative to `base_url`."""
    if op.url is None:
        try:
            date.fromisoformat(op.date)
        except ValueError:
            refuse("date must be a day, YYYY-MM-DD", param="date")
        if len(op.date) != len("YYYY-MM-DD"):
            refuse("date must be a day, YYYY-MM-DD", param="date")
        return TRADEBILL_PATH, {"bill_date": op.date, "bill_type": "ALL"}
    url, _ = urldefrag(op.url)
    # A signed request goes only to the rail it is signed for.
    if not url.startswith(base_url.rstrip("/") + "/"):
        refuse("the bill's URL is not on this rail's host", param=None)
    _digest(op.url)
    return url[len(base_url.rstrip("/")):], {}


def _digest(url: str) -> str:
    _, fragment = urldefrag(url)
    kind, _, value = fragment.partition("=")
    if kind.upper() != HASH_TYPE or not value:
        refuse(f"the bill's URL lacks its digest (#{HASH_TYPE}=...): pass the download "
               "URL exactly as the first call gave it", param=None)
    return value.lower()


def location_answer(body: bytes) -> RailResult:
    """Where the bill is: the download URL, carrying the bill's digest in its fragment."""
    where = decode(body, BillLocation)
    if where.hash_type.upper() != HASH_TYPE:
        raise Malformed(f"unknown hash_type {where.hash_type!r}")
    url, _ = urldefrag(where.download_url)
    return RailResult(RailStatus.SUCCEEDED, rail_reference=f"{url}#{HASH_TYPE}={where.hash_value}")


def bill_answer(url: str, body: bytes) -> RailResult:
    """The bill downloaded from `url`, checked against its digest and read line by line."""
    actual = hashlib.sha1(body).hexdigest()  # noqa: S324 (WeChat's digest of the file)
    if not hmac.compare_digest(actual, _digest(url)):
        raise RailError("BILL_DIGEST_MISMATCH", "the downloaded bill does not match its "
                        "SHA1 digest: download it again", definitive=False)
    try:
        lines = tuple(_lines(body.decode("utf-8")))
    except (UnicodeDecodeError, ValueError, UnknownCurrency) as exc:
        raise Malformed(f"unreadable trade bill: {exc}") from None
    return RailResult(RailStatus.SUCCEEDED, bill=lines)


def _lines(text: str) -> list[BillLine]:
    """Payments (SUCCESS) and refunds (REFUND); other states (e.g. REVOKED) carry no
    money of their own and are left out. A payment counts its order amount (`订单金额`),
    a refund what was asked back (`申请退款金额`), as the router records them."""
    lines: list[BillLine] = []
    for row in parse_table(text):
        currency = row["货币种类"]
        match row["交易状态"]:
            case "SUCCESS":
                amount = parse_major(row.get("订单金额") or row["应结订单金额"], currency)
                lines.append(BillLine("payment", row["商户订单号"], row["微信订单号"], amount,
                                      currency))
            case "REFUND":
                amount = parse_major(row.get("申请退款金额") or row["退款金额"], currency)
                lines.append(BillLine("refund", row["商户订单号"], row["微信退款单号"], amount,
                                      currency, rail_refund_no=row["商户退款单号"]))
            case _:
                continue
    return lines
