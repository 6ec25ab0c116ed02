"""The bill download on the Alipay rail, in the two calls of `BillDownload`.

Without `url`: `alipay.data.dataservice.bill.downloadurl.query` (`bill_type` trade), a
signed gateway call like any other, whose `bill_download_url` becomes the result's
`rail_reference`; a day without a bill is `not_found`. With `url`: a plain GET of that
link (Alipay signs no bill: the link itself came in a verified answer), and the zip it
serves read into `RailResult.bill`. Layout in `bill_format`.
"""

from __future__ import annotations

import csv
import io
import zipfile
import zlib
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Final, Literal, NoReturn
from urllib.parse import urlsplit

from adapters.alipay import bill_format as fmt
from adapters.alipay.pricing import DOMESTIC, minor_units
from adapters.alipay.wire import Answer, Code
from adapters.base import (
    HttpRequest,
    HttpResponse,
    RailError,
    RailErrorCode,
    RailResult,
    RailStatus,
)
from adapters.commerce_ops import BillDownload, BillLine
from adapters.currencies import is_known
from adapters.wire import Malformed, NonEmptyStr, Shape, decode

__all__ = ["BillUrlBiz", "bill_result", "download_request", "read_bill", "url_query_biz",
           "url_result"]

MAX_DETAIL_BYTES: Final = 256 * 2**20  # a day's detail file, inflated
_KINDS: Final[Mapping[str, Literal["payment", "refund"]]] = {
    fmt.PAYMENT: "payment", fmt.REFUND: "refund",
}
_NEEDED: Final = (fmt.TRADE_NO, fmt.OUT_TRADE_NO, fmt.TYPE, fmt.ORDER_AMOUNT, fmt.REQUEST_NO,
                  fmt.NOTE)


class BillUrlBiz(Shape, kw_only=True):
    bill_type: str
    bill_date: str  # YYYY-MM-DD: a day's bill


class BillUrlAnswer(Answer, kw_only=True):
    bill_download_url: NonEmptyStr


def _refuse(message: str, *, param: str) -> NoReturn:
    raise RailError(RailErrorCode.INVALID_REQUEST, message, definitive=True, param=param)


def bill_day(op: BillDownload) -> date:
    try:
        if len(op.date) != 10:
            raise ValueError
        return date.fromisoformat(op.date)
    except ValueError:
        _refuse("a bill's date is YYYY-MM-DD", param="date")


# --------------------------------------------------------------------------- the link
def url_query_biz(op: BillDownload) -> BillUrlBiz:
    return BillUrlBiz(bill_type=fmt.BILL_TYPE, bill_date=f"{bill_day(op):%Y-%m-%d}")


def url_result(text: str) -> RailResult:
    """The result of a verified `downloadurl.query` answer (its exact text)."""
    answer = decode(text, Answer)
    sub_code = answer.sub_code or answer.code.value
    message = answer.sub_msg or answer.msg or sub_code
    match answer.code:
        case Code.SUCCESS:
            url = decode(text, BillUrlAnswer).bill_download_url
            return RailResult(RailStatus.SUCCEEDED, rail_reference=url)
        case Code.BUSINESS_FAILED if sub_code == fmt.BILL_NOT_EXIST:
            # Not made yet (Alipay makes a day's bill the next morning) or never will be.
            return RailResult(RailStatus.NOT_FOUND, failure_code=sub_code,
                              failure_message=message)
        case Code.BUSINESS_FAILED if "SYSTEM_ERROR" not in sub_code.upper():
            raise RailError(sub_code, message, definitive=True)
        case Code.AUTH_TOKEN_PROBLEM | Code.MISSING_PARAMETER | Code.INVALID_PARAMETER:
            raise RailError(sub_code, message, definitive=True)
        case _:  # 10003, 20000, a system error: ask again
            raise RailError(sub_code, message, definitive=False)


# --------------------------------------------------------------------------- the file
def download_request(op: BillDownload, url: str) -> HttpRequest:
    """The GET of a download link: unsigned, as Alipay serves bills."""
    bill_day(op)
    if urlsplit(url).scheme not in ("http", "https"):
        _refuse("a bill's download link is an http(s) URL", param="url")
    return HttpRequest("GET", url, {"Accept": "application/zip, */*"})


def bill_result(op: BillDownload, response: HttpResponse) -> RailResult:
    if response.status != 200:
        # A link that expired or never was is the rail's word; anything else may pass.
        raise RailError("BILL_DOWNLOAD_FAILED", f"HTTP {response.status} for the bill",
                        definitive=400 <= response.status < 500)
    return RailResult(RailStatus.SUCCEEDED, bill=read_bill(response.body, bill_day(op)))


def read_bill(data: bytes, day: date) -> tuple[BillLine, ...]:
    """The payment and refund lines of a downloaded bill; raises `Malformed`."""
    try:
        with zipfile.ZipFile(io.BytesIO(data), metadata_encoding=fmt.ENCODING) as archive:
            suffix = fmt.detail_suffix(day)
            details = [i for i in archive.infolist() if i.filename.endswith(suffix)]
            if len(details) != 1:
                raise Malformed(f"the bill holds no detail file for {day}")
            if details[0].file_size > MAX_DETAIL_BYTES:
                raise Malformed("the bill's detail file is too large")
            raw = archive.read(details[0])
        text = raw.decode(fmt.ENCODING)
    except (zipfile.BadZipFile, zlib.error, EOFError, UnicodeDecodeError) as exc:
        raise Malformed(f"the bill is no GBK zip: {exc}") from None
    rows = list(csv.reader(line for line in text.splitlines()
                           if line.strip() and not line.startswith("#")))
    if not rows:
        raise Malformed("the bill has no column names")
    header = {name.strip(): i for i, name in enumerate(rows[0])}
    missing = [name for name in _NEEDED if name not in header]
    if missing:
        raise Malformed(f"the bill lacks the columns {missing}")
    return tuple(_line(header, row) for row in rows[1:])


def _line(header: Mapping[str, int], row: Sequence[str]) -> BillLine:
    if len(row) < len(header):
        raise Malformed(f"a bill line has {len(row)} of {len(header)} columns")

    def cell(name: str) -> str:
        return row[header[name]].strip()  # numbers end with a tab

    kind = _KINDS.get(cell(fmt.TYPE))
    if kind is None:
        raise Malformed(f"unknown 业务类型 {cell(fmt.TYPE)!r}")
    note = cell(fmt.NOTE)
    currency = note.removeprefix(fmt.CURRENCY_NOTE) if note.startswith(fmt.CURRENCY_NOTE) \
        else DOMESTIC
    if not is_known(currency):
        raise Malformed(f"unknown currency {currency!r}")
    written = cell(fmt.ORDER_AMOUNT)
    try:
        amount = minor_units(written.removeprefix("-"), currency)  # refunds are negative
    except ValueError:
        raise Malformed(f"{written!r} is no amount in {currency}") from None
    return BillLine(kind=kind, rail_order_no=cell(fmt.OUT_TRADE_NO),
                    rail_reference=cell(fmt.TRADE_NO), amount=amount, currency=currency,
                    rail_refund_no=(cell(fmt.REQUEST_NO) or None) if kind == "refund" else None)
