"""The Alipay simulator's trade bill: `alipay.data.dataservice.bill.downloadurl.query`
gives a link, valid `LINK_SECONDS` (× time_scale), that serves the day's bill as Alipay
writes it (`adapters.alipay.bill_format`: a zip of GBK CSV files).

A day's bill lists what the ledger holds for it (China time): a 交易 line for each trade
paid that day, a 退款 line for each refund made that day (and for the money a cancel gave
back), in the trade's currency. It is written when downloaded, with the differences
planted by `POST /sim/bills/plant` (`adapters.simkit.bill_plants`). Unlike Alipay, today's
bill is served too (so far as it goes); a day still to come has none.
"""

from __future__ import annotations

import csv
import io
import secrets
import time
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime
from datetime import time as day_time
from typing import Final, final
from urllib.parse import urlencode

from aiohttp import web

from adapters.alipay import bill_format as fmt
from adapters.alipay import protocol
from adapters.alipay.pricing import DOMESTIC, written
from adapters.alipay.protocol import Code
from adapters.alipay.simulator.answers import Answer, failure, ok
from adapters.alipay.simulator.ledger import Ledger
from adapters.alipay.simulator.records import TradeRecord
from adapters.currencies import to_major
from adapters.simkit.bill_plants import CHINA_TZ, BillPlants, bill_day, china_day, planted
from adapters.simkit.runtime import Schedule, SimRuntime

__all__ = ["DOWNLOAD_PATH", "Bills"]

DOWNLOAD_PATH: Final = "/downloadBillFile.resource"  # as on Alipay's bill host
_INVALID: Final = "isv.invalid-arguments"


@final
@dataclass(frozen=True, slots=True)
class BillEntry:
    """One line of a bill."""

    kind: str  # "payment" | "refund"
    order_no: str
    trade_no: str
    amount: int  # minor units of `currency`, positive
    currency: str
    subject: str
    created_at: float
    finished_at: float
    buyer: str = ""
    request_no: str = ""  # a refund's out_request_no


@final
@dataclass(frozen=True, slots=True)
class BillFile:
    """A download's answer before faults: the zip, or None for a dead link."""

    name: str
    body: bytes | None
    withhold: bool = False


class _GbkName(zipfile.ZipInfo):
    """A zip entry named in GBK without the UTF-8 flag, as Alipay's bills are."""

    def _encodeFilenameFlags(self) -> tuple[bytes, int]:  # zipfile's own hook
        return self.filename.encode(fmt.ENCODING), self.flag_bits


