"""Pre-authorisation (API.md, "Pre-authorisation"): holds and deposit-free credit through
the gateway on the wallets' simulators, the one capture into a payment (under real
concurrency), void, expiry exactly once, and unknown outcomes settled by the sweeper.
Every test checks the simulator's ledger."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.asserts import assert_error, payment_count, rail_order
from tests.conftest import Sim
from tests.helpers import Client, Gateway, eventually
from tests.receiver import Receiver, webhook_receiver

pytestmark = pytest.mark.both_topologies

HOLD = 5000
HIGH_OPENID = "oUpF8uMuAJO_M2pxb1Q9zNjWeS61"  # Pay Score 700 (SANDBOX.md)
LOW_OPENID = "oUpF8uMuAJO_M2pxb1Q9zNjWeS63"  # 500: under the service's bar


@pytest.fixture
def sims(wechat_sim: Sim, alipay_sim: Sim) -> dict[str, Sim]:
    return {"wechatpay": wechat_sim, "alipay": alipay_sim}


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with webhook_receiver() as r:
        yield r


async def merchant(gw: Gateway, receiver: Receiver | None = None) -> Client:
    patch = {"webhook_url": receiver.url()} if receiver else {}
    client, _ = await gw.merchant(**patch)
    return client


def wechat_body(no: str, *, openid: str = HIGH_OPENID, amount: int = HOLD,
                **extra: Any) -> dict[str, Any]:
    return {"out_auth_no": no, "amount": amount, "currency": "CNY", "method": "wechatpay",
            "scene": "mini_program", "payer": {"openid": openid},
            "description": "Power bank rental", "deposit_free": {"min_score": 550}, **extra}


def alipay_body(no: str, *, code: str = "287634567890123451", amount: int = HOLD,
                **extra: Any) -> dict[str, Any]:
    """An in-person Alipay freeze: the payer behind a code ending in 3 scores 500."""
    return {"out_auth_no": no, "amount": amount, "currency": "CNY", "method": "alipay",
            "scene": "quickpay", "payer": {"auth_code": code}, "description": "Bike rental",
            "deposit_free": {"min_score": 550}, **extra}


def rail_auth_no(auth: dict[str, Any]) -> str:
    """The rail-side number: the id without its underscore (docs/design.md)."""
    number: str = auth["id"].replace("_", "")
    return number


async def hold_row(sim: Sim, auth: dict[str, Any]) -> dict[str, Any]:
    rows: dict[str, Any] = (await sim.ledger()).get("authorizations", {})
    assert rail_auth_no(auth) in rows, rows
    row: dict[str, Any] = rows[rail_auth_no(auth)]
    return row


async def status_of(client: Client, auth_id: str, status: str,
                    within: float = 10.0) -> dict[str, Any]:
    """The authorization once it reached `status` (through the public API)."""
    seen: dict[str, Any] = {}

    async def reached() -> bool:
        got = await client.get(f"/v1/authorizations/{auth_id}")
        assert got.status == 200, got.body
        seen.clear()
        seen.update(got.body)
        return bool(got.body["status"] == status)

    await eventually(reached, timeout=within)
    return seen


async def authorized(client: Client, body: dict[str, Any]) -> dict[str, Any]:
    """Created, then confirmed by the simulated payer (sandbox control)."""
    created = await client.post("/v1/authorizations", body)
    assert created.status == 201, created.body
    assert created.body["status"] == "requires_action" and created.body["action"], created.body
    confirmed = await client.post(f"/v1/sandbox/authorizations/{created.body['id']}/confirm")
    assert confirmed.status == 200, confirmed.body
    assert confirmed.body["status"] == "authorized", confirmed.body
    result: dict[str, Any] = confirmed.body
    return result


async def held(client: Client, rail: str, no: str, **extra: Any) -> dict[str, Any]:
    """An authorized hold on `rail` (Alipay: a deposit frozen in person, at once)."""
    if rail == "wechatpay":
        return await authorized(client, wechat_body(no, **extra))
    created = await client.post("/v1/authorizations",
                                alipay_body(no, code="287634567890123453", **extra))
    assert created.status == 201 and created.body["status"] == "authorized", created.body
    result: dict[str, Any] = created.body
    return result


# --------------------------------------------------------------------------- holds
async def test_deposit_free_for_a_high_score_payer(wallet_gateway: Gateway, wechat_sim: Sim,
                                                   receiver: Receiver) -> None:
    client = await merchant(wallet_gateway, receiver)
    auth = await authorized(client, wechat_body("au-free"))
    assert auth["deposit_free"] is True and auth["captured_amount"] == 0
    assert auth["amount"] == HOLD and auth["object"] == "authorization"
    assert auth["id"].startswith("auth_")
    row = await hold_row(wechat_sim, auth)
    assert row["frozen"] == 0 and row["captured"] == 0, row
    event = (await receiver.next_of("authorization.authorized")).event
    assert event["data"]["id"] == auth["id"] and event["data"]["deposit_free"] is True

    again = await client.post("/v1/authorizations", wechat_body("au-free"))
    assert again.status == 200 and again.body["id"] == auth["id"], again.body
    other = await client.post("/v1/authorizations", wechat_body("au-free", amount=HOLD + 1))
    assert_error(other, 409, "out_auth_no_used", param="out_auth_no")


async def test_a_low_score_payer_gets_no_credit_promise(wallet_gateway: Gateway,
                                                        wechat_sim: Sim) -> None:
    client = await merchant(wallet_gateway)
    refused = await client.post("/v1/authorizations",
                                wechat_body("au-low", openid=LOW_OPENID))
    assert refused.status == 201, refused.body
    assert refused.body["status"] == "failed" and refused.body["failure"]["code"], refused.body
    assert rail_auth_no(refused.body) not in (await wechat_sim.ledger()).get(
        "authorizations", {})


async def test_alipay_deposit_for_a_low_score_payer(wallet_gateway: Gateway,
                                                    alipay_sim: Sim) -> None:
    client = await merchant(wallet_gateway)
    created = await client.post("/v1/authorizations",
                                alipay_body("au-ali-low", code="287634567890123453"))
    assert created.status == 201, created.body
    auth = created.body
    assert auth["status"] == "authorized" and auth["deposit_free"] is False, auth
    row = await hold_row(alipay_sim, auth)
    assert row["frozen"] == HOLD and row["captured"] == 0, row
    captured = await client.post(f"/v1/authorizations/{auth['id']}/capture",
                                 {"amount": 3000, "out_trade_no": "au-ali-low-pay"})
    assert captured.status == 201 and captured.body["status"] == "succeeded", captured.body
    row = await hold_row(alipay_sim, auth)
    assert (row["captured"], row["released"], row["rest"]) == (3000, 2000, 0), row
    order = (await alipay_sim.ledger())["orders"][rail_order(captured.body)]
    assert order["charged"] == 3000 and order["charges"] == 1, order


async def test_alipay_credit_and_void(wallet_gateway: Gateway, alipay_sim: Sim) -> None:
    client = await merchant(wallet_gateway)
    created = await client.post("/v1/authorizations", alipay_body("au-ali-high"))
    assert created.status == 201, created.body
    auth = created.body
    assert auth["status"] == "authorized" and auth["deposit_free"] is True, auth
    assert (await hold_row(alipay_sim, auth))["frozen"] == 0
    voided = await client.post(f"/v1/authorizations/{auth['id']}/void")
    assert voided.status == 200 and voided.body["status"] == "voided", voided.body
    row = await hold_row(alipay_sim, auth)
    assert (row["status"], row["captured"], row["released"]) == ("CLOSED", 0, HOLD), row


async def test_alipay_online_hold_waits_for_the_payer(wallet_gateway: Gateway,
                                                      alipay_sim: Sim) -> None:
    client = await merchant(wallet_gateway)
    body = {**alipay_body("au-ali-app"), "scene": "app",
            "payer": {"buyer_id": "2088102146225133"}}
    created = await client.post("/v1/authorizations", body)
    assert created.status == 201, created.body
    assert created.body["status"] == "requires_action", created.body
    assert created.body["action"]["order_string"]
    confirmed = await client.post(f"/v1/sandbox/authorizations/{created.body['id']}/confirm")
    assert confirmed.status == 200, confirmed.body
    assert confirmed.body["status"] == "authorized", confirmed.body
    assert confirmed.body["deposit_free"] is False  # a user id ending in 3 scores 500
    assert (await hold_row(alipay_sim, confirmed.body))["frozen"] == HOLD


async def test_alipay_payer_confirming_in_person(wallet_gateway: Gateway,
                                                 alipay_sim: Sim) -> None:
    """A payer code ending in 6: the payer confirms on the phone (10003) until told to."""
    client = await merchant(wallet_gateway)
    created = await client.post("/v1/authorizations",
                                alipay_body("au-ali-6", code="287634567890123456"))
    assert created.status == 201 and created.body["status"] == "processing", created.body
    await wallet_gateway.services.sweeper.sweep_once()
    confirmed = await client.post(f"/v1/sandbox/authorizations/{created.body['id']}/confirm")
    assert confirmed.status == 200, confirmed.body
    assert confirmed.body["status"] == "authorized", confirmed.body
    assert (await hold_row(alipay_sim, confirmed.body))["frozen"] == 0  # scores 700


async def test_bad_input_writes_nothing(wallet_gateway: Gateway) -> None:
    client = await merchant(wallet_gateway)
    for change, param in (({"method": "bank"}, "method"), ({"amount": 0}, "amount"),
                          ({"currency": "XYZ"}, "currency"), ({"scene": "native"}, "scene"),
                          ({"deposit_free": {"min_score": 900}}, "deposit_free.min_score")):
        bad = await client.post("/v1/authorizations", {**wechat_body("au-bad"), **change})
        assert_error(bad, 422, "validation_error", param=param)
    good = await client.post("/v1/authorizations", wechat_body("au-bad"))
    assert good.status == 201, good.body  # nothing was written under au-bad before
    missing = await client.get("/v1/authorizations/auth_00nope")
    assert_error(missing, 404, "not_found")


# --------------------------------------------------------------------------- capture
async def test_capture_within_the_hold(wallet_gateway: Gateway, wechat_sim: Sim,
                                       receiver: Receiver) -> None:
    client = await merchant(wallet_gateway, receiver)
    auth = await authorized(client, wechat_body("au-cap"))
    captured = await client.post(f"/v1/authorizations/{auth['id']}/capture",
                                 {"amount": 3000, "out_trade_no": "au-cap-pay"})
    assert captured.status == 201, captured.body
    payment = captured.body
    assert payment["object"] == "payment" and payment["status"] == "succeeded", payment
    assert payment["amount"] == 3000 and payment["out_trade_no"] == "au-cap-pay"
    assert payment["metadata"] == {"authorization": auth["id"]}
    shown = await client.get(f"/v1/authorizations/{auth['id']}")
    assert shown.body["status"] == "captured" and shown.body["captured_amount"] == 3000
    assert shown.body["payment_id"] == payment["id"]
    row = await hold_row(wechat_sim, auth)
    assert row["captured"] == 3000, row
    order = (await wechat_sim.ledger())["orders"][rail_order(payment)]
    assert order["charged"] == 3000 and order["charges"] == 1, order
    event = (await receiver.next_of("authorization.captured")).event
    assert event["data"]["captured_amount"] == 3000

    # The capture is a normal payment: it can be refunded.
    refund = await client.post(f"/v1/payments/{payment['id']}/refunds",
                               {"amount": 1000, "out_refund_no": "au-cap-r1"})
    assert refund.status == 201, refund.body

    async def refunded() -> bool:
        got = await client.get(f"/v1/refunds/{refund.body['id']}")
        return bool(got.body["status"] == "succeeded")

    await eventually(refunded)

    second = await client.post(f"/v1/authorizations/{auth['id']}/capture",
                               {"amount": 1000, "out_trade_no": "au-cap-pay2"})
    assert_error(second, 409, "invalid_state")
    retried = await client.post(f"/v1/authorizations/{auth['id']}/capture",
                                {"amount": 3000, "out_trade_no": "au-cap-pay"})
    assert retried.status == 200 and retried.body["id"] == payment["id"], retried.body


async def test_over_capture_is_refused_and_writes_nothing(wallet_gateway: Gateway,
                                                         wechat_sim: Sim) -> None:
    client = await merchant(wallet_gateway)
    auth = await authorized(client, wechat_body("au-over"))
    over = await client.post(f"/v1/authorizations/{auth['id']}/capture",
                             {"amount": HOLD + 1, "out_trade_no": "au-over-pay"})
    assert_error(over, 422, "validation_error", param="amount")
    shown = await client.get(f"/v1/authorizations/{auth['id']}")
    assert shown.body == auth  # not even its version moved
    assert await payment_count(client, "au-over-pay") == 0
    assert (await hold_row(wechat_sim, auth))["captured"] == 0
    whole = await client.post(f"/v1/authorizations/{auth['id']}/capture",
                              {"amount": HOLD, "out_trade_no": "au-over-pay"})
    assert whole.status == 201 and whole.body["status"] == "succeeded", whole.body


async def test_concurrent_captures_capture_once(wallet_gateway: Gateway,
                                                wechat_sim: Sim) -> None:
    client = await merchant(wallet_gateway)
    auth = await authorized(client, wechat_body("au-race"))
    answers = await asyncio.gather(*(
        client.post(f"/v1/authorizations/{auth['id']}/capture",
                    {"amount": 1000 + i, "out_trade_no": f"au-race-{i}"}) for i in range(12)))
    won = [a for a in answers if a.status == 201]
    assert len(won) == 1, [a.body for a in answers]
    for lost in (a for a in answers if a.status != 201):
        assert_error(lost, 409, "invalid_state")
    ledger = await wechat_sim.ledger()
    assert ledger["authorizations"][rail_auth_no(auth)]["captured"] == won[0].body["amount"]
    charged = [o for no, o in ledger["orders"].items() if o["charged"]]
    assert len(charged) == 1 and charged[0]["charges"] == 1, charged
    for i in range(12):
        expected = 1 if won[0].body["out_trade_no"] == f"au-race-{i}" else 0
        assert await payment_count(client, f"au-race-{i}") == expected


# --------------------------------------------------------------------------- release
async def test_void_releases(wallet_gateway: Gateway, wechat_sim: Sim,
                             receiver: Receiver) -> None:
    client = await merchant(wallet_gateway, receiver)
    auth = await authorized(client, wechat_body("au-void"))
    voided = await client.post(f"/v1/authorizations/{auth['id']}/void")
    assert voided.status == 200 and voided.body["status"] == "voided", voided.body
    row = await hold_row(wechat_sim, auth)
    assert row["captured"] == 0 and row["released"] == HOLD, row  # the whole promise
    assert (await receiver.next_of("authorization.voided")).event["data"]["id"] == auth["id"]
    again = await client.post(f"/v1/authorizations/{auth['id']}/void")
    assert again.status == 200 and again.body["status"] == "voided"
    late = await client.post(f"/v1/authorizations/{auth['id']}/capture",
                             {"amount": 100, "out_trade_no": "au-void-pay"})
    assert_error(late, 409, "invalid_state")


@pytest.mark.parametrize("rail", ["wechatpay", "alipay"])
async def test_expiry_releases_exactly_once(wallet_gateway: Gateway, sims: dict[str, Sim],
                                            receiver: Receiver, rail: str) -> None:
    client = await merchant(wallet_gateway, receiver)
    auth = await held(client, rail, "au-exp", expires_in_s=2)
    expired = await status_of(client, auth["id"], "expired")
    assert expired["captured_amount"] == 0
    first = await receiver.next_of("authorization.expired")
    assert first.event["data"]["id"] == auth["id"]
    late = await client.post(f"/v1/authorizations/{auth['id']}/capture",
                             {"amount": 100, "out_trade_no": "au-exp-pay"})
    assert_error(late, 409, "invalid_state")
    # More sweeps pass; nothing is released or sent twice.
    for _ in range(3):
        await wallet_gateway.services.sweeper.sweep_once()
    with pytest.raises(AssertionError):
        await receiver.next_of("authorization.expired", within=1.0)
    row = await hold_row(sims[rail], auth)
    assert row["captured"] == 0 and row["released"] == HOLD, row


# --------------------------------------------------------------------------- unknown
async def test_unknown_hold_is_settled_by_the_sweeper(wallet_gateway: Gateway,
                                                      wechat_sim: Sim) -> None:
    client = await merchant(wallet_gateway)
    await wechat_sim.faults(timeout_rate=1.0)
    created = await client.post("/v1/authorizations", wechat_body("au-lost"))
    assert created.status == 201 and created.body["status"] == "processing", created.body
    await wechat_sim.faults()
    waiting = await status_of(client, created.body["id"], "requires_action")
    assert waiting["action"]
    confirmed = await client.post(f"/v1/sandbox/authorizations/{created.body['id']}/confirm")
    assert confirmed.body["status"] == "authorized", confirmed.body


@pytest.mark.parametrize("rail", ["wechatpay", "alipay"])
async def test_unknown_capture_is_settled_by_the_sweeper(wallet_gateway: Gateway,
                                                         sims: dict[str, Sim],
                                                         rail: str) -> None:
    client = await merchant(wallet_gateway)
    auth = await held(client, rail, "au-lostcap")
    await sims[rail].faults(timeout_rate=1.0)
    captured = await client.post(f"/v1/authorizations/{auth['id']}/capture",
                                 {"amount": 2000, "out_trade_no": "au-lostcap-pay"})
    assert captured.status == 201 and captured.body["status"] == "processing", captured.body
    assert (await client.get(f"/v1/authorizations/{auth['id']}")).body["status"] == "capturing"
    await sims[rail].faults()
    done = await status_of(client, auth["id"], "captured")
    assert done["captured_amount"] == 2000
    payment = await client.get(f"/v1/payments/{captured.body['id']}")
    assert payment.body["status"] == "succeeded", payment.body
    ledger = await sims[rail].ledger()
    assert ledger["orders"][rail_order(payment.body)]["charges"] == 1
    assert ledger["authorizations"][rail_auth_no(auth)]["captured"] == 2000
