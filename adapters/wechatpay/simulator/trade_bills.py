"""Trade bills (交易账单) in the WeChat Pay simulator: the day's bill lists what the ledger
holds for that day, plus any differences planted for reconciliation tests.

`GET /v3/bill/tradebill?bill_date=&bill_type=ALL|SUCCESS|REFUND[&tar_type=GZIP]` renders
the day's bill (`tradebill`) at once, keeps it under a token of its own, answers its
`download_url` and SHA1 `hash_value`; a day with nothing on it is 400
NO_STATEMENT_EXIST. `GET /v3/billdownload/file?token=` (signed, like every call) answers
the file itself, unsigned, as WeChat does. A payment is on the day (Asia/Shanghai) its
order was paid; a refund on the day it succeeded.

`POST /sim/bills/plant {"date", "extra": [{"out_trade_no", "amount", "currency"?}],
"drop": ["<out_trade_no>"], "amount_delta": {"<out_trade_no>": <minor units>}}` changes the
bills of `date` rendered from then on (`adapters.simkit.bill_plants`, as on every rail):
extra payments the ledger never had, orders left out (their payment and refunds),
payments shown with another amount.
"""

from __future__ import annotations

import gzip
import hashlib
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Final, final

from aiohttp import web

from adapters.simkit.bill_plants import BillPlants, planted
from adapters.simkit.replies import Reply, error
from adapters.simkit.signed_api import SignedRuntime
from adapters.wechatpay.bills import TRADEBILL_PATH
from adapters.wechatpay.protocol import RefundStatus, valid_out_trade_no
from adapters.wechatpay.simulator import checks
from adapters.wechatpay.simulator.crossborder_records import pricing
from adapters.wechatpay.simulator.ledger import Ledger
from adapters.wechatpay.simulator.records import CN, OrderRecord, RefundRecord
from adapters.wechatpay.tradebill import BillRow, render

__all__ = ["DOWNLOAD_PATH", "TradeBills", "routes"]

DOWNLOAD_PATH: Final = "/v3/billdownload/file"
BILL_TYPES: Final = frozenset({"ALL", "SUCCESS", "REFUND"})
_SYSTEM_ERROR = error(500, "SYSTEM_ERROR", "系统错误")
_UNAUTHENTIC = error(401, "SIGN_ERROR", "签名错误，请检查后再试")


@final
@dataclass(frozen=True, slots=True)
class BillFile:
    """A download's answer: the file, or the refusal."""

    content: bytes | None
    refusal: Reply | None = None
    withhold: bool = False