@final
class Bills:
    """Download links and planted differences; every method is synchronous."""

    __slots__ = ("_ledger", "_links", "_schedule", "_serial", "origin", "plants")

    def __init__(self, ledger: Ledger, schedule: Schedule) -> None:
        self._ledger = ledger
        self._schedule = schedule
        self._links: dict[str, date] = {}
        self._serial = 0
        self.origin = "http://127.0.0.1"  # where merchants reach the gateway (set per call)
        self.plants = BillPlants(protocol.valid_out_no)

    # ----------------------------------------------------------------- the link
    def url_query(self, biz: Mapping[str, object]) -> Answer:
        if biz.get("bill_type") != fmt.BILL_TYPE:
            return failure(Code.BUSINESS_FAILED, _INVALID, "bill_type must be trade")
        try:
            day = bill_day(biz.get("bill_date"))
        except ValueError:  # monthly bills (yyyy-MM) are not modelled
            return failure(Code.BUSINESS_FAILED, _INVALID, "bill_date must be yyyy-MM-dd")
        if day > china_day(time.time()):
            return failure(Code.BUSINESS_FAILED, fmt.BILL_NOT_EXIST, "the bill does not exist")
        token = secrets.token_urlsafe(24)
        self._links[token] = day
        self._schedule(fmt.LINK_SECONDS, lambda: self._expire(token))
        account, stamp = fmt.account(self._ledger.seller_id), f"{day:%Y%m%d}"
        query = urlencode({
            "bizType": fmt.BILL_TYPE, "userId": account, "fileType": "csv.zip",
            "bizDates": stamp, "downloadFileName": fmt.archive_name(self._ledger.seller_id, day),
            "fileId": f"/trade/{account}/{stamp}", "timestamp": str(int(time.time() * 1000)),
            "token": token,
        })
        return ok(bill_download_url=f"{self.origin}{DOWNLOAD_PATH}?{query}")

    def _expire(self, token: str) -> None:
        self._links.pop(token, None)

    # ----------------------------------------------------------------- the file
    def download(self, token: str) -> BillFile:
        day = self._links.get(token)
        if day is None:
            return BillFile("", None)
        return BillFile(fmt.archive_name(self._ledger.seller_id, day), self._archive(day))

    def entries(self, day: date) -> list[BillEntry]:
        """The day's lines as the bill shows them: the ledger's, then the plants."""
        lines = sorted(self._ledger_entries(day), key=lambda e: e.finished_at)
        return planted(lines, self.plants.of(day), extra=lambda no, amount, currency: self._extra(
            day, no, amount, currency), with_amount=lambda e, amount: replace(e, amount=amount))

    def _ledger_entries(self, day: date) -> Iterator[BillEntry]:
        for trade in self._ledger.trades():
            if not trade.charges or trade.paid_at is None:
                continue
            if china_day(trade.paid_at) == day:
                yield _entry(trade, "payment", trade.charged, trade.paid_at)
            for refund in trade.refunds.values():
                if china_day(refund.at) == day:
                    yield _entry(trade, "refund", refund.amount, refund.at, refund.out_request_no)
            cancelled = trade.refunded - sum(r.amount for r in trade.refunds.values())
            if cancelled > 0 and trade.closed_at is not None and china_day(trade.closed_at) == day:
                yield _entry(trade, "refund", cancelled, trade.closed_at)  # a cancel's refund

    def _extra(self, day: date, no: str, amount: int, currency: str) -> BillEntry:
        self._serial += 1
        noon = datetime.combine(day, day_time(12), CHINA_TZ).timestamp()
        trade_no = protocol.new_trade_no(noon, 10**14 + self._serial)
        return BillEntry("payment", no, trade_no, amount, currency, "", noon, noon)

    def _archive(self, day: date) -> bytes:
        pid, entries = self._ledger.seller_id, self.entries(day)
        files = {f"{fmt.account(pid)}{fmt.detail_suffix(day)}": _detail(pid, day, entries),
                 fmt.summary_name(pid, day): _summary(pid, day, entries)}
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, text in files.items():
                info = _GbkName(name, date_time=(day.year, day.month, day.day, 9, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, text.encode(fmt.ENCODING))
        return out.getvalue()

    # ----------------------------------------------------------------- routes
    def routes(self, sim: SimRuntime) -> list[web.RouteDef]:
        """The unsigned download (faults apply) and `POST /sim/bills/plant`."""

        async def download(request: web.Request) -> web.StreamResponse:
            token = request.query.get("token", "")
            return await sim.perform(request, lambda: self.download(token), _served,
                                     lambda: web.Response(status=503, text="system busy"))

        return [web.get(DOWNLOAD_PATH, download), self.plants.route()]


def _served(bill: BillFile) -> web.Response:
    if bill.body is None:
        return web.Response(status=404, text="the download link is invalid or has expired")
    disposition = f"attachment; filename={bill.name}"
    return web.Response(body=bill.body, headers={"Content-Type": "application/zip",
                                                 "Content-Disposition": disposition})


def _entry(trade: TradeRecord, kind: str, amount: int, at: float, request_no: str = ""
           ) -> BillEntry:
    buyer = f"159****{trade.buyer_id[-4:]}" if trade.buyer_id else ""
    return BillEntry(kind, trade.out_trade_no, trade.trade_no, amount, trade.currency,
                     trade.subject, trade.created_at, at, buyer, request_no)


def _clock(moment: float) -> str:
    return datetime.fromtimestamp(moment, CHINA_TZ).strftime("%Y-%m-%d %H:%M:%S")


def _row(entry: BillEntry) -> list[str]:
    sign = "-" if entry.kind == "refund" else ""
    amount = sign + written(entry.amount, entry.currency)
    note = "" if entry.currency == DOMESTIC else fmt.CURRENCY_NOTE + entry.currency
    cells = dict.fromkeys(fmt.COLUMNS, "")
    cells.update({
        fmt.TRADE_NO: entry.trade_no + "\t", fmt.OUT_TRADE_NO: entry.order_no + "\t",
        fmt.TYPE: fmt.REFUND if entry.kind == "refund" else fmt.PAYMENT,
        fmt.SUBJECT: entry.subject, fmt.CREATED: _clock(entry.created_at),
        fmt.FINISHED: _clock(entry.finished_at), fmt.BUYER: entry.buyer,
        fmt.ORDER_AMOUNT: amount, fmt.RECEIVED: amount,
        fmt.REQUEST_NO: entry.request_no + "\t" if entry.request_no else "",
        fmt.SERVICE_FEE: "0.00", fmt.NOTE: note,
    })
    for column in fmt.COLUMNS:
        if column.endswith("（元）") and not cells[column]:
            cells[column] = "0.00"
    return [cells[column] for column in fmt.COLUMNS]


def _period(pid: str, day: date, title: str) -> list[str]:
    start = f"{day:%Y年%m月%d日} 00:00:00"
    end = f"{date.fromordinal(day.toordinal() + 1):%Y年%m月%d日} 00:00:00"
    period = f"#起始日期：[{start}]   终止日期：[{end}]"
    return [f"#{title}", f"#账号：[{fmt.account(pid)}]", period]


def _total(entries: list[BillEntry], kind: str) -> str:
    chosen = [e for e in entries if e.kind == kind]
    sign = -1 if kind == "refund" else 1
    received = sum(sign * to_major(e.amount, e.currency) for e in chosen)
    label = "退款合计" if kind == "refund" else "交易合计"
    return f"#{label}：{len(chosen)}笔，商家实收共{received:.2f}元，商家优惠共0.00元"


def _detail(pid: str, day: date, entries: list[BillEntry]) -> str:
    out = io.StringIO()
    lines = [*_period(pid, day, "支付宝业务明细查询"), "#" + "-" * 40 + "业务明细列表" + "-" * 40]
    out.write("\r\n".join(lines) + "\r\n")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(fmt.COLUMNS)
    writer.writerows(_row(e) for e in entries)
    out.write("#" + "-" * 40 + "业务明细列表结束" + "-" * 40 + "\r\n")
    out.write(_total(entries, "payment") + "\r\n" + _total(entries, "refund") + "\r\n")
    out.write(f"#导出时间：[{_clock(time.time())}]\r\n")
    return out.getvalue()


def _summary(pid: str, day: date, entries: list[BillEntry]) -> str:
    payments = sum(1 for e in entries if e.kind == "payment")
    refunds = len(entries) - payments
    rows = ["门店编号,门店名称,交易订单总笔数,退款订单总笔数", f",,{payments},{refunds}"]
    return "\r\n".join([*_period(pid, day, "支付宝业务汇总查询"), *rows]) + "\r\n"
