"""The bank's daily bill: one signed `GET /v1/bills/{date}` answering JSON lines, through
the real adapter and RailClient against the bank simulator on loopback, with differences
planted by `/sim/bills/plant`."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta

import pytest

from adapters.bank.adapter import create_adapter
from adapters.base import (
    Charge,
    HttpRequest,
    RailError,
    RailErrorCode,
    RailStatus,
    Refund,
    Reverse,
)
from adapters.commerce_ops import BillDownload, BillLine
from adapters.simkit.bill_plants import china_day
from tests.conftest import Sim
from tests.rail_harness import Rail, merchant

pytestmark = pytest.mark.asyncio

CODE = "134567890123456781"  # paid at once


@pytest.fixture
def rail(bank_sim: Sim) -> Rail:
    return Rail.on(bank_sim, create_adapter)


def today() -> str:
    return china_day(time.time()).isoformat()


async def pay(rail: Rail, amount: int) -> tuple[str, str]:
    op = Charge("bb" + uuid.uuid4().hex[:22], amount, "CNY", "quickpay", "coffee",
                {"auth_code": CODE}, "")
    paid = await rail.call(op)
    assert paid.status is RailStatus.SUCCEEDED and paid.rail_reference is not None
    return op.rail_order_no, paid.rail_reference


async def bill(rail: Rail, day: str) -> tuple[BillLine, ...]:
    read = await rail.call(BillDownload(day))
    assert read.status is RailStatus.SUCCEEDED and read.bill is not None
    return read.bill


def ordered(lines: tuple[BillLine, ...] | list[BillLine]) -> list[BillLine]:
    return sorted(lines, key=lambda line: (line.rail_order_no, line.kind))


async def test_bill_lists_payments_and_settled_refunds(rail: Rail) -> None:
    kept, kept_ref = await pay(rail, 1000)
    reversed_no, reversed_ref = await pay(rail, 600)
    async with merchant(b"") as receiver:
        refund = Refund(kept, "rf" + kept, 250, 1000, "CNY", "spilt", receiver.url)
        assert (await rail.call(refund)).status is RailStatus.PROCESSING
        await receiver.next()  # refund.succeeded: the money is back, the bill lists it
    await rail.call(Reverse(reversed_no))
    sent = rail.adapter.build(BillDownload(today(), "http://ignored.test/"))
    assert isinstance(sent, HttpRequest) and sent.url.endswith(f"/v1/bills/{today()}")
    assert ordered(await bill(rail, today())) == ordered([
        BillLine("payment", kept, kept_ref, 1000, "CNY"),
        BillLine("refund", kept, kept_ref, 250, "CNY", "rf" + kept),
        BillLine("payment", reversed_no, reversed_ref, 600, "CNY"),
        BillLine("refund", reversed_no, reversed_ref, 600, "CNY"),
    ])


async def test_plants_make_the_bill_disagree(rail: Rail) -> None:
    kept, _ = await pay(rail, 700)
    dropped, _ = await pay(rail, 800)
    plant = {"date": today(), "extra": [{"out_trade_no": "ghost-1", "amount": 4200}],
             "drop": [dropped], "amount_delta": {kept: -1}}
    status, shown = await rail.control("/sim/bills/plant", plant)
    assert status == 200 and shown["amount_delta"] == {kept: -1}
    lines = {line.rail_order_no: line for line in await bill(rail, today())}
    assert set(lines) == {kept, "ghost-1"}
    assert (lines[kept].amount, lines["ghost-1"].amount) == (699, 4200)
    assert (await rail.control("/sim/bills/plant", {"date": today(), "drop": ["bad no!"]}))[0] \
        == 400
    ledger = (await rail.sim.ledger())["orders"]
    assert (ledger[kept]["charged"], ledger[dropped]["charged"]) == (700, 800)


async def test_days_without_a_bill(rail: Rail) -> None:
    await pay(rail, 100)
    yesterday = (china_day(time.time()) - timedelta(days=1)).isoformat()
    assert await bill(rail, yesterday) == ()
    tomorrow = (china_day(time.time()) + timedelta(days=1)).isoformat()
    missing = await rail.call(BillDownload(tomorrow))
    assert (missing.status, missing.failure_code) == (RailStatus.NOT_FOUND, "BILL_NOT_FOUND")
    refused = await rail.outcome(BillDownload("20260103"))
    assert isinstance(refused, RailError) and refused.definitive
    assert (refused.code, refused.param) == (RailErrorCode.INVALID_REQUEST, "date")


async def test_faults_make_the_bill_unknown(rail: Rail) -> None:
    await rail.sim.faults(error_rate=1.0)
    failed = await rail.outcome(BillDownload(today()))
    assert isinstance(failed, RailError) and not failed.definitive
    assert failed.code == "SYSTEM_ERROR"
    await rail.sim.faults(timeout_rate=1.0)
    lost = await rail.outcome(BillDownload(today()))
    assert isinstance(lost, RailError) and not lost.definitive
    assert lost.code == RailErrorCode.TIMEOUT
