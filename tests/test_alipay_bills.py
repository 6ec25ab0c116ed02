"""The Alipay trade bill: `BillDownload` asks for the day's link
(`alipay.data.dataservice.bill.downloadurl.query`), then downloads and reads the zip of
GBK CSV files it serves, through the real adapter and RailClient against the simulator on
loopback; `/sim/bills/plant` makes the bill disagree with the ledger on purpose."""

from __future__ import annotations

import io
import time
import uuid
import zipfile
from datetime import date, timedelta

import pytest

from adapters.alipay import bill_format as fmt
from adapters.alipay.adapter import create_adapter
from adapters.base import Charge, RailError, RailErrorCode, RailStatus, Refund, Reverse
from adapters.commerce_ops import BillDownload, BillLine
from adapters.simkit.bill_plants import china_day
from tests.conftest import Sim
from tests.rail_harness import Rail

pytestmark = pytest.mark.asyncio

CODE = "286123456789012341"  # a payer code that pays at once


@pytest.fixture
def rail(alipay_sim: Sim) -> Rail:
    return Rail.on(alipay_sim, create_adapter, settle_currency="JPY")


def today() -> str:
    return china_day(time.time()).isoformat()


def no() -> str:
    return "bl" + uuid.uuid4().hex[:22]


async def pay(rail: Rail, amount: int, currency: str = "CNY") -> tuple[str, str]:
    op = Charge(no(), amount, currency, "quickpay", "oolong", {"auth_code": CODE}, "")
    paid = await rail.call(op)
    assert paid.status is RailStatus.SUCCEEDED and paid.rail_reference is not None
    return op.rail_order_no, paid.rail_reference


async def link(rail: Rail, day: str) -> str:
    found = await rail.call(BillDownload(day))
    assert found.status is RailStatus.SUCCEEDED and found.rail_reference is not None
    return found.rail_reference


async def bill(rail: Rail, day: str) -> tuple[BillLine, ...]:
    read = await rail.call(BillDownload(day, await link(rail, day)))
    assert read.status is RailStatus.SUCCEEDED and read.bill is not None
    return read.bill


async def test_bill_lists_the_days_payments_and_refunds(rail: Rail) -> None:
    first, first_ref = await pay(rail, 1234)
    second, second_ref = await pay(rail, 500)
    refund = Refund(first, first + "r", 234, 1234, "CNY", "chipped cup", "")
    assert (await rail.call(refund)).status is RailStatus.SUCCEEDED
    await rail.call(Reverse(second))  # a cancel of a paid trade gives the money back
    await rail.call(Charge(no(), 99, "CNY", "jsapi", "unpaid", {"buyer_id": "2088102177846880"},
                           ""))
    yen, yen_ref = await pay(rail, 1000, "JPY")
    lines = await bill(rail, today())
    assert sorted(lines, key=lambda line: (line.rail_order_no, line.kind)) == sorted([
        BillLine("payment", first, first_ref, 1234, "CNY"),
        BillLine("refund", first, first_ref, 234, "CNY", first + "r"),
        BillLine("payment", second, second_ref, 500, "CNY"),
        BillLine("refund", second, second_ref, 500, "CNY"),
        BillLine("payment", yen, yen_ref, 1000, "JPY"),
    ], key=lambda line: (line.rail_order_no, line.kind))


