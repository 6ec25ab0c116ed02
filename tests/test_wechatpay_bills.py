"""The trade bill (交易账单) on WeChat Pay: the file's format both ways, the two calls of
BillDownload through the core's RailClient against the simulator, the digest check,
planted differences, and the official SDK fetching the same bill."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Literal

import pytest
import wechatpayv3

from adapters.base import Charge, HttpRequest, RailError, RailStatus, Refund, RefundQuery
from adapters.commerce_ops import BillDownload, BillLine
from adapters.wechatpay import bills, protocol
from adapters.wechatpay.adapter import WeChatPayAdapter
from adapters.wechatpay.protocol import WeChatPayCredentials
from adapters.wechatpay.tradebill import COLUMNS, SUMMARY_COLUMNS, BillRow, render
from tests.wechat_services import GLOBAL, WeChatRail, running, today_cn


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("wxbills") / "keys"
    protocol.load_or_create_bundle(path)
    return path


@pytest.fixture(scope="module")
def creds(keys: Path) -> WeChatPayCredentials:
    return protocol.load_bundle(keys)


@pytest.fixture
async def rail(creds: WeChatPayCredentials) -> AsyncIterator[WeChatRail]:
    async with running(creds) as started:
        yield started


def row(kind: Literal["payment", "refund"], no: str, amount: int, currency: str = "CNY",
        **more: str) -> BillRow:
    return BillRow(kind, "2024-07-09 10:06:33", "wx8888888888888888", "1900000109",
                   "", "4200002360202407091150650780", no, "oUpF8u", "JSAPI", currency,
                   amount, **more)


async def day_bill(rail: WeChatRail, day: str | None = None) -> tuple[BillLine, ...]:
    day = day or today_cn()
    where = await rail.call(BillDownload(day))
    assert where.status is RailStatus.SUCCEEDED and where.rail_reference, where
    got = await rail.call(BillDownload(day, where.rail_reference))
    assert got.status is RailStatus.SUCCEEDED and got.bill is not None
    return got.bill


async def refunded(rail: WeChatRail, no: str, refund_no: str, amount: int, total: int,
                   currency: str = "CNY", on: str = "wechatpay") -> None:
    await rail.call(Refund(no, refund_no, amount, total, currency, "", ""), on)
    await rail.until(RefundQuery(no, refund_no), RailStatus.SUCCEEDED, on)


# --------------------------------------------------------------------------- the format
def test_the_file_is_written_as_wechat_writes_it() -> None:
    text = render([row("payment", "o1", 600), row("refund", "o1", 142, refund_id="5030",
                                                   out_refund_no="r1")]).decode()
    lines = text.split("\r\n")
    assert lines[0] == ",".join(COLUMNS)
    assert lines[1].startswith("`2024-07-09 10:06:33,`wx8888888888888888,`1900000109,`0,`,")
    fields = dict(zip(COLUMNS, lines[1][1:].split(",`"), strict=True))
    assert (fields["交易状态"], fields["应结订单金额"], fields["订单金额"], fields["手续费"],
            fields["费率"]) == ("SUCCESS", "6.00", "6.00", "0.04000", "0.60%")
    refund = dict(zip(COLUMNS, lines[2][1:].split(",`"), strict=True))
    assert (refund["交易状态"], refund["退款金额"], refund["申请退款金额"], refund["商户退款单号"],
            refund["手续费"]) == ("REFUND", "1.42", "1.42", "r1", "-0.01000")
    assert lines[3] == ",".join(SUMMARY_COLUMNS)
    assert lines[4] == "`2,`6.00,`1.42,`0.00,`0.03000,`6.00,`1.42"


def test_a_downloaded_file_is_read_after_its_digest_is_checked() -> None:
    content = render([row("payment", "o1", 1234), row("payment", "o2", 1000, "JPY",
                                                     description="a, b"),
                      row("refund", "o1", 234, refund_id="5030", out_refund_no="r1")])
    url = f"https://api.mch.weixin.qq.com/v3/billdownload/file?token=t#SHA1=" \
          f"{hashlib.sha1(content).hexdigest()}"  # noqa: S324
    assert bills.bill_answer(url, content).bill == (
        BillLine("payment", "o1", "4200002360202407091150650780", 1234, "CNY"),
        BillLine("payment", "o2", "4200002360202407091150650780", 1000, "JPY"),
        BillLine("refund", "o1", "5030", 234, "CNY", rail_refund_no="r1"),
    )
    with pytest.raises(RailError) as info:
        bills.bill_answer(url, content.replace(b"12.34", b"12.35"))
    assert (info.value.code, info.value.definitive) == ("BILL_DIGEST_MISMATCH", False)


def test_bill_calls_are_signed_gets_and_stay_on_the_rail(creds: WeChatPayCredentials) -> None:
    adapter = WeChatPayAdapter("wx", "http://127.0.0.1:9", creds)
    where = adapter.build(BillDownload("2024-07-09"))
    assert isinstance(where, HttpRequest) and where.method == "GET"
    assert where.url == "http://127.0.0.1:9/v3/bill/tradebill?bill_date=2024-07-09&bill_type=ALL"
    fetch = adapter.build(BillDownload("2024-07-09", "http://127.0.0.1:9/v3/billdownload/file"
                                                     "?token=abc#SHA1=00ff"))
    assert isinstance(fetch, HttpRequest)
    assert fetch.url == "http://127.0.0.1:9/v3/billdownload/file?token=abc"  # no fragment
    assert "Authorization" in fetch.headers
    for refused in (BillDownload("2024-7-9"),
                    BillDownload("2024-07-09", "https://evil.example/v3/billdownload/file"
                                               "?token=abc#SHA1=00ff"),
                    BillDownload("2024-07-09", "http://127.0.0.1:9/v3/billdownload/file?t=1")):
        with pytest.raises(RailError) as info:
            adapter.build(refused)
        assert info.value.definitive


# --------------------------------------------------------------------------- against the simulator
async def test_the_day_bill_lists_the_ledger(rail: WeChatRail) -> None:
    await rail.paid_by_code("bl1001", 1234)
    await rail.call(Charge("bl1002", 500, "CNY", "native", "茶", {}, rail.receiver.url))
    await rail.pay("bl1002")
    await rail.call(Charge("bl1003", 800, "CNY", "native", "未付", {}, rail.receiver.url))  # unpaid
    await refunded(rail, "bl1001", "rb1001", 234, 1234)
    await rail.control("POST", "/sim/rates", {"JPY": "0.04812"})
    await rail.paid_by_code("bl1004", 1000, "JPY", rail=GLOBAL)
    await refunded(rail, "bl1004", "rb1004", 400, 1000, "JPY", GLOBAL)
    lines = await day_bill(rail)
    ledger = (await rail.ledger())["orders"]
    found = {(line.kind, line.rail_order_no, line.rail_refund_no): (line.amount, line.currency)
             for line in lines}
    assert found == {
        ("payment", "bl1001", None): (1234, "CNY"),
        ("payment", "bl1002", None): (500, "CNY"),
        ("refund", "bl1001", "rb1001"): (234, "CNY"),
        ("payment", "bl1004", None): (1000, "JPY"),
        ("refund", "bl1004", "rb1004"): (400, "JPY"),
    }
    assert sum(line.amount for line in lines if line.kind == "payment"
               and line.currency == "CNY") == ledger["bl1001"]["charged"] + ledger["bl1002"][
                   "charged"]


async def test_planted_differences(rail: WeChatRail) -> None:
    await rail.paid_by_code("bl2001", 1000)
    await rail.paid_by_code("bl2002", 2000)
    status, planted = await rail.control("POST", "/sim/bills/plant", {
        "date": today_cn(), "extra": [{"out_trade_no": "ghost2003", "amount": 999}],
        "drop": ["bl2002"], "amount_delta": {"bl2001": 1}})
    assert status == 200 and planted["drop"] == ["bl2002"]
    found = {line.rail_order_no: line.amount for line in await day_bill(rail)}
    assert found == {"bl2001": 1001, "ghost2003": 999}
    for bad in ({"date": "today"}, {"date": today_cn(), "extra": [{"amount": 1}]},
                {"date": today_cn(), "amount_delta": {"bl2001": 0.5}}):
        status, _ = await rail.control("POST", "/sim/bills/plant", bad)
        assert status == 400


async def test_a_quiet_day_has_no_bill(rail: WeChatRail) -> None:
    quiet = await rail.call(BillDownload("2001-01-01"))
    assert (quiet.status, quiet.bill) == (RailStatus.SUCCEEDED, ())  # NO_STATEMENT_EXIST
    future = await rail.refused(BillDownload("2999-01-01"))
    assert (future.code, future.definitive) == ("PARAM_ERROR", True)


async def test_faults_leave_the_bill_unknown(rail: WeChatRail) -> None:
    await rail.paid_by_code("bl4001", 1000)
    where = await rail.call(BillDownload(today_cn()))
    assert where.rail_reference is not None
    await rail.control("POST", "/sim/faults", {"error_rate": 1.0})
    for op in (BillDownload(today_cn()), BillDownload(today_cn(), where.rail_reference)):
        failed = await rail.refused(op)
        assert (failed.code, failed.definitive) == ("SYSTEM_ERROR", False)
    await rail.control("POST", "/sim/faults", {})
    lost = where.rail_reference.replace("token=", "token=x")
    gone = await rail.refused(BillDownload(today_cn(), lost))
    assert (gone.code, gone.definitive) == ("RESOURCE_NOT_EXISTS", True)


async def test_the_sdk_fetches_the_same_bill(rail: WeChatRail, keys: Path) -> None:
    await rail.paid_by_code("bl5001", 4321)
    text = {name: (keys / name).read_text().strip() for name in (
        "mchid.txt", "appid.txt", "apiv3_key.txt", "merchant_private_key.pem",
        "merchant_cert_serial.txt", "platform_public_key.pem", "platform_public_key_id.txt")}
    sdk = wechatpayv3.WeChatPay(
        wechatpay_type=wechatpayv3.WeChatPayType.NATIVE, mchid=text["mchid.txt"],
        private_key=text["merchant_private_key.pem"],
        cert_serial_no=text["merchant_cert_serial.txt"], appid=text["appid.txt"],
        apiv3_key=text["apiv3_key.txt"], public_key=text["platform_public_key.pem"],
        public_key_id=text["platform_public_key_id.txt"])
    sdk._core._gate_way = str(rail.server.make_url("")).rstrip("/")

    def fetch() -> tuple[Any, bytes]:
        code, answer = sdk.trade_bill(bill_date=today_cn())  # tar_type GZIP by default
        assert code == 200, answer
        where = json.loads(answer)
        status, content = sdk.download_bill(where["download_url"])
        assert status == 200
        raw = content if isinstance(content, bytes) else content.encode("latin-1")
        assert hashlib.sha1(raw).hexdigest() == where["hash_value"]  # noqa: S324
        return where, gzip.decompress(raw)

    _, plain = await asyncio.to_thread(fetch)
    assert plain.decode().startswith(",".join(COLUMNS))
    assert "`bl5001," in plain.decode()