@final
class TradeBills:
    """The bills of one merchant, rendered from its ledger on request."""

    __slots__ = ("_appid", "_files", "_ledger", "_mchid", "_refunds", "plants")

    def __init__(self, appid: str, mchid: str, ledger: Ledger,
                 refunds: Callable[[], Iterable[RefundRecord]]) -> None:
        self._appid = appid
        self._mchid = mchid
        self._ledger = ledger
        self._refunds = refunds
        self.plants = BillPlants(valid_out_trade_no)
        self._files: dict[str, bytes] = {}

    def locate(self, origin: str, params: Mapping[str, str]) -> Reply:
        try:
            day = _day(params.get("bill_date"))
        except ValueError:
            raise checks.invalid("bill_date must be YYYY-MM-DD") from None
        bill_type = params.get("bill_type", "ALL")
        if bill_type not in BILL_TYPES:
            raise checks.invalid("bill_type must be ALL, SUCCESS or REFUND")
        tar_type = params.get("tar_type")
        if tar_type not in (None, "GZIP"):
            raise checks.invalid("tar_type must be GZIP when given")
        if day > datetime.now(CN).date():
            raise checks.invalid("bill_date cannot be a day still to come")
        rows = [row for row in self.rows(day.isoformat(), params.get("sub_mchid"))
                if bill_type == "ALL" or (row.kind == "payment") == (bill_type == "SUCCESS")]
        if not rows:
            return error(400, "NO_STATEMENT_EXIST", "账单不存在")
        content = render(rows)
        if tar_type == "GZIP":
            content = gzip.compress(content, mtime=0)
        token = secrets.token_urlsafe(24)
        self._files[token] = content
        return Reply(200, {"hash_type": "SHA1",
                           "hash_value": hashlib.sha1(content).hexdigest(),  # noqa: S324
                           "download_url": f"{origin}{DOWNLOAD_PATH}?token={token}"})

    def download(self, token: str | None) -> BillFile:
        content = self._files.get(token or "")
        if content is None:
            return BillFile(None, error(404, "RESOURCE_NOT_EXISTS", "账单文件不存在或已过期"))
        return BillFile(content)

    # ----------------------------------------------------------------- the day's lines
    def rows(self, day: str, sub_mchid: str | None = None) -> list[BillRow]:
        """The day's payments and refunds as the ledger holds them, planted differences
        applied, in time order."""
        rows = [self._payment(o) for o in self._ledger.records()
                if o.charges and (o.success_time or "")[:10] == day]
        rows += [self._refund(r) for r in self._refunds()
                 if r.status is RefundStatus.SUCCESS and (r.success_time or "")[:10] == day]
        if sub_mchid is not None:
            rows = [row for row in rows if row.sub_mchid == sub_mchid]
        serial = iter(range(1, 10**10))

        def extra(no: str, amount: int, currency: str) -> BillRow:
            transaction_id = f"4200009999{day.replace('-', '')}{next(serial):010d}"
            return BillRow("payment", f"{day} 12:00:00", self._appid, self._mchid, "",
                           transaction_id, no, "", "NATIVE", currency, amount,
                           description="planted")

        shown = planted(rows, self.plants.of(date.fromisoformat(day)), extra=extra,
                        with_amount=lambda row, amount: replace(row, amount=amount))
        return sorted(shown, key=lambda row: row.time)

    def _payment(self, order: OrderRecord) -> BillRow:
        tx = order.transaction()
        return BillRow(
            "payment", _time(order.success_time), self._appid_of(order),
            order.ident.get("mchid") or order.ident.get("sp_mchid", self._mchid),
            order.ident.get("sub_mchid", ""), order.transaction_id or "", order.out_trade_no,
            next(iter(order.payer.values()), ""), str(tx["trade_type"]), pricing(order)[0],
            order.charged, description=str(order.params.get("description", "")),
            attach=str(order.params.get("attach", "")),
        )  # fmt: skip

    def _refund(self, refund: RefundRecord) -> BillRow:
        payment = self._payment(refund.order)
        return replace(payment, kind="refund", time=_time(refund.success_time),
                       amount=refund.amount, refund_id=refund.refund_id,
                       out_refund_no=refund.key[1])

    def _appid_of(self, order: OrderRecord) -> str:
        return order.ident.get("appid") or order.ident.get("sp_appid", self._appid)


def _day(value: object) -> date:
    """A day written YYYY-MM-DD; raises ValueError."""
    if not isinstance(value, str) or len(value) != len("YYYY-MM-DD"):
        raise ValueError("the date must be YYYY-MM-DD")
    return date.fromisoformat(value)


def _time(rfc3339: str | None) -> str:
    """"2024-07-09T10:06:33+08:00" as the bill writes it: "2024-07-09 10:06:33"."""
    return (rfc3339 or "")[:19].replace("T", " ")


def routes(sim: SignedRuntime, bills: TradeBills) -> list[web.RouteDef]:
    """The bill calls (signed) and the `/sim/bills/plant` control."""

    async def download(request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        if not sim.authentic(request, raw):
            return sim.answer(_UNAUTHENTIC)

        def answer(file: BillFile) -> web.Response:
            if file.refusal is not None:
                return sim.answer(file.refusal)
            # The file is not signed: its digest, given with the URL, vouches for it.
            return web.Response(body=file.content, content_type="text/plain",
                                charset="utf-8")

        return await sim.perform(request, lambda: bills.download(request.query.get("token")),
                                 answer, lambda: sim.answer(_SYSTEM_ERROR))

    return [
        web.get(TRADEBILL_PATH, sim.api(
            lambda r, _b: bills.locate(str(r.url.origin()), r.query), has_body=False)),
        web.get(DOWNLOAD_PATH, download),
        bills.plants.route(),
    ]
