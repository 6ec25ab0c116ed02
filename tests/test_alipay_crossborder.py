"""Cross-border pricing on the Alipay rail: charges priced in their own currency
(`trans_currency`, settled in the adapter's `settle_currency`), what the buyer paid in CNY
read back with the rail's rate, and refunds in the payment's currency, through the real
adapter and RailClient against the simulator on loopback."""

from __future__ import annotations

import json
import uuid
from urllib.parse import parse_qsl

import pytest

from adapters.alipay.adapter import create_adapter
from adapters.base import (
    Charge,
    HttpRequest,
    Query,
    RailError,
    RailErrorCode,
    RailStatus,
    Refund,
    RefundQuery,
)
from adapters.commerce_ops import ExchangeRate, PayerAmount
from tests.conftest import Sim
from tests.rail_harness import Rail, merchant

pytestmark = pytest.mark.asyncio

CODE = "286123456789012341"  # a payer code that pays at once
BUYER = {"buyer_id": "2088102177846880"}


@pytest.fixture
def jpy(alipay_sim: Sim) -> Rail:
    """A merchant Alipay settles in yen."""
    return Rail.on(alipay_sim, create_adapter, settle_currency="JPY")


def no() -> str:
    return "xb" + uuid.uuid4().hex[:22]


def quickpay(amount: int, currency: str, order_no: str | None = None) -> Charge:
    return Charge(order_no or no(), amount, currency, "quickpay", "matcha",
                  {"auth_code": CODE}, "")


def biz_of(request: HttpRequest) -> dict[str, object]:
    form = dict(parse_qsl(request.body.decode()))
    biz: dict[str, object] = json.loads(form["biz_content"])
    return biz


async def test_yen_priced_in_yen_and_paid_in_yuan(jpy: Rail) -> None:
    status, rates = await jpy.control("/sim/rates", {"JPY": "0.04812"})
    assert status == 200 and rates["JPY"] == "0.04812"
    op = quickpay(1000, "JPY")
    sent = jpy.adapter.build(op)
    assert isinstance(sent, HttpRequest)
    biz = biz_of(sent)
    assert (biz["total_amount"], biz["trans_currency"], biz["settle_currency"]) == (
        "1000", "JPY", "JPY")  # yen have no decimals
    paid = await jpy.call(op)
    expected = PayerAmount(4812, "CNY", ExchangeRate(rate="0.04812",
                           source="alipay:trans_pay_rate", base="JPY", quote="CNY"))
    assert (paid.status, paid.amount, paid.payer_amount) == (RailStatus.SUCCEEDED, 1000, expected)
    queried = await jpy.call(Query(op.rail_order_no))
    assert (queried.status, queried.amount, queried.payer_amount) == (
        RailStatus.SUCCEEDED, 1000, expected)
    row = (await jpy.sim.ledger())["orders"][op.rail_order_no]
    assert row == {"status": "TRADE_SUCCESS", "charged": 1000, "charges": 1, "refunded": 0,
                   "currency": "JPY", "payer_total": 4812}


async def test_the_yuan_are_rounded_half_up(jpy: Rail) -> None:
    await jpy.control("/sim/rates", {"JPY": "0.045"})
    paid = await jpy.call(quickpay(1001, "JPY"))  # 45.045 yuan: half up, never to even
    assert paid.payer_amount is not None and paid.payer_amount.amount == 4505
    assert paid.payer_amount.rate.rate == "0.045"


async def test_rate_is_fixed_when_paid(jpy: Rail) -> None:
    op = quickpay(2000, "JPY")
    first = await jpy.call(op)
    await jpy.control("/sim/rates", {"JPY": "0.05"})
    later = await jpy.call(Query(op.rail_order_no))
    assert later.payer_amount == first.payer_amount
    assert (await jpy.call(quickpay(2000, "JPY"))).payer_amount == PayerAmount(
        10000, "CNY", ExchangeRate("0.05", "alipay:trans_pay_rate", "JPY", "CNY"))


async def test_notification_says_what_the_buyer_paid(jpy: Rail) -> None:
    async with merchant() as receiver:
        op = Charge(no(), 1500, "JPY", "jsapi", "sencha", BUYER, receiver.url)
        waiting = await jpy.call(op)
        assert waiting.status is RailStatus.REQUIRES_ACTION
        status, _ = await jpy.control(f"/sim/orders/{op.rail_order_no}/pay", {})
        assert status == 200
        note = jpy.adapter.verify_notification(*await receiver.next())
    assert (note.rail_order_no, note.result.status, note.result.amount) == (
        op.rail_order_no, RailStatus.SUCCEEDED, 1500)
    assert note.result.payer_amount is not None
    assert (note.result.payer_amount.currency, note.result.payer_amount.rate.base) == (
        "CNY", "JPY")
    assert note.result.payer_amount.amount == 7218  # 1500 x 0.04812 = 72.18


