"""A reward's life after it is reserved: released when its payment fails or closes (or
the request that reserved it never wrote the payment), granted when it is paid (a
cashback by a payout to the payer), and clawed back by refunds, the rail refunding only
the payer's part (API.md: "A refund returns the campaign's share")."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest

from router.store import keys
from tests.asserts import assert_error
from tests.campaigns import (
    MovableClock,
    campaign_gateway,
    campaign_when,
    clock,
    new_campaign,
    pay,
    reward_of,
    start,
)
from tests.conftest import Sim
from tests.helpers import Client, Gateway, eventually
from tests.social import user

pytestmark = pytest.mark.both_topologies

__all__ = ["campaign_gateway", "clock"]  # fixtures

CODE = "134567890123456781"  # a payer code the rails take at once
DECLINED = "134567890123456782"  # one the instant rail declines


async def refund(client: Client, payment_id: str, amount: int, no: str) -> dict[str, Any]:
    """A refund, once it succeeded (a bank refund is answered `processing` first)."""
    made = await client.post(f"/v1/payments/{payment_id}/refunds",
                             {"amount": amount, "out_refund_no": no})
    assert made.status == 201, made.body
    body: dict[str, Any] = made.body

    async def succeeded() -> bool:
        got = await client.get(f"/v1/refunds/{body['id']}")
        body.update(got.body)
        assert got.body["status"] != "failed", got.body
        return bool(got.body["status"] == "succeeded")

    await eventually(succeeded)
    return body


async def test_a_failed_payment_releases_its_reward(campaign_gateway: Gateway) -> None:
    client, _ = await campaign_gateway.merchant()
    made = await new_campaign(client, limits={"first_n_payers": 1})
    failed = await pay(client, "f-1", {"auth_code": DECLINED, "openid": "o-f"},
                       scene="quickpay")
    assert failed["status"] == "failed"
    assert reward_of(failed) == {"campaign": made["id"], "kind": "discount", "amount": 100,
                                 "status": "released"}
    await campaign_when(client, made["id"], spent=0, payers_rewarded=0)
    # The released payer's place is free again: the first-N counts rewarded payers only.
    paid = await pay(client, "f-2", {"openid": "o-other"})
    assert reward_of(paid) is not None


async def test_a_closed_payment_releases_its_reward(campaign_gateway: Gateway,
                                                    bank_sim: Sim) -> None:
    client, _ = await campaign_gateway.merchant()
    made = await new_campaign(client, "cashback", limits={"budget": 100})
    open_order = await pay(client, "c-1", {"openid": "o-c"}, method="bank")
    assert open_order["status"] == "requires_action"
    assert reward_of(open_order) == {"campaign": made["id"], "kind": "cashback",
                                     "amount": 100, "status": "reserved"}
    await campaign_when(client, made["id"], spent=100, status="exhausted")
    closed = await client.post(f"/v1/payments/{open_order['id']}/close")
    assert closed.status == 200 and closed.body["status"] == "closed", closed.body
    assert reward_of(closed.body)["status"] == "released"  # type: ignore[index]
    await campaign_when(client, made["id"], spent=0, payers_rewarded=0, status="active")


async def test_a_discount_lowers_the_charge_and_refunds_claw_it_back(
        campaign_gateway: Gateway, bank_sim: Sim) -> None:
    client, _ = await campaign_gateway.merchant()
    made = await new_campaign(client, reward={"type": "fixed", "amount": 300, "max": 300})
    paid = await pay(client, "d-1", {"auth_code": CODE, "openid": "o-d"}, method="bank",
                     scene="quickpay")
    assert paid["status"] == "succeeded" and paid["amount"] == 1000
    assert paid["payer_amount"] == {"amount": 700, "currency": "CNY"}
    order = paid["attempts"][0]["rail_order_no"]
    assert (await bank_sim.ledger())["orders"][order]["charged"] == 700  # the rail's charge

    partial = await refund(client, paid["id"], 333, "d-r1")
    assert partial["amount"] == 333 and partial["payer_amount"]["amount"] == 233  # ⌊333·0.7⌋
    await campaign_when(client, made["id"], spent=300 - 99)  # ⌊333·0.3⌋ back to the budget
    rest = await refund(client, paid["id"], 667, "d-r2")
    assert rest["payer_amount"]["amount"] == 700 - 233  # the payer gets all it paid back
    assert (await bank_sim.ledger())["orders"][order]["refunded"] == 700
    await campaign_when(client, made["id"], spent=0)
    shown = await client.get(f"/v1/payments/{paid['id']}")
    assert shown.body["status"] == "refunded" and shown.body["refunded_amount"] == 1000
    assert reward_of(shown.body)["status"] == "clawed_back"  # type: ignore[index]
    over = await client.post(f"/v1/payments/{paid['id']}/refunds",
                             {"amount": 1, "out_refund_no": "d-r3"})
    assert_error(over, 422, "refund_exceeds_amount", "amount")


async def test_a_cashback_is_paid_out_and_deducted_pro_rata_from_refunds(
        campaign_gateway: Gateway) -> None:
    client, _ = await campaign_gateway.merchant()
    made = await new_campaign(client, "cashback",
                              reward={"type": "fixed", "amount": 200, "max": 200})
    paid = await pay(client, "cb-1", {"openid": "o-cashback"})
    assert paid["status"] == "succeeded" and "payer_amount" not in paid
    assert reward_of(paid) == {"campaign": made["id"], "kind": "cashback", "amount": 200,
                               "status": "granted"}
    payout_id = keys.child_id("po", made["id"], paid["id"])
    payout = await _payout_when(client, payout_id, "succeeded")
    assert payout["amount"] == 200 and payout["payee"] == {"openid": "o-cashback"}
    assert payout["campaign_id"] == made["id"] and payout["payment_id"] == paid["id"]

    half = await refund(client, paid["id"], 500, "cb-r1")
    assert half["payer_amount"]["amount"] == 500 - 100  # the payer keeps half the cashback
    await campaign_when(client, made["id"], spent=100)
    rest = await refund(client, paid["id"], 500, "cb-r2")
    assert rest["payer_amount"]["amount"] == 400
    await campaign_when(client, made["id"], spent=0, payers_rewarded=1)


async def test_a_discount_and_a_cashback_on_one_payment(campaign_gateway: Gateway) -> None:
    client, _ = await campaign_gateway.merchant()
    discount = await new_campaign(client)  # 100 off
    cashback = await new_campaign(client, "cashback",
                                  reward={"type": "percent", "percent_bp": 2000, "max": 200})
    paid = await pay(client, "dc-1", {"buyer_id": "2088000000000009"})
    assert [p["kind"] for p in paid["promotions"]] == ["discount", "cashback"]
    assert paid["payer_amount"]["amount"] == 900
    await _payout_when(client, keys.child_id("po", cashback["id"], paid["id"]), "succeeded")
    partial = await refund(client, paid["id"], 300, "dc-r1")
    assert partial["payer_amount"]["amount"] == 270 - 60  # ⌊300·0.9⌋ − ⌊300·0.2⌋
    rest = await refund(client, paid["id"], 700, "dc-r2")
    assert partial["payer_amount"]["amount"] + rest["payer_amount"]["amount"] == 700
    await campaign_when(client, discount["id"], spent=0)
    await campaign_when(client, cashback["id"], spent=0)


async def test_a_cashback_the_payer_cannot_receive_goes_back(campaign_gateway: Gateway) -> None:
    client, _ = await campaign_gateway.merchant()
    await user(client, "verified-ann", openid="o-ann-wallet")
    await user(client, "unverified-bob", verified=False)
    made = await new_campaign(client, "cashback")
    to_ann = await pay(client, "u-1", {"user": "verified-ann"})
    payout = await _payout_when(client, keys.child_id("po", made["id"], to_ann["id"]),
                                "succeeded")
    assert payout["payee"] == {"user": "verified-ann"}
    await pay(client, "u-2", {"user": "unverified-bob"})
    frozen = await pay(client, "u-3", {"openid": "o-frozen-2"})  # the rail refuses it
    await _payout_when(client, keys.child_id("po", made["id"], frozen["id"]), "failed")
    await campaign_when(client, made["id"], spent=100, payers_rewarded=1)
    full = await refund(client, frozen["id"], 1000, "u-r1")
    assert "payer_amount" not in full  # no cashback was paid: nothing to deduct


async def test_a_refused_create_gives_its_reservation_back(campaign_gateway: Gateway) -> None:
    client, _ = await campaign_gateway.merchant(payer_rate_limit={"rps": 0.001, "burst": 1})
    made = await new_campaign(client)
    await pay(client, "rl-1", {"openid": "o-rl"})
    limited = await pay(client, "rl-2", {"openid": "o-rl"}, status=429)
    assert limited["error"]["code"] == "rate_limited"
    await campaign_when(client, made["id"], spent=100, payers_rewarded=1)


async def test_a_reservation_whose_payment_was_never_written_is_released(
        redis_url: str, bank_sim: Sim, tmp_path: Path, http: aiohttp.ClientSession,
        clock: MovableClock, redis_client: Any) -> None:
    gw = await start(redis_url, bank_sim, tmp_path, http, clock, background=False)
    try:
        client, merchant = await gw.merchant()
        made = await new_campaign(client, limits={"budget": 100})
        # The payment's write fails after its reward was reserved (its key holds something
        # else, so the create script errors): the request dies between the two.
        shard = keys.shard_for(merchant["id"], gw.settings.redis.shards)
        in_the_way = keys.payment(shard, keys.payment_id(shard, merchant["id"], "cr-1"))
        await redis_client.set(in_the_way, "not a payment")
        body = {"amount": 1000, "currency": "CNY", "out_trade_no": "cr-1", "scene": "native",
                "method": "instant", "payer": {"openid": "o-crash"}}
        crashed = await client.post("/v1/payments", body)
        assert crashed.status >= 500, crashed.body
        await campaign_when(client, made["id"], spent=100, status="exhausted")
        await redis_client.delete(in_the_way)
        sweeper = gw.services.sweeper
        await sweeper.sweep_once()  # not due yet: a create may still be writing
        await campaign_when(client, made["id"], spent=100, payers_rewarded=1)
        clock.forward(int(gw.settings.idempotency.lease_s * 1000) + 1)
        await sweeper.sweep_once()
        await campaign_when(client, made["id"], spent=0, payers_rewarded=0, status="active")
        retried = await pay(client, "cr-1", {"openid": "o-crash"})  # reserves afresh
        assert reward_of(retried) is not None
        await campaign_when(client, made["id"], spent=100, payers_rewarded=1)
    finally:
        await gw.close()


async def _payout_when(client: Client, payout_id: str, status: str) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    async def ended() -> bool:
        got = await client.get(f"/v1/payouts/{payout_id}")
        seen.update(got.body or {})
        return got.status == 200 and got.body["status"] == status

    await eventually(ended)
    return seen
