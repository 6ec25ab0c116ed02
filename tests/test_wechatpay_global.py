"""Cross-border payments on WeChat Pay (the Global API, adapter option `global = true`):
the bodies the adapter sends, and charges, queries, closes, reverses and refunds priced in
foreign currencies against the simulator, through the core's RailClient."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from adapters.base import (
    ActionType,
    AdapterConfig,
    Charge,
    Close,
    HttpRequest,
    NotificationKind,
    Operation,
    Query,
    RailError,
    RailStatus,
    Refund,
    RefundQuery,
    Reverse,
)
from adapters.commerce_ops import ExchangeRate, PayerAmount
from adapters.conformance.checks_crossborder import payer_fen
from adapters.currencies import exponent, format_major, parse_major
from adapters.wechatpay import protocol
from adapters.wechatpay.adapter import WeChatPayAdapter, create_adapter
from adapters.wechatpay.global_pay import exchange_rate, global_mcc
from adapters.wechatpay.global_wire import WireExchangeRate
from adapters.wechatpay.protocol import WeChatPayCredentials
from tests.wechat_services import CODE_PAID, DOMESTIC, GLOBAL, WeChatRail, running

NOTIFY = "https://router.example/v1/notify/wechatpay"
JPY_RATE = "0.04812"


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("wxglobal") / "keys"
    protocol.load_or_create_bundle(path)
    return path


@pytest.fixture(scope="module")
def creds(keys: Path) -> WeChatPayCredentials:
    return protocol.load_bundle(keys)


@pytest.fixture
async def rail(creds: WeChatPayCredentials) -> AsyncIterator[WeChatRail]:
    async with running(creds) as started:
        status, _ = await started.control("POST", "/sim/rates", {"JPY": JPY_RATE})
        assert status == 200
        yield started


def charge(no: str, scene: str, amount: int = 1000, currency: str = "JPY",
           **payer: str) -> Charge:
    return Charge(no, amount, currency, scene, "抹茶", payer, NOTIFY)


def global_adapter(creds: WeChatPayCredentials, **options: object) -> WeChatPayAdapter:
    """The adapter `create_adapter` makes with `global = true` and `options`."""
    mcc = global_mcc({"global": True, **options}, "hk")
    return WeChatPayAdapter("hk", "http://127.0.0.1:9", creds, global_mcc=mcc)


def body_of(creds: WeChatPayCredentials, op: Charge | Refund,
            **options: object) -> tuple[str, dict[str, Any]]:
    request = global_adapter(creds, **options).build(op)
    assert isinstance(request, HttpRequest)
    return request.url.removeprefix("http://127.0.0.1:9"), json.loads(request.body)


# --------------------------------------------------------------------------- the adapter
@pytest.mark.parametrize(("scene", "path", "trade_type"), [
    ("native", "/v3/global/transactions/native", "NATIVE"),
    ("jsapi", "/v3/global/transactions/jsapi", "JSAPI"),
    ("mini_program", "/v3/global/transactions/jsapi", "JSAPI"),
    ("app", "/v3/global/transactions/app", "APP"),
    ("h5", "/v3/global/transactions/mweb", "MWEB"),
    ("quickpay", "/v3/global/micropay/transactions/pay", "MICROPAY"),
])
def test_a_global_order_is_priced_in_its_currency(creds: WeChatPayCredentials, scene: str,
                                                  path: str, trade_type: str) -> None:
    payer = {"openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o", "client_ip": "127.0.0.1",
             "auth_code": CODE_PAID}
    op = Charge("gl0001", 1000, "JPY", scene, "抹茶", payer, NOTIFY)
    url, body = body_of(creds, op, merchant_category_code="5812")
    assert url == path
    assert body["amount"] == {"total": 1000, "currency": "JPY"}  # yen have no decimals
    assert (body["trade_type"], body["merchant_category_code"]) == (trade_type, "5812")
    assert body["mchid"] and body["appid"]
    assert ("notify_url" in body) == (scene != "quickpay")
    if scene == "h5":
        assert body["scene_info"]["payer_client_ip"] == "127.0.0.1"
        assert set(body["scene_info"]["store_info"]) >= {"name", "address"}


def test_global_queries_closes_and_refunds_use_global_paths(
        creds: WeChatPayCredentials) -> None:
    adapter = global_adapter(creds)
    mchid = creds.mchid
    expected: dict[Operation, tuple[str, str]] = {
        Query("gl0002"): ("GET", f"/v3/global/transactions/out-trade-no/gl0002?mchid={mchid}"),
        Close("gl0002"): ("POST", "/v3/global/transactions/out-trade-no/gl0002/close"),
        Reverse("gl0002"): ("POST", "/v3/global/micropay/transactions/out-trade-no/gl0002/"
                                    "reverse"),
        RefundQuery("gl0002", "rf0002"): ("GET", "/v3/global/refunds/out-refund-no/rf0002"
                                                 f"?mchid={mchid}"),
    }
    for op, (method, path) in expected.items():
        request = adapter.build(op)
        assert isinstance(request, HttpRequest)
        assert (request.method, request.url.removeprefix("http://127.0.0.1:9")) == (method, path)
    url, body = body_of(creds, Refund("gl0002", "rf0002", 400, 1000, "JPY", "退货", NOTIFY))
    assert url == "/v3/global/refunds"
    assert body["amount"] == {"refund": 400, "total": 1000, "currency": "JPY"}


def test_the_domestic_adapter_still_refuses_other_currencies(keys: Path) -> None:
    adapter = create_adapter(AdapterConfig("wx", "http://127.0.0.1:9", keys))
    with pytest.raises(RailError) as info:
        adapter.build(charge("gl0003", "native"))
    assert (info.value.param, info.value.definitive) == ("currency", True)


@pytest.mark.parametrize("options", [
    {"global": "yes"}, {"global": True, "merchant_category_code": "54"},
    {"global": True, "sub_mchid": "1900000109"},
])
def test_bad_global_options_are_configuration_errors(options: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        global_mcc(options, "hk")


def test_a_currency_outside_iso_4217_is_refused_before_sending(
        creds: WeChatPayCredentials) -> None:
    adapter = global_adapter(creds)
    with pytest.raises(RailError) as info:
        adapter.build(charge("gl0004", "native", currency="XYZ"))
    assert (info.value.param, info.value.definitive) == ("currency", True)


@pytest.mark.parametrize(("wire", "text"), [
    (4_812_000, "0.04812000"), (92_000_000, "0.92000000"), (1, "0.00000001"),
    (2_340_000_000, "23.40000000"),
])
def test_rates_are_exact_decimal_strings(wire: int, text: str) -> None:
    rate = exchange_rate(WireExchangeRate(rate=wire, type="SETTLEMENT_RATE"), "JPY")
    assert rate == ExchangeRate(text, "wechatpay:SETTLEMENT_RATE", "JPY", "CNY")


def test_iso_4217_exponents() -> None:
    assert [exponent(c) for c in ("JPY", "KRW", "VND", "CLP", "CNY", "IDR", "KWD", "BHD")] == [
        0, 0, 0, 0, 2, 2, 3, 3]
    assert (format_major(1000, "JPY"), format_major(1234, "CNY"), format_major(1, "KWD")) == (
        "1000", "12.34", "0.001")
    assert parse_major("12.30", "CNY") == 1230
    with pytest.raises(ValueError):
        parse_major("0.001", "CNY")


# --------------------------------------------------------------------------- against the simulator
async def test_a_paid_jpy_charge_reports_what_the_payer_paid_in_cny(rail: WeChatRail) -> None:
    paid = await rail.paid_by_code("gl1001", 1000, "JPY", rail=GLOBAL)
    expected = PayerAmount(4812, "CNY", ExchangeRate("0.04812000", "wechatpay:SETTLEMENT_RATE",
                                                     "JPY", "CNY"))
    assert paid.payer_amount == expected and paid.amount == 1000
    assert paid.rail_reference and paid.rail_reference.startswith("4200")  # the Global `id`
    queried = await rail.call(Query("gl1001"), GLOBAL)
    assert (queried.status, queried.payer_amount, queried.rail_reference) == (
        RailStatus.SUCCEEDED, expected, paid.rail_reference)
    row = (await rail.ledger())["orders"]["gl1001"]
    assert row == {"status": "SUCCESS", "charged": 1000, "charges": 1, "refunded": 0,
                   "currency": "JPY", "payer_total": 4812}


@pytest.mark.parametrize(("currency", "amount", "rate", "fen"), [
    ("JPY", 300, "0.04815", 1445),  # 1444.5 fen: half up, not half even
    ("KWD", 1234, "23.40", 2888),  # 1.234 KWD (three decimals) = 28.8756 CNY
    ("USD", 1999, "7.18", 14353),  # 19.99 USD = 143.5282 CNY
])
async def test_payer_totals_round_half_up_in_decimals(rail: WeChatRail, currency: str,
                                                      amount: int, rate: str, fen: int) -> None:
    status, _ = await rail.control("POST", "/sim/rates", {currency: rate})
    assert status == 200
    assert payer_fen(amount, currency, rate) == fen
    paid = await rail.paid_by_code(f"gl2{currency}", amount, currency, rail=GLOBAL)
    assert paid.payer_amount is not None
    assert paid.payer_amount.amount == fen
    assert Decimal(paid.payer_amount.rate.rate) == Decimal(rate)


async def test_wallet_scenes_wait_then_notify_the_payer_amount(rail: WeChatRail) -> None:
    opened = await rail.call(charge("gl3001", "native"), GLOBAL)
    assert opened.status is RailStatus.REQUIRES_ACTION and opened.action is not None
    h5 = await rail.call(charge("gl3002", "h5", client_ip="127.0.0.1"), GLOBAL)
    assert h5.action is not None and h5.action.type is ActionType.REDIRECT
    assert str(h5.action.data["url"]).startswith("https://")
    mini = await rail.call(charge("gl3003", "mini_program", openid="oUpF8uMuAJO_M2pxb1Q9zNjW"),
                           GLOBAL)
    assert mini.action is not None and mini.action.type is ActionType.SDK_PARAMS
    notified = dataclasses.replace(charge("gl3004", "native"), notify_url=rail.receiver.url)
    await rail.call(notified, GLOBAL)
    await rail.pay("gl3004")
    note = await rail.notification(GLOBAL)
    assert (note.kind, note.rail_order_no, note.result.status) == (
        NotificationKind.PAYMENT, "gl3004", RailStatus.SUCCEEDED)
    assert note.result.payer_amount is not None and note.result.payer_amount.amount == 4812
    assert note.result.rail_reference and note.result.rail_reference.startswith("4200")


async def test_close_and_reverse_on_the_global_api(rail: WeChatRail) -> None:
    await rail.call(charge("gl4001", "native"), GLOBAL)
    assert (await rail.call(Close("gl4001"), GLOBAL)).status is RailStatus.CLOSED
    confirming = await rail.call(charge("gl4002", "quickpay", auth_code="134000000000000006"),
                                 GLOBAL)
    assert confirming.status is RailStatus.PROCESSING
    assert (await rail.call(Reverse("gl4002"), GLOBAL)).status is RailStatus.CLOSED
    assert (await rail.call(Query("gl4002"), GLOBAL)).status is RailStatus.CLOSED


async def test_a_jpy_refund_gives_back_cny_at_the_order_rate(rail: WeChatRail) -> None:
    await rail.paid_by_code("gl5001", 1000, "JPY", rail=GLOBAL)
    await rail.control("POST", "/sim/rates", {"JPY": "0.05"})  # the order keeps its rate
    refund = Refund("gl5001", "rf5001", 400, 1000, "JPY", "退货", rail.receiver.url)
    accepted = await rail.call(refund, GLOBAL)
    assert accepted.status is RailStatus.PROCESSING  # the create answer carries no status
    assert accepted.payer_amount is not None
    assert accepted.payer_amount.amount == payer_fen(400, "JPY", JPY_RATE) == 1925
    done = await rail.until(RefundQuery("gl5001", "rf5001"), RailStatus.SUCCEEDED, GLOBAL)
    assert (done.amount, done.rail_reference) == (400, accepted.rail_reference)
    note = await rail.notification(GLOBAL)
    assert (note.kind, note.rail_refund_no, note.result.status) == (
        NotificationKind.REFUND, "rf5001", RailStatus.SUCCEEDED)
    assert note.result.payer_amount == accepted.payer_amount
    again = await rail.call(refund, GLOBAL)  # the same number: the same refund
    assert again.rail_reference == accepted.rail_reference
    assert (await rail.ledger())["orders"]["gl5001"]["refunded"] == 400


async def test_the_simulator_refuses_what_wechat_would(rail: WeChatRail) -> None:
    await rail.paid_by_code("gl6001", 1000, "JPY", rail=GLOBAL)
    other = await rail.refused(Refund("gl6001", "rf6001", 100, 1000, "USD", "", ""), GLOBAL)
    assert (other.code, other.definitive) == ("PARAM_ERROR", True)  # not the order's currency
    unquoted = await rail.refused(charge("gl6002", "native", currency="ISK"), GLOBAL)
    assert (unquoted.code, unquoted.definitive) == ("PARAM_ERROR", True)
    domestic = await rail.refused(charge("gl6003", "native"), DOMESTIC)
    assert domestic.param == "currency"  # refused before sending


async def test_rates_are_decimal_strings_only(rail: WeChatRail) -> None:
    for bad in ({"JPY": 0.04812}, {"JPY": "0.123456789"}, {"XYZ": "1"}, {"JPY": "-1"}):
        status, body = await rail.control("POST", "/sim/rates", bad)
        assert status == 400, (bad, body)
    status, table = await rail.control("GET", "/sim/rates")
    assert status == 200 and table["JPY"] == JPY_RATE
