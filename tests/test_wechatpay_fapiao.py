"""E-invoices (fapiao) on WeChat Pay: the adapter's bodies and state table, the tax
arithmetic, and issuing, querying and reversing against the simulator through the core's
RailClient (with its FAPIAO.* notifications and its ledger)."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from adapters.base import (
    AdapterConfig,
    Charge,
    HttpRequest,
    HttpResponse,
    NotificationKind,
    RailError,
    RailStatus,
)
from adapters.commerce_ops import (
    InvoiceBuyer,
    InvoiceItem,
    InvoiceQuery,
    IssueInvoice,
    ReverseInvoice,
)
from adapters.wechatpay import fapiao, protocol
from adapters.wechatpay.adapter import WeChatPayAdapter, create_adapter
from adapters.wechatpay.fapiao_wire import APPLICATIONS_PATH, FapiaoRecord, FapiaoStatus, tax_of
from adapters.wechatpay.protocol import WeChatPayCredentials
from adapters.wechatpay.sensitive import decrypt_field
from adapters.wechatpay.simulator.fapiao import DEVELOPMENT_CONFIG
from tests.wechat_services import WeChatRail, running

BUYER = InvoiceBuyer("individual", "张三", email="zhangsan@example.com")
COMPANY = InvoiceBuyer("organization", "深圳市沙箱科技有限公司", tax_id="91440300MA5G000000")


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("wxfapiao") / "keys"
    protocol.load_or_create_bundle(path)
    return path


@pytest.fixture(scope="module")
def creds(keys: Path) -> WeChatPayCredentials:
    return protocol.load_bundle(keys)


@pytest.fixture
async def rail(creds: WeChatPayCredentials) -> AsyncIterator[WeChatRail]:
    async with running(creds) as started:
        yield started


def invoice(no: str, order: str, tx: str | None, *items: InvoiceItem,
            buyer: InvoiceBuyer = BUYER) -> IssueInvoice:
    items = items or (InvoiceItem("信息技术服务", 10600, 600),)
    total = sum(item.amount for item in items)
    tax = sum(tax_of(item.amount, item.tax_rate_bp) for item in items)
    return IssueInvoice(no, order, tx or "", buyer, items, total, tax)


async def invoices(rail: WeChatRail) -> dict[str, Any]:
    ledger: dict[str, Any] = (await rail.ledger())["invoices"]
    return ledger


# --------------------------------------------------------------------------- the adapter
@pytest.mark.parametrize(("amount", "bp", "tax"), [
    (10600, 600, 600), (100, 600, 6), (1, 1300, 0), (1, 10_000, 1), (11300, 1300, 1300),
    (99, 0, 0),
])
def test_tax_is_the_share_of_a_tax_included_amount(amount: int, bp: int, tax: int) -> None:
    assert tax_of(amount, bp) == tax  # amount x bp / (10000 + bp), half up, integers only


def test_the_issue_body(keys: Path, creds: WeChatPayCredentials) -> None:
    adapter = create_adapter(AdapterConfig("wx", "http://127.0.0.1:9", keys,
                                           {"fapiao_tax_code": "3040407990000000000"}))
    op = invoice("fp0001", "order0001", "4200000001", InvoiceItem("咨询", 6000, 600),
                 InvoiceItem("培训", 4000, 300))
    request = adapter.build(op)
    assert isinstance(request, HttpRequest) and request.method == "POST"
    assert request.url == "http://127.0.0.1:9" + APPLICATIONS_PATH
    assert request.headers[protocol.H_SERIAL] == creds.platform_public_key_id
    body = json.loads(request.body)
    assert (body["scene"], body["fapiao_apply_id"]) == ("WITH_WECHATPAY", "4200000001")
    buyer = body["buyer_information"]
    assert (buyer["type"], buyer["name"]) == ("INDIVIDUAL", "张三")
    assert creds.platform_private_key is not None
    assert decrypt_field(creds.platform_private_key, buyer["email"]) == "zhangsan@example.com"
    [info] = body["fapiao_information"]
    assert (info["fapiao_id"], info["total_amount"]) == ("fp0001", 10000)
    assert [(i["goods_name"], i["total_amount"], i["tax_rate"], i["quantity"], i["tax_code"])
            for i in info["items"]] == [("咨询", 6000, 600, 100_000_000, "3040407990000000000"),
                                       ("培训", 4000, 300, 100_000_000, "3040407990000000000")]


def test_queries_and_reverses_name_the_application(creds: WeChatPayCredentials) -> None:
    adapter = WeChatPayAdapter("wx", "http://127.0.0.1:9", creds)
    query = adapter.build(InvoiceQuery("fp0002", rail_reference="4200000002"))
    assert isinstance(query, HttpRequest) and query.method == "GET"
    assert query.url.endswith(f"{APPLICATIONS_PATH}/4200000002?fapiao_id=fp0002")
    reverse = adapter.build(ReverseInvoice("fp0002", "", "4200000002", "24440000000000000001"))
    assert isinstance(reverse, HttpRequest)
    assert reverse.url.endswith(f"{APPLICATIONS_PATH}/4200000002/reverse")
    assert json.loads(reverse.body) == {"reverse_reason": "SALES_RETURN", "fapiao_information": [
        {"fapiao_id": "fp0002", "fapiao_number": "24440000000000000001"}]}


@pytest.mark.parametrize(("op", "param"), [
    (invoice("fp0003", "o", "4200000003", buyer=InvoiceBuyer("organization", "某公司")),
     "buyer.tax_id"),
    (IssueInvoice("fp0004", "o", "4200000004", BUYER, (InvoiceItem("x", 100, 600),), 200, 6),
     "items"),
    (invoice("fp0005", "o", "4200000005", InvoiceItem("x", 100, 20_000)), "items"),
    (invoice("fp0006", "o", None), None),  # no transaction id: the router's own field
    (InvoiceQuery("fp0007"), None),
    (ReverseInvoice("fp0008", "SALES_RETURN", "4200000008"), None),  # no invoice number
])
def test_what_wechat_cannot_take_is_refused_before_sending(
        creds: WeChatPayCredentials, op: IssueInvoice | InvoiceQuery | ReverseInvoice,
        param: str | None) -> None:
    adapter = WeChatPayAdapter("wx", "http://127.0.0.1:9", creds)
    with pytest.raises(RailError) as info:
        adapter.build(op)
    assert (info.value.code, info.value.definitive, info.value.param) == (
        "INVALID_REQUEST", True, param)


@pytest.mark.parametrize("status", list(FapiaoStatus))
def test_every_fapiao_status_maps(status: FapiaoStatus) -> None:
    from adapters.wechatpay.fapiao_wire import FapiaoNumber

    record = FapiaoRecord(fapiao_id="fp1", status=status, total_amount=100,
                          blue_fapiao=FapiaoNumber(fapiao_number="2444"))
    result = fapiao.record_result(record, numbered=True)
    expected = {
        FapiaoStatus.ISSUE_ACCEPTED: RailStatus.PROCESSING,
        FapiaoStatus.REVERSE_ACCEPTED: RailStatus.PROCESSING,
        FapiaoStatus.ISSUED: RailStatus.SUCCEEDED,
        FapiaoStatus.ISSUE_FAILED: RailStatus.FAILED,
        FapiaoStatus.REVERSED: RailStatus.CLOSED,
        FapiaoStatus.REVERSE_FAILED: RailStatus.SUCCEEDED,  # the blue invoice still stands
    }[status]
    assert result.status is expected
    if status is FapiaoStatus.REVERSE_FAILED:
        assert result.failure_code == "REVERSE_FAILED"
    if status is not FapiaoStatus.ISSUE_FAILED:
        assert result.rail_reference == "2444"


# --------------------------------------------------------------------------- against the simulator
async def test_issue_query_and_reverse(rail: WeChatRail) -> None:
    paid = await rail.paid_by_code("fpo1001", 10600)
    op = invoice("fp1001", "fpo1001", paid.rail_reference)
    assert (await rail.call(op)).status is RailStatus.PROCESSING  # 202: accepted
    issued = await rail.call(InvoiceQuery("fp1001", paid.rail_reference))
    assert issued.status is RailStatus.SUCCEEDED and issued.amount == 10600
    number = issued.rail_reference
    assert number is not None and len(number) == 20 and number.isdigit()
    assert (await invoices(rail))["fp1001"] == {"status": "ISSUED", "total": 10600,
                                                "tax": 600, "order": "fpo1001"}
    reverse = ReverseInvoice("fp1001", "SALES_RETURN", paid.rail_reference, number)
    assert (await rail.call(reverse)).status is RailStatus.PROCESSING
    closed = await rail.call(InvoiceQuery("fp1001", paid.rail_reference))
    assert (closed.status, closed.rail_reference) == (RailStatus.CLOSED, number)
    assert (await invoices(rail))["fp1001"]["status"] == "REVERSED"
    assert (await rail.call(reverse)).status is RailStatus.PROCESSING  # again: the same


async def test_issued_and_reversed_are_notified(rail: WeChatRail) -> None:
    op = Charge("fpo2001", 11300, "CNY", "native", "咖啡", {}, rail.receiver.url)
    await rail.call(op)
    await rail.pay("fpo2001")
    payment = await rail.notification()
    assert payment.kind is NotificationKind.PAYMENT and payment.result.rail_reference
    tx = payment.result.rail_reference
    await rail.call(invoice("fp2001", "fpo2001", tx, InvoiceItem("咖啡", 11300, 1300),
                            buyer=COMPANY))
    issued = await rail.notification()
    assert (issued.kind, issued.rail_order_no, issued.result.status) == (
        NotificationKind.INVOICE, "fp2001", RailStatus.SUCCEEDED)
    assert (await invoices(rail))["fp2001"]["tax"] == 1300
    number = (await rail.call(InvoiceQuery("fp2001", tx))).rail_reference
    await rail.call(ReverseInvoice("fp2001", "ISSUE_ERROR", tx, number))
    reversed_ = await rail.notification()
    assert (reversed_.kind, reversed_.rail_order_no, reversed_.result.status) == (
        NotificationKind.INVOICE, "fp2001", RailStatus.CLOSED)


async def test_the_callback_url_of_the_development_config_wins(rail: WeChatRail,
                                                               keys: Path) -> None:
    creds = protocol.load_bundle(keys)
    body = json.dumps({"callback_url": rail.receiver.url}).encode()
    headers = protocol.sign_request(creds, "POST", DEVELOPMENT_CONFIG, body, now=time.time())
    async with rail.session.post(rail.server.make_url(DEVELOPMENT_CONFIG), data=body,
                                 headers=headers) as resp:
        assert resp.status == 200, await resp.text()
    paid = await rail.paid_by_code("fpo3001", 500)  # a payer code: no notify_url of its own
    await rail.call(invoice("fp3001", "fpo3001", paid.rail_reference,
                            InvoiceItem("茶", 500, 600)))
    note = await rail.notification()
    assert (note.kind, note.rail_order_no) == (NotificationKind.INVOICE, "fp3001")


async def test_an_invoice_needs_a_paid_order_and_no_more_than_it(rail: WeChatRail) -> None:
    unknown = await rail.refused(invoice("fp4001", "x", "4200009999999999"))
    assert (unknown.code, unknown.definitive) == ("RESOURCE_NOT_EXISTS", True)
    paid = await rail.paid_by_code("fpo4002", 10600)
    await rail.call(invoice("fp4002", "fpo4002", paid.rail_reference,
                            InvoiceItem("a", 6000, 600)))
    over = await rail.refused(invoice("fp4003", "fpo4002", paid.rail_reference,
                                      InvoiceItem("b", 5000, 600)))
    assert (over.code, over.definitive) == ("INVALID_REQUEST", True)
    await rail.call(invoice("fp4004", "fpo4002", paid.rail_reference,
                            InvoiceItem("b", 4600, 600)))  # the rest of it is fine
    assert set(await invoices(rail)) == {"fp4002", "fp4004"}


async def test_issue_is_idempotent_by_fapiao_id(rail: WeChatRail) -> None:
    paid = await rail.paid_by_code("fpo5001", 10600)
    op = invoice("fp5001", "fpo5001", paid.rail_reference)
    for _ in range(3):
        assert (await rail.call(op)).status is RailStatus.PROCESSING
    assert list(await invoices(rail)) == ["fp5001"]
    other = invoice("fp5001", "fpo5001", paid.rail_reference, InvoiceItem("别的", 10600, 300))
    refused = await rail.refused(other)
    assert (refused.code, refused.definitive) == ("INVALID_REQUEST", True)


async def test_unknown_invoices_and_faults(rail: WeChatRail) -> None:
    paid = await rail.paid_by_code("fpo6001", 10600)
    missing = await rail.call(InvoiceQuery("fp6001", paid.rail_reference))
    assert missing.status is RailStatus.NOT_FOUND
    await rail.control("POST", "/sim/faults", {"error_rate": 1.0})
    failed = await rail.refused(invoice("fp6001", "fpo6001", paid.rail_reference))
    assert (failed.code, failed.definitive) == ("SYSTEM_ERROR", False)
    await rail.control("POST", "/sim/faults", {})
    assert "fp6001" not in await invoices(rail)


def test_an_unsigned_answer_proves_nothing(creds: WeChatPayCredentials) -> None:
    adapter = WeChatPayAdapter("wx", "http://127.0.0.1:9", creds)
    op = InvoiceQuery("fp7001", "4200007001")
    with pytest.raises(RailError) as info:
        adapter.parse(op, HttpResponse(200, {}, b'{"fapiao_information": []}'))
    assert not info.value.definitive