async def test_refunds_are_in_the_payment_currency(jpy: Rail) -> None:
    async with merchant() as receiver:
        op = Charge(no(), 3000, "JPY", "quickpay", "gyokuro", {"auth_code": CODE},
                    receiver.url)
        await jpy.call(op)
        await receiver.next()  # the payment's notification
        refund = Refund(op.rail_order_no, op.rail_order_no + "r1", 1200, 3000, "JPY", "sold out",
                        receiver.url)
        sent = jpy.adapter.build(refund)
        assert isinstance(sent, HttpRequest) and biz_of(sent)["refund_amount"] == "1200"
        refunded = await jpy.call(refund)
        assert (refunded.status, refunded.refunded_amount) == (RailStatus.SUCCEEDED, 1200)
        note = jpy.adapter.verify_notification(*await receiver.next())
        assert (note.rail_refund_no, note.result.refunded_amount) == (refund.rail_refund_no, 1200)
    queried = await jpy.call(RefundQuery(op.rail_order_no, refund.rail_refund_no))
    assert (queried.status, queried.amount) == (RailStatus.SUCCEEDED, 1200)
    too_much = await jpy.outcome(Refund(op.rail_order_no, op.rail_order_no + "r2", 1801, 3000,
                                        "JPY", "", ""))
    assert isinstance(too_much, RailError) and too_much.definitive
    row = (await jpy.sim.ledger())["orders"][op.rail_order_no]
    assert (row["charged"], row["refunded"], row["currency"]) == (3000, 1200, "JPY")


async def test_only_cny_and_twd_are_priced_apart_from_the_settlement(jpy: Rail) -> None:
    usd = quickpay(500, "USD")
    refused = await jpy.outcome(usd)
    assert isinstance(refused, RailError) and refused.definitive
    assert (refused.code, refused.param) == (RailErrorCode.INVALID_REQUEST, "currency")
    assert usd.rail_order_no not in (await jpy.sim.ledger())["orders"]
    twd = await jpy.call(quickpay(10000, "TWD"))  # 100.00 TWD, settled in yen
    assert twd.payer_amount is not None
    assert (twd.payer_amount.amount, twd.payer_amount.rate.base) == (2200, "TWD")


async def test_yuan_charges_stay_domestic(jpy: Rail) -> None:
    op = quickpay(1000, "CNY")
    sent = jpy.adapter.build(op)
    assert isinstance(sent, HttpRequest)
    biz = biz_of(sent)
    assert biz["total_amount"] == "10.00" and "trans_currency" not in biz
    paid = await jpy.call(op)
    assert (paid.amount, paid.payer_amount) == (1000, None)


async def test_a_domestic_merchant_still_refuses_other_currencies(alipay_sim: Sim) -> None:
    domestic = Rail.on(alipay_sim, create_adapter)
    refused = await domestic.outcome(quickpay(1000, "JPY"))
    assert isinstance(refused, RailError) and refused.definitive
    assert (refused.code, refused.param) == (RailErrorCode.INVALID_REQUEST, "currency")
    with pytest.raises(ValueError, match="settles in none"):
        Rail.on(alipay_sim, create_adapter, settle_currency="XYZ")


async def test_same_number_in_another_currency_is_another_order(alipay_sim: Sim,
                                                               jpy: Rail) -> None:
    domestic = Rail.on(alipay_sim, create_adapter)
    order_no = no()
    await domestic.call(Charge(order_no, 1000, "CNY", "jsapi", "hojicha", BUYER, ""))
    other = await jpy.outcome(Charge(order_no, 1000, "JPY", "jsapi", "hojicha", BUYER, ""))
    assert isinstance(other, RailError) and other.definitive
    assert other.code == "ACQ.CONTEXT_INCONSISTENT"


async def test_rates_control_refuses_floats_and_unknown_codes(jpy: Rail) -> None:
    assert (await jpy.control("/sim/rates", {"JPY": 0.048}))[0] == 400
    assert (await jpy.control("/sim/rates", {"XYZ": "1"}))[0] == 400
    status, rates = await jpy.control("/sim/rates")
    assert status == 200 and rates["SEK"] == "0.68"  # Alipay's currencies are all quoted
