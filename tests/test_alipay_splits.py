"""Splits on the Alipay rail (royalty): `alipay.trade.order.settle` and
`alipay.trade.order.settle.query` through the real adapter and RailClient, against the
simulator serving RSA2-signed answers on loopback; and the official SDK's generic call."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any
from urllib.parse import parse_qsl

import alipay as alipay_sdk
import pytest

from adapters.alipay.adapter import create_adapter
from adapters.base import (
    AdapterConfig,
    Charge,
    HttpRequest,
    RailError,
    RailErrorCode,
    RailStatus,
)
from adapters.commerce_ops import Split, SplitQuery, SplitReceiver, SplitReturn
from tests.conftest import Sim
from tests.payout_harness import PayoutRail

pytestmark = pytest.mark.asyncio

RECEIVER = "2088102177846881"
PARTNER = "2088102177846884"  # a merchant's Alipay account


def number(prefix: str) -> str:
    return prefix + uuid.uuid4().hex[:22]


@pytest.fixture
def rail(alipay_sim: Sim) -> PayoutRail:
    return PayoutRail.on(alipay_sim, create_adapter)


async def paid_trade(rail: PayoutRail, amount: int = 10_000) -> tuple[str, str]:
    """(out_trade_no, trade_no) of a trade paid at once by a payer code."""
    no = number("sp")
    paid = await rail.call(Charge(no, amount, "CNY", "quickpay", "tea",
                                  {"auth_code": "283456789012345671"}, ""))
    assert paid.status is RailStatus.SUCCEEDED and paid.rail_reference is not None
    return no, paid.rail_reference


def split(trade: tuple[str, str], *amounts: int, finish: bool = False,
          no: str | None = None) -> Split:
    receivers = tuple(SplitReceiver("user" if i % 2 else "merchant",
                                    RECEIVER if i % 2 else PARTNER, fen, f"share {i}")
                      for i, fen in enumerate(amounts, 1))
    return Split(trade[0], trade[1], no or number("st"), receivers, finish)


async def splits(rail: PayoutRail) -> dict[str, Any]:
    rows: dict[str, Any] = (await rail.sim.ledger())["splits"]
    return rows


async def test_split_is_settled_at_once_and_in_the_ledger(rail: PayoutRail) -> None:
    trade = await paid_trade(rail)
    op = split(trade, 1000, 2000)
    done = await rail.call(op)
    assert (done.status, done.amount) == (RailStatus.SUCCEEDED, 3000)
    assert done.rail_reference is not None  # the settle_no
    queried = await rail.call(SplitQuery(op.rail_order_no, op.rail_reference, op.rail_split_no))
    assert (queried.status, queried.amount, queried.rail_reference) == (
        RailStatus.SUCCEEDED, 3000, done.rail_reference)
    assert (await splits(rail))[op.rail_split_no] == {
        "order": trade[0], "amount": 3000, "status": "SUCCESS", "returned": 0,
        "receivers": [{"account": RECEIVER, "amount": 1000}, {"account": PARTNER, "amount": 2000}],
    }


async def test_splits_of_a_trade_stay_within_30_percent(rail: PayoutRail) -> None:
    trade = await paid_trade(rail)
    first = await rail.call(split(trade, 2000))
    assert first.status is RailStatus.SUCCEEDED
    above = split(trade, 1001)
    refused = await rail.outcome(above)
    assert isinstance(refused, RailError) and refused.definitive
    assert refused.code == "ACQ.ALLOC_AMOUNT_VALIDATE_ERROR"
    missing = await rail.call(SplitQuery(trade[0], trade[1], above.rail_split_no))
    assert missing.status is RailStatus.NOT_FOUND  # refused: nothing was shared
    rest = await rail.call(split(trade, 1000))
    assert rest.status is RailStatus.SUCCEEDED
    assert sum(row["amount"] for row in (await splits(rail)).values()) == 3000


async def test_concurrent_splits_never_exceed_the_cap(rail: PayoutRail) -> None:
    trade = await paid_trade(rail)
    outcomes = await asyncio.gather(*(rail.outcome(split(trade, 1000)) for _ in range(5)))
    done = [o for o in outcomes if not isinstance(o, RailError)]
    refused = [o for o in outcomes if isinstance(o, RailError)]
    assert len(done) == 3 and all(o.status is RailStatus.SUCCEEDED for o in done)
    assert {(e.code, e.definitive) for e in refused} == {("ACQ.ALLOC_AMOUNT_VALIDATE_ERROR", True)}
    assert sum(row["amount"] for row in (await splits(rail)).values()) == 3000


async def test_one_number_splits_once(rail: PayoutRail) -> None:
    trade = await paid_trade(rail)
    op = split(trade, 500)
    results = await asyncio.gather(*(rail.call(op) for _ in range(4)))
    assert {r.status for r in results} == {RailStatus.SUCCEEDED}
    assert len({r.rail_reference for r in results}) == 1
    # The number is taken: other shares under it are refused, which proves nothing about
    # the first split, so the refusal is not definitive.
    other = await rail.outcome(split(trade, 600, no=op.rail_split_no))
    assert isinstance(other, RailError) and not other.definitive
    assert other.code == "ACQ.DISCORDANT_REPEAT_REQUEST"
    assert (await splits(rail))[op.rail_split_no]["amount"] == 500


async def test_finishing_ends_the_trades_sharing(rail: PayoutRail) -> None:
    trade = await paid_trade(rail)
    finished = await rail.call(split(trade, 700, finish=True))
    assert finished.status is RailStatus.SUCCEEDED
    late = await rail.outcome(split(trade, 100))
    assert isinstance(late, RailError) and late.definitive
    assert late.code == "ACQ.ILLEGAL_SETTLE_STATE"


async def test_only_paid_trades_are_shared(rail: PayoutRail) -> None:
    no = number("sp")
    created = await rail.call(Charge(no, 1000, "CNY", "jsapi", "tea",
                                     {"buyer_id": "2088102177846880"}, ""))
    assert created.status is RailStatus.REQUIRES_ACTION and created.rail_reference
    unpaid = await rail.outcome(split((no, created.rail_reference), 100))
    assert isinstance(unpaid, RailError) and unpaid.definitive
    assert unpaid.code == "ACQ.ILLEGAL_SETTLE_STATE"
    unknown = await rail.outcome(split((no, "2023111522001000000000000000"), 100))
    assert isinstance(unknown, RailError) and unknown.definitive
    assert unknown.code == "ACQ.TRADE_NOT_EXIST"
    gone = await rail.call(SplitQuery(no, "2023111522001000000000000000", number("st")))
    assert gone.status is RailStatus.NOT_FOUND
    assert await splits(rail) == {}


async def test_split_return_is_refused_before_sending(rail: PayoutRail) -> None:
    op = SplitReturn("o1", "s1", "r1", RECEIVER, 100, "back")
    with pytest.raises(RailError) as refused:
        rail.adapter.build(op)
    assert refused.value.definitive and refused.value.code == RailErrorCode.INVALID_REQUEST


async def test_service_provider_token_rides_on_every_call(alipay_sim: Sim) -> None:
    config = AdapterConfig("alipay", alipay_sim.base_url, alipay_sim.keys_dir,
                           {"app_auth_token": "201510BBaabdb44d8fd04607abf8d5931ec75D84"})
    isv = PayoutRail.on(alipay_sim, lambda _: create_adapter(config))
    trade = await paid_trade(isv)
    op = split(trade, 100)
    request = isv.adapter.build(op)
    assert isinstance(request, HttpRequest)
    form = dict(parse_qsl(request.body.decode()))
    assert form["app_auth_token"] == "201510BBaabdb44d8fd04607abf8d5931ec75D84"
    assert (await isv.call(op)).status is RailStatus.SUCCEEDED


async def test_faults_make_outcomes_unknown(rail: PayoutRail) -> None:
    trade = await paid_trade(rail)
    await rail.sim.faults(error_rate=1.0)
    failed = await rail.outcome(split(trade, 100))
    assert isinstance(failed, RailError) and not failed.definitive
    assert await splits(rail) == {}  # a system error applies nothing
    await rail.sim.faults(timeout_rate=1.0)
    op = split(trade, 200)
    lost = await rail.outcome(op)
    assert isinstance(lost, RailError) and not lost.definitive
    await rail.sim.faults()
    queried = await rail.call(SplitQuery(trade[0], trade[1], op.rail_split_no))
    assert (queried.status, queried.amount) == (RailStatus.SUCCEEDED, 200)


async def test_sdk_settles_through_its_generic_call(rail: PayoutRail) -> None:
    """`server_api` signs any method and verifies the signed answer (it raises otherwise)."""
    keys = rail.sim.keys_dir
    sdk = alipay_sdk.AliPay(
        appid=(keys / "app_id.txt").read_text().strip(), app_notify_url=None,
        app_private_key_string=(keys / "app_private_key.pem").read_text(),
        alipay_public_key_string=(keys / "alipay_public_key.pem").read_text(),
        sign_type="RSA2")
    sdk._gateway = rail.sim.base_url + "/gateway.do"  # the documented override
    trade = await paid_trade(rail)
    biz = {"out_request_no": "sdk_settle_1", "trade_no": trade[1], "royalty_parameters": [
        {"royalty_type": "transfer", "trans_in_type": "userId", "trans_in": RECEIVER,
         "amount": "12.50", "desc": "分账"}]}
    settled = await asyncio.to_thread(sdk.server_api, "alipay.trade.order.settle", biz)
    assert (settled["code"], settled["trade_no"]) == ("10000", trade[1])
    query = {"out_request_no": "sdk_settle_1", "trade_no": trade[1]}
    state = await asyncio.to_thread(sdk.server_api, "alipay.trade.order.settle.query", query)
    [share] = state["royalty_detail_list"]
    assert (share["state"], share["amount"], share["trans_in"]) == ("SUCCESS", "12.50", RECEIVER)
