"""Profit sharing on WeChat Pay: the adapter's bodies and refusals, and the simulator driven
through the core's RailClient (as the conformance suite drives it), plus the official SDK."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

import pytest
import wechatpayv3

from adapters.base import AdapterConfig, HttpRequest, RailError, RailResult, RailStatus
from adapters.commerce_ops import Split, SplitQuery, SplitReceiver, SplitReturn
from adapters.conformance import KITS, EnvSettings, RailEnv, running
from adapters.wechatpay import protocol
from adapters.wechatpay.adapter import PartnerIds, WeChatPayAdapter, create_adapter
from adapters.wechatpay.protocol import WeChatPayCredentials
from adapters.wechatpay.sensitive import decrypt_field
from adapters.wechatpay.simulator.app import SIM_KEY

SETTINGS = EnvSettings(time_scale=0.02, hang_seconds=0.5, rail_timeout=1.0, wait_timeout=5.0)
KIT = next(kit for kit in KITS if kit.name == "wechatpay")
MERCHANT = "1900000109"
USER = "oUpF8uMuAJO_M2pxb1Q9zNjWeS61"
FROZEN_USER = "oUpF8uMuAJO_M2pxb1Q9zNjWeS62"  # ends in 2: the account is abnormal
SUB = "1900000222"


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, WeChatPayCredentials]:
    path = tmp_path_factory.mktemp("wxsplits") / "keys"
    return path, protocol.load_or_create_bundle(path)


@pytest.fixture
async def env(keys: tuple[Path, WeChatPayCredentials]) -> AsyncIterator[RailEnv]:
    async with running(KIT, keys[0], keys[1], SETTINGS) as rail:
        yield rail


def receiver(kind: Literal["merchant", "user"], account: str, amount: int,
             name: str | None = None) -> SplitReceiver:
    return SplitReceiver(kind, account, amount, "佣金", name)


def split(order: tuple[str, str], *receivers: SplitReceiver, no: str | None = None,
          finish: bool = False) -> Split:
    return Split(order[0], order[1], no or "sp" + uuid.uuid4().hex[:20], receivers, finish)


async def paid(env: RailEnv, amount: int = 10_000) -> tuple[str, str]:
    """A paid order (payer code ...1): its out_trade_no and transaction_id."""
    op = env.charge("quickpay", amount=amount, code="1")
    result = await env.call(op)
    assert result.status is RailStatus.SUCCEEDED and result.rail_reference
    return op.rail_order_no, result.rail_reference


async def settled(env: RailEnv, op: Split) -> RailResult:
    query = SplitQuery(op.rail_order_no, op.rail_reference, op.rail_split_no)
    return await env.until(query, lambda r: r.status is not RailStatus.PROCESSING, "split")


async def ledger(env: RailEnv) -> dict[str, Any]:
    async with env.session.get(f"{env.sim_url}/sim/ledger") as resp:
        body: dict[str, Any] = await resp.json()
    return body


async def refused(env: RailEnv, op: Split | SplitReturn) -> RailError:
    outcome = await env.outcome(op)
    assert isinstance(outcome, RailError), outcome
    return outcome


# --------------------------------------------------------------------------- the adapter
def test_a_split_body_names_receivers_by_type_and_encrypts_names(
        keys: tuple[Path, WeChatPayCredentials]) -> None:
    creds = keys[1]
    adapter = WeChatPayAdapter("wechatpay", "http://127.0.0.1:9", creds)
    op = split(("o1", "4200000001"), receiver("merchant", MERCHANT, 100),
               receiver("user", USER, 200, name="张三"), no="sp0001", finish=True)
    request = adapter.build(op)
    assert isinstance(request, HttpRequest) and request.method == "POST"
    assert request.url.endswith("/v3/profitsharing/orders")
    assert request.headers[protocol.H_SERIAL] == creds.platform_public_key_id
    body = json.loads(request.body)
    assert {k: body[k] for k in ("appid", "transaction_id", "out_order_no", "unfreeze_unsplit")
            } == {"appid": creds.appid, "transaction_id": "4200000001",
                  "out_order_no": "sp0001", "unfreeze_unsplit": True}
    assert "sub_mchid" not in body
    merchant, user = body["receivers"]
    assert merchant == {"type": "MERCHANT_ID", "account": MERCHANT, "amount": 100,
                        "description": "佣金"}
    assert (user["type"], user["account"]) == ("PERSONAL_OPENID", USER)
    assert creds.platform_private_key is not None
    assert decrypt_field(creds.platform_private_key, user["name"]) == "张三"
    query = adapter.build(SplitQuery("o1", "4200000001", "sp0001"))
    assert isinstance(query, HttpRequest) and query.method == "GET"
    assert query.url.endswith("/v3/profitsharing/orders/sp0001?transaction_id=4200000001")
    back = adapter.build(SplitReturn("o1", "sp0001", "rt0001", MERCHANT, 50, ""))
    assert isinstance(back, HttpRequest) and back.url.endswith("/v3/profitsharing/return-orders")
    assert json.loads(back.body) == {"out_order_no": "sp0001", "out_return_no": "rt0001",
                                     "return_mchid": MERCHANT, "amount": 50,
                                     "description": "分账"}


def test_partner_splits_name_the_sub_merchant(keys: tuple[Path, WeChatPayCredentials]) -> None:
    creds = keys[1]
    ids = PartnerIds(creds.mchid, creds.appid, SUB, sub_appid="wx1234567890abcdef")
    adapter = WeChatPayAdapter("wechatpay", "http://127.0.0.1:9", creds, partner=ids)
    request = adapter.build(split(("o1", "4200000001"), receiver("user", USER, 100)))
    assert isinstance(request, HttpRequest)
    body = json.loads(request.body)
    assert (body["sub_mchid"], body["sub_appid"], body["appid"]) == (
        SUB, "wx1234567890abcdef", creds.appid)
    assert body["receivers"][0]["type"] == "PERSONAL_SUB_OPENID"
    query = adapter.build(SplitQuery("o1", "4200000001", "sp1"))
    assert isinstance(query, HttpRequest)
    assert query.url.endswith(f"/sp1?sub_mchid={SUB}&transaction_id=4200000001")


@pytest.mark.parametrize(("op", "param"), [
    (split(("o1", "42001")), "receivers"),
    (split(("o1", "42001"), receiver("merchant", MERCHANT, 0)), "receivers"),
    (split(("o1", "42001"), receiver("merchant", "", 10)), "receivers"),
    (split(("o1", "42001"), *[receiver("merchant", MERCHANT, 1)] * 51), "receivers"),
    (split(("o1", "42001"), receiver("merchant", MERCHANT, 1), no="sp|1"), None),
    (split(("o1", ""), receiver("merchant", MERCHANT, 1)), "rail_reference"),
    (SplitReturn("o1", "sp1", "rt1", MERCHANT, -5, "r"), "amount"),
])
def test_what_wechat_cannot_take_is_refused_before_sending(
        keys: tuple[Path, WeChatPayCredentials], op: Split | SplitReturn,
        param: str | None) -> None:
    adapter = WeChatPayAdapter("wechatpay", "http://127.0.0.1:9", keys[1])
    with pytest.raises(RailError) as info:
        adapter.build(op)
    assert (info.value.code, info.value.definitive, info.value.param) == (
        "INVALID_REQUEST", True, param)


# --------------------------------------------------------------------------- the simulator
async def test_a_split_is_processing_then_finished_and_in_the_ledger(env: RailEnv) -> None:
    order = await paid(env)
    op = split(order, receiver("merchant", MERCHANT, 1000), receiver("user", USER, 500))
    first = await env.call(op)
    assert first.status is RailStatus.PROCESSING and first.rail_reference
    done = await settled(env, op)
    assert (done.status, done.amount, done.rail_reference) == (
        RailStatus.SUCCEEDED, 1500, first.rail_reference)
    row = (await ledger(env))["splits"][op.rail_split_no]
    assert row == {
        "order": order[0], "amount": 1500, "status": "FINISHED", "returned": 0,
        "receivers": [
            {"type": "MERCHANT_ID", "account": MERCHANT, "amount": 1000, "result": "SUCCESS",
             "returned": 0},
            {"type": "PERSONAL_OPENID", "account": USER, "amount": 500, "result": "SUCCESS",
             "returned": 0},
        ],
    }


async def test_closed_receivers_fail_the_split_and_free_the_cap(env: RailEnv) -> None:
    order = await paid(env)
    closed = split(order, receiver("user", FROZEN_USER, 3000))
    await env.call(closed)
    failed = await settled(env, closed)
    assert (failed.status, failed.failure_code) == (RailStatus.FAILED, "ACCOUNT_ABNORMAL")
    mixed = split(order, receiver("user", FROZEN_USER, 1000), receiver("user", USER, 2000))
    await env.call(mixed)  # the closed share went back: the whole cap is there again
    done = await settled(env, mixed)
    assert (done.status, done.amount) == (RailStatus.SUCCEEDED, 2000)
    assert done.unshared == (FROZEN_USER,)  # the router shares (and journals) only the rest


async def test_the_cap_is_the_merchants_max_ratio(env: RailEnv) -> None:
    assert env.sim_app is not None
    env.sim_app[SIM_KEY].splits.max_ratio = 2000  # 20 %
    order = await paid(env, 5000)
    err = await refused(env, split(order, receiver("merchant", MERCHANT, 1001)))
    assert (err.code, err.definitive) == ("INVALID_REQUEST", True)
    assert (await env.call(split(order, receiver("merchant", MERCHANT, 1000)))).status is (
        RailStatus.PROCESSING)
    assert [row["amount"] for row in (await ledger(env))["splits"].values()] == [1000]


async def test_finishing_unfreezes_the_rest_so_nothing_more_is_shared(env: RailEnv) -> None:
    order = await paid(env)
    await env.call(split(order, receiver("merchant", MERCHANT, 100), finish=True))
    err = await refused(env, split(order, receiver("merchant", MERCHANT, 100)))
    assert (err.code, err.definitive) == ("INVALID_REQUEST", True)


async def test_a_split_number_shares_once(env: RailEnv) -> None:
    order = await paid(env)
    op = split(order, receiver("merchant", MERCHANT, 700))
    results = await asyncio.gather(*(env.call(op) for _ in range(10)))
    assert len({r.rail_reference for r in results}) == 1
    other = Split(op.rail_order_no, op.rail_reference, op.rail_split_no,
                  (receiver("merchant", MERCHANT, 701),))
    assert (await refused(env, other)).definitive
    assert [row["amount"] for row in (await ledger(env))["splits"].values()] == [700]


async def test_unknown_orders_and_splits(env: RailEnv) -> None:
    err = await refused(env, split(("o1", "4200000000202501010000000001"),
                                   receiver("merchant", MERCHANT, 1)))
    assert (err.code, err.definitive) == ("RESOURCE_NOT_EXISTS", True)
    missing = await env.call(SplitQuery("o1", "4200000000202501010000000001", "sp404"))
    assert (missing.status, missing.failure_code) == (RailStatus.NOT_FOUND, "RESOURCE_NOT_EXISTS")
    await env.set_faults(error_rate=1.0)
    order = ("o2", "4200000000202501010000000002")
    for op in (split(order, receiver("merchant", MERCHANT, 1)), SplitQuery(*order, "sp1")):
        outcome = await env.outcome(op)
        assert isinstance(outcome, RailError) and not outcome.definitive
    await env.set_faults()
    assert (await ledger(env))["splits"] == {}


async def test_names_are_checked_against_the_receiver(env: RailEnv) -> None:
    await env.set_payee_name(USER, "张三")
    order = await paid(env)
    wrong = await refused(env, split(order, receiver("user", USER, 100, name="李四")))
    assert (wrong.code, wrong.definitive) == ("INVALID_REQUEST", True)
    right = await env.call(split(order, receiver("user", USER, 100, name="张三")))
    assert right.status is RailStatus.PROCESSING


async def test_a_return_takes_money_back_from_a_merchant_receiver(env: RailEnv) -> None:
    order = await paid(env)
    op = split(order, receiver("merchant", MERCHANT, 1000), receiver("user", USER, 100))
    early = SplitReturn(order[0], op.rail_split_no, "rt" + op.rail_split_no, MERCHANT, 1, "退")
    await env.call(op)
    assert (await refused(env, early)).definitive  # nothing was shared yet
    await settled(env, op)
    back = SplitReturn(order[0], op.rail_split_no, "rt1" + op.rail_split_no, MERCHANT, 400,
                       "用户退款")
    first, again = await env.call(back), await env.call(back)
    assert first.status is RailStatus.SUCCEEDED and first.amount == 400
    assert again.rail_reference == first.rail_reference
    changed = replace(back, description="其他")
    assert (await refused(env, changed)).definitive
    too_much = SplitReturn(order[0], op.rail_split_no, "rt2" + op.rail_split_no, MERCHANT, 601,
                           "r")
    assert (await refused(env, too_much)).code == "INVALID_REQUEST"
    user = SplitReturn(order[0], op.rail_split_no, "rt3" + op.rail_split_no, USER, 1, "r")
    assert (await refused(env, user)).definitive  # only merchant receivers give back
    row = (await ledger(env))["splits"][op.rail_split_no]
    assert row["returned"] == 400 and row["receivers"][0]["returned"] == 400


async def test_partner_splits_are_kept_per_sub_merchant(
        keys: tuple[Path, WeChatPayCredentials]) -> None:
    def partner(config: AdapterConfig) -> WeChatPayAdapter:
        return create_adapter(replace(config, options={"sub_mchid": SUB}))

    async with running(replace(KIT, create_adapter=partner), *keys, SETTINGS) as env:
        order = await paid(env)
        op = split(order, receiver("merchant", MERCHANT, 2000))
        assert (await env.call(op)).status is RailStatus.PROCESSING
        assert (await settled(env, op)).status is RailStatus.SUCCEEDED
        splits = (await ledger(env))["splits"]
        assert splits[f"{SUB}/{op.rail_split_no}"]["order"] == f"{SUB}/{order[0]}"


async def test_the_official_sdk_splits_queries_and_returns(
        env: RailEnv, keys: tuple[Path, WeChatPayCredentials]) -> None:
    order = await paid(env)
    text = {name: (keys[0] / name).read_text().strip() for name in (
        "mchid.txt", "appid.txt", "apiv3_key.txt", "merchant_private_key.pem",
        "merchant_cert_serial.txt", "platform_public_key.pem", "platform_public_key_id.txt")}
    sdk = wechatpayv3.WeChatPay(
        wechatpay_type=wechatpayv3.WeChatPayType.NATIVE, mchid=text["mchid.txt"],
        private_key=text["merchant_private_key.pem"],
        cert_serial_no=text["merchant_cert_serial.txt"], appid=text["appid.txt"],
        apiv3_key=text["apiv3_key.txt"], public_key=text["platform_public_key.pem"],
        public_key_id=text["platform_public_key_id.txt"], timeout=(5, 10))
    sdk._core._gate_way = env.sim_url  # the SDK has no host option

    def run() -> list[tuple[int, Any]]:
        made = sdk.profitsharing_order(
            transaction_id=order[1], out_order_no="P20250101sdk", unfreeze_unsplit=False,
            receivers=[{"type": "MERCHANT_ID", "account": MERCHANT, "amount": 888,
                        "description": "分给商户"},
                       {"type": "PERSONAL_OPENID", "account": USER, "amount": 100,
                        "description": "分给个人", "name": "张三"}])
        return [made, sdk.profitsharing_order_query(order[1], "P20250101sdk")]

    (code, made), (query_code, queried) = await asyncio.to_thread(run)
    assert (code, json.loads(made)["state"]) == (200, "PROCESSING")
    assert (query_code, json.loads(queried)["out_order_no"]) == (200, "P20250101sdk")
    await settled(env, Split(order[0], order[1], "P20250101sdk", ()))
    code, answer = await asyncio.to_thread(
        sdk.profitsharing_return, out_return_no="R20250101sdk", return_mchid=MERCHANT,
        amount=88, description="用户退款", out_order_no="P20250101sdk")
    assert (code, json.loads(answer)["result"]) == (200, "SUCCESS")
    code, answer = await asyncio.to_thread(
        sdk.profitsharing_return_query, "P20250101sdk", "R20250101sdk")
    assert (code, json.loads(answer)["amount"]) == (200, 88)
