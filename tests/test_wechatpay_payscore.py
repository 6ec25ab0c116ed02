"""WeChat Pay Score as pre-authorisation: the adapter's bodies and refusals, and the
simulator driven through the core's RailClient (as the conformance suite drives it):
the credit rule, confirmation, completion (the collection), cancellation, notifications,
plus the official SDK."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import wechatpayv3

from adapters.base import (
    ActionType,
    AdapterConfig,
    HttpRequest,
    NotificationKind,
    Query,
    RailError,
    RailResult,
    RailStatus,
    RefundQuery,
)
from adapters.commerce_ops import AuthorizationQuery, Authorize, Capture, Release
from adapters.conformance import KITS, EnvSettings, RailEnv, running
from adapters.wechatpay import payscore, protocol
from adapters.wechatpay.adapter import PartnerIds, WeChatPayAdapter, create_adapter
from adapters.wechatpay.protocol import WeChatPayCredentials

SETTINGS = EnvSettings(time_scale=0.02, hang_seconds=0.5, rail_timeout=1.0, wait_timeout=5.0)
KIT = next(kit for kit in KITS if kit.name == "wechatpay")
HIGH = "oUpF8uMuAJO_M2pxb1Q9zNjWeS61"  # scores 700
LOW = "oUpF8uMuAJO_M2pxb1Q9zNjWeS63"  # ends in 3: scores 500


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, WeChatPayCredentials]:
    path = tmp_path_factory.mktemp("wxpayscore") / "keys"
    return path, protocol.load_or_create_bundle(path)


@pytest.fixture
async def env(keys: tuple[Path, WeChatPayCredentials]) -> AsyncIterator[RailEnv]:
    async with running(KIT, keys[0], keys[1], SETTINGS) as rail:
        yield rail


def authorize(env: RailEnv | None = None, *, openid: str = HIGH, amount: int = 5000,
              min_score: int | None = 550, scene: str = "mini_program") -> Authorize:
    url = env.receiver.url if env else "https://router.example/v1/notify/wechatpay"
    return Authorize("au" + uuid.uuid4().hex[:22], amount, "CNY", scene, "充电宝租借押金服务",
                     {"openid": openid}, url, min_score=min_score)


def capture(op: Authorize, amount: int, rail_order_no: str | None = None) -> Capture:
    return Capture(op.rail_auth_no, "", rail_order_no or "cp" + uuid.uuid4().hex[:22], amount,
                   "CNY", "租借费用")


def release(op: Authorize) -> Release:
    return Release(op.rail_auth_no, "", "rl" + op.rail_auth_no, op.amount, "用户归还")


async def confirm(env: RailEnv, op: Authorize, action: str = "confirm") -> int:
    async with env.session.post(f"{env.sim_url}/sim/authorizations/{op.rail_auth_no}/"
                                f"{action}") as resp:
        return resp.status


async def hold(env: RailEnv, row: str) -> dict[str, Any] | None:
    async with env.session.get(f"{env.sim_url}/sim/ledger") as resp:
        body: dict[str, Any] = await resp.json()
    found: dict[str, Any] | None = body["authorizations"].get(row)
    return found


async def refused(env: RailEnv, op: Authorize | Capture | Release) -> RailError:
    outcome = await env.outcome(op)
    assert isinstance(outcome, RailError), outcome
    return outcome


async def confirmed(env: RailEnv, op: Authorize) -> RailResult:
    await env.call(op)
    assert await confirm(env, op) == 200
    return await env.call(AuthorizationQuery(op.rail_auth_no))


# --------------------------------------------------------------------------- the adapter
def test_an_authorisation_is_a_service_order_the_payer_confirms(
        keys: tuple[Path, WeChatPayCredentials]) -> None:
    creds = keys[1]
    adapter = create_adapter(AdapterConfig("wechatpay", "http://127.0.0.1:9", keys[0],
                                           {"payscore_service_id": "2002000000000558"}))
    op = authorize()
    request = adapter.build(op)
    assert isinstance(request, HttpRequest) and request.url.endswith("/v3/payscore/serviceorder")
    assert json.loads(request.body) == {
        "out_order_no": op.rail_auth_no, "appid": creds.appid,
        "service_id": "2002000000000558", "service_introduction": "充电宝租借押金服务",
        "post_payments": [{"name": "充电宝租借押金服务", "amount": 5000, "count": 1}],
        "time_range": {"start_time": "OnAccept"},
        "risk_fund": {"name": "DEPOSIT", "amount": 5000},
        "notify_url": op.notify_url, "openid": HIGH, "need_user_confirm": True,
    }
    query = adapter.build(AuthorizationQuery(op.rail_auth_no))
    assert isinstance(query, HttpRequest) and query.url.endswith(
        f"?service_id=2002000000000558&appid={creds.appid}&out_order_no={op.rail_auth_no}")
    done = adapter.build(capture(op, 3000, "cp0001"))
    assert isinstance(done, HttpRequest)
    assert done.url.endswith(f"/v3/payscore/serviceorder/{op.rail_auth_no}/complete")
    assert json.loads(done.body) == {
        "appid": creds.appid, "service_id": "2002000000000558",
        "post_payments": [{"name": "租借费用", "amount": 3000, "count": 1}],
        "total_amount": 3000, "out_trade_no": "cp0001"}
    cancel = adapter.build(release(op))
    assert isinstance(cancel, HttpRequest) and cancel.url.endswith("/cancel")
    assert json.loads(cancel.body)["reason"] == "用户归还"


@pytest.mark.parametrize(("op", "param"), [
    (authorize(min_score=600), "min_score"),  # above the service's bar (550)
    (authorize(scene="quickpay"), "scene"),
    (replace(authorize(), currency="USD"), "currency"),
    (replace(authorize(), notify_url=""), "notify_url"),
    (replace(authorize(), rail_auth_no="au|1"), None),
    (replace(capture(authorize(), 100), final=False), "final"),
    (capture(authorize(), 0), "amount"),
])
def test_what_pay_score_cannot_take_is_refused_before_sending(
        keys: tuple[Path, WeChatPayCredentials], op: Authorize | Capture,
        param: str | None) -> None:
    adapter = WeChatPayAdapter("wechatpay", "http://127.0.0.1:9", keys[1])
    with pytest.raises(RailError) as info:
        adapter.build(op)
    assert (info.value.code, info.value.definitive, info.value.param) == (
        "INVALID_REQUEST", True, param)


def test_partner_rails_and_bad_options_refuse_pay_score(
        keys: tuple[Path, WeChatPayCredentials]) -> None:
    creds = keys[1]
    ids = PartnerIds(creds.mchid, creds.appid, "1900000109")
    partner = WeChatPayAdapter("wechatpay", "http://127.0.0.1:9", creds, partner=ids)
    with pytest.raises(RailError) as info:
        partner.build(authorize())
    assert info.value.definitive and "partner" in info.value.message
    for options in ({"payscore_service_id": "abc"}, {"payscore_min_score": "600"}):
        with pytest.raises(ValueError, match="payscore"):
            create_adapter(AdapterConfig("wechatpay", "http://127.0.0.1:9", keys[0], options))
    bar = create_adapter(AdapterConfig("wechatpay", "http://127.0.0.1:9", keys[0],
                                       {"payscore_min_score": 650}))
    assert isinstance(bar.build(authorize(min_score=650)), HttpRequest)


# --------------------------------------------------------------------------- the simulator
async def test_confirm_capture_and_collection(env: RailEnv) -> None:
    op = authorize(env)
    created = await env.call(op)
    assert (created.status, created.deposit_free, created.amount) == (
        RailStatus.REQUIRES_ACTION, True, 5000)
    assert created.action is not None and created.action.type is ActionType.SDK_PARAMS
    assert created.action.data["package"] and created.action.data["mch_id"]
    assert (await env.call(AuthorizationQuery(op.rail_auth_no))).status is (
        RailStatus.REQUIRES_ACTION)
    assert await hold(env, op.rail_auth_no) == {
        "status": "CREATED", "amount": 5000, "frozen": 0, "captured": 0, "released": 0,
        "score": 700, "deposit_free": True}
    assert await confirm(env, op) == 200
    _, _, note = await env.notification(lambda n: n.rail_order_no == op.rail_auth_no, "confirm")
    assert (note.kind, note.result.status, note.result.deposit_free) == (
        NotificationKind.AUTHORIZATION, RailStatus.SUCCEEDED, True)
    held = await env.call(AuthorizationQuery(op.rail_auth_no))
    assert (held.status, held.amount, held.rail_reference) == (
        RailStatus.SUCCEEDED, 5000, created.rail_reference)
    done = capture(op, 3000)
    paid = await env.call(done)
    assert (paid.status, paid.amount) == (RailStatus.SUCCEEDED, 3000) and paid.rail_reference
    _, _, note = await env.notification(lambda n: n.rail_order_no == op.rail_auth_no, "paid")
    assert note.result.status is RailStatus.SUCCEEDED
    assert await hold(env, op.rail_auth_no) == {
        "status": "DONE", "amount": 5000, "frozen": 0, "captured": 3000, "released": 2000,
        "score": 700, "deposit_free": True}
    # The collection is a payment of its own, under the capture's number: query, refund.
    payment = await env.call(Query(done.rail_order_no))
    assert (payment.status, payment.rail_reference) == (RailStatus.SUCCEEDED, paid.rail_reference)
    refund = env.refund(done.rail_order_no, 1000, 3000)
    assert (await env.call(refund)).status is RailStatus.PROCESSING
    query = RefundQuery(done.rail_order_no, refund.rail_refund_no)
    settled = await env.until(query, lambda r: r.status is not RailStatus.PROCESSING, "refund")
    assert settled.status is RailStatus.SUCCEEDED
    assert (await env.ledger_order(done.rail_order_no)) == {
        "status": "REFUND", "charged": 3000, "charges": 1, "refunded": 1000}


async def test_a_capture_number_collects_once(env: RailEnv) -> None:
    op = authorize(env)
    await confirmed(env, op)
    done = capture(op, 2000)
    results = await asyncio.gather(*(env.call(done) for _ in range(8)))
    assert len({r.rail_reference for r in results}) == 1
    assert all(r.status is RailStatus.SUCCEEDED for r in results)
    other = await refused(env, capture(op, 2000))  # another number: the order is done
    assert (other.code, other.definitive) == ("INVALID_REQUEST", True)
    row = await hold(env, op.rail_auth_no)
    assert row is not None and row["captured"] == 2000
    assert (await env.ledger_order(done.rail_order_no) or {})["charges"] == 1


async def test_what_cannot_be_captured_is_refused(env: RailEnv) -> None:
    op = authorize(env)
    await env.call(op)
    early = await refused(env, capture(op, 100))  # not confirmed yet
    assert (early.code, early.definitive) == ("INVALID_REQUEST", True)
    assert await confirm(env, op) == 200
    over = await refused(env, capture(op, 5001))  # above the risk fund
    assert (over.code, over.definitive) == ("INVALID_REQUEST", True)
    missing = await refused(env, capture(authorize(env), 100))
    assert (missing.code, missing.definitive) == ("ORDER_NOT_EXIST", True)
    row = await hold(env, op.rail_auth_no)
    assert row is not None and (row["status"], row["captured"]) == ("DOING", 0)


async def test_a_low_score_is_refused_and_nothing_is_held(env: RailEnv) -> None:
    op = authorize(env, openid=LOW)
    err = await refused(env, op)
    assert (err.code, err.definitive) == ("RULELIMIT", True)
    assert await hold(env, op.rail_auth_no) is None
    unsent = await env.call(AuthorizationQuery(op.rail_auth_no))
    assert (unsent.status, unsent.failure_code) == (RailStatus.NOT_FOUND, "ORDER_NOT_EXIST")


async def test_release_and_decline_close_the_hold(env: RailEnv) -> None:
    op = authorize(env)
    await confirmed(env, op)
    for _ in range(2):  # a cancelled order answers the same again
        closed = await env.call(release(op))
        assert (closed.status, closed.failure_code) == (RailStatus.CLOSED, "REVOKED")
    assert (await env.call(AuthorizationQuery(op.rail_auth_no))).status is RailStatus.CLOSED
    assert (await refused(env, capture(op, 100))).definitive
    row = await hold(env, op.rail_auth_no)
    assert row is not None and (row["status"], row["released"], row["captured"]) == (
        "REVOKED", 5000, 0)
    declined = authorize(env)
    await env.call(declined)
    assert await confirm(env, declined, "decline") == 200
    assert await confirm(env, declined) == 409
    result = await env.call(AuthorizationQuery(declined.rail_auth_no))
    assert (result.status, result.failure_code) == (RailStatus.CLOSED, "REVOKED")
    assert (await hold(env, declined.rail_auth_no) or {})["released"] == 0  # never held


async def test_an_order_number_is_one_order(env: RailEnv) -> None:
    op = authorize(env)
    first, again = await env.call(op), await env.call(op)
    assert first.rail_reference == again.rail_reference
    assert again.action is not None  # the same package
    other = await refused(env, replace(op, amount=6000))
    assert (other.code, other.definitive) == ("INVALID_REQUEST", True)


async def test_system_errors_leave_the_outcome_unknown(env: RailEnv) -> None:
    op = authorize(env)
    await env.set_faults(error_rate=1.0)
    for call in (op, AuthorizationQuery(op.rail_auth_no), capture(op, 1), release(op)):
        outcome = await env.outcome(call)
        assert isinstance(outcome, RailError) and not outcome.definitive, call
    await env.set_faults()
    assert await hold(env, op.rail_auth_no) is None


async def test_the_official_sdk_creates_queries_completes_and_cancels(
        env: RailEnv, keys: tuple[Path, WeChatPayCredentials]) -> None:
    text = {name: (keys[0] / name).read_text().strip() for name in (
        "mchid.txt", "appid.txt", "apiv3_key.txt", "merchant_private_key.pem",
        "merchant_cert_serial.txt", "platform_public_key.pem", "platform_public_key_id.txt")}
    sdk = wechatpayv3.WeChatPay(
        wechatpay_type=wechatpayv3.WeChatPayType.MINIPROG, mchid=text["mchid.txt"],
        private_key=text["merchant_private_key.pem"],
        cert_serial_no=text["merchant_cert_serial.txt"], appid=text["appid.txt"],
        apiv3_key=text["apiv3_key.txt"], public_key=text["platform_public_key.pem"],
        public_key_id=text["platform_public_key_id.txt"], notify_url=env.receiver.url,
        timeout=(5, 10))
    sdk._core._gate_way = env.sim_url  # the SDK has no host option
    service = payscore.SANDBOX_SERVICE_ID

    def create(no: str) -> tuple[int, Any]:
        # Confirm mode without an openid: the payer is known once they confirm.
        return sdk.payscore_create(  # type: ignore[no-any-return]
            out_order_no=no, service_id=service, service_introduction="某某酒店",
            time_range={"start_time": "OnAccept"}, risk_fund={"name": "DEPOSIT",
                                                              "amount": 10000})

    code, made = await asyncio.to_thread(create, "sdk0001")
    assert (code, json.loads(made)["state"]) == (200, "CREATED") and json.loads(made)["package"]
    async with env.session.post(f"{env.sim_url}/sim/authorizations/sdk0001/confirm",
                                params={"openid": HIGH}) as resp:
        assert resp.status == 200
    headers, body, _ = await env.notification(lambda n: n.rail_order_no == "sdk0001", "confirm")
    callback = sdk.callback(headers, body)
    assert callback["event_type"] == "PAYSCORE.USER_CONFIRM"
    assert callback["resource"]["openid"] == HIGH
    code, queried = await asyncio.to_thread(sdk.payscore_query, service, "sdk0001")
    assert (code, json.loads(queried)["state_description"]) == (200, "USER_CONFIRM")
    code, done = await asyncio.to_thread(
        sdk.payscore_complete, "sdk0001", service,
        [{"name": "房费", "amount": 8000, "count": 1}], 8000)
    collection = json.loads(done)["collection"]
    assert (code, collection["state"], collection["paid_amount"]) == (200, "USER_PAID", 8000)
    code, _ = await asyncio.to_thread(create, "sdk0002")
    code, cancelled = await asyncio.to_thread(sdk.payscore_cancel, "sdk0002", service, "用户取消")
    assert (code, json.loads(cancelled)["out_order_no"]) == (200, "sdk0002")
    assert (await hold(env, "sdk0002") or {})["status"] == "REVOKED"