async def test_the_file_is_alipays_zip_of_gbk_csv(rail: Rail) -> None:
    order_no, trade_no = await pay(rail, 1000)
    day = china_day(time.time())
    async with rail.sim.session.get(await link(rail, day.isoformat())) as resp:
        assert resp.status == 200 and resp.content_type == "application/zip"
        body = await resp.read()
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        assert all(not info.flag_bits & 0x800 for info in archive.infolist())  # not UTF-8
        entries = {info.filename.encode("cp437").decode("gbk"): info
                   for info in archive.infolist()}
        account = next(iter(entries)).split("_")[0]
        assert sorted(entries) == [f"{account}_{day:%Y%m%d}_业务明细(汇总).csv",
                                   f"{account}_{day:%Y%m%d}_业务明细.csv"]
        detail = entries[f"{account}_{day:%Y%m%d}_业务明细.csv"]
        text = archive.read(detail).decode("gbk")
    lines = text.split("\r\n")
    assert lines[0] == "#支付宝业务明细查询" and lines[1] == f"#账号：[{account}]"
    header = next(line for line in lines if not line.startswith("#")).split(",")
    assert header == list(fmt.COLUMNS) and len(header) == 25
    row = next(line for line in lines if order_no in line).split(",")
    assert row[:3] == [f"{trade_no}\t", f"{order_no}\t", "交易"]
    assert row[header.index("订单金额（元）")] == "10.00"


async def test_plants_make_the_bill_disagree(rail: Rail) -> None:
    kept, _ = await pay(rail, 700)
    dropped, _ = await pay(rail, 800)
    plant = {"date": today(), "extra": [{"out_trade_no": "ghost_order", "amount": 4200},
                                        {"out_trade_no": "ghost_yen", "amount": 900,
                                         "currency": "JPY"}],
             "drop": [dropped], "amount_delta": {kept: 1}}
    status, shown = await rail.control("/sim/bills/plant", plant)
    assert status == 200 and shown["drop"] == [dropped]
    lines = {line.rail_order_no: line for line in await bill(rail, today())}
    assert dropped not in lines
    assert (lines[kept].amount, lines["ghost_order"].amount) == (701, 4200)
    assert lines["ghost_order"].kind == "payment" and lines["ghost_order"].rail_reference
    assert (lines["ghost_yen"].amount, lines["ghost_yen"].currency) == (900, "JPY")
    ledger = (await rail.sim.ledger())["orders"]
    assert (ledger[kept]["charged"], ledger[dropped]["charged"]) == (700, 800)  # untouched
    for wrong in ({"date": "2026-1-3"}, {"date": today(), "extra": [{"out_trade_no": "x"}]},
                  {"date": today(), "amount_delta": {kept: 0}}, {"date": today(), "drop": "x"}):
        assert (await rail.control("/sim/bills/plant", wrong))[0] == 400


async def test_a_day_to_come_has_no_bill(rail: Rail) -> None:
    tomorrow = (china_day(time.time()) + timedelta(days=1)).isoformat()
    missing = await rail.call(BillDownload(tomorrow))
    assert (missing.status, missing.failure_code) == (RailStatus.NOT_FOUND, fmt.BILL_NOT_EXIST)
    refused = await rail.outcome(BillDownload("2026/01/03"))
    assert isinstance(refused, RailError) and refused.definitive
    assert (refused.code, refused.param) == (RailErrorCode.INVALID_REQUEST, "date")
    empty = await bill(rail, (date.fromisoformat(today()) - timedelta(days=400)).isoformat())
    assert empty == ()


async def test_a_dead_link_is_refused(rail: Rail) -> None:
    url = await link(rail, today())
    dead = await rail.outcome(BillDownload(today(), url.replace("token=", "token=x")))
    assert isinstance(dead, RailError) and dead.definitive
    assert dead.code == "BILL_DOWNLOAD_FAILED"
    wrong_day = await rail.outcome(BillDownload("2020-01-01", url))  # another day's file
    assert isinstance(wrong_day, RailError) and not wrong_day.definitive
    assert wrong_day.code == RailErrorCode.MALFORMED_RESPONSE


async def test_faults_make_bills_unknown(rail: Rail) -> None:
    await rail.sim.faults(error_rate=1.0)
    failed = await rail.outcome(BillDownload(today()))
    assert isinstance(failed, RailError) and not failed.definitive
    await rail.sim.faults()
    url = await link(rail, today())
    await rail.sim.faults(error_rate=1.0)
    busy = await rail.outcome(BillDownload(today(), url))
    assert isinstance(busy, RailError) and not busy.definitive
    await rail.sim.faults()
    assert (await rail.call(BillDownload(today(), url))).bill == ()
