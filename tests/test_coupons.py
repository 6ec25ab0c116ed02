"""Coupons (API.md, "Campaigns, coupons and merchant points"): issued from a coupon
campaign to one user, reserved by exactly one payment of that user however many race for
it, redeemed when it is paid, available again when it fails; plus the README's campaign
examples, posted as they are written there."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.asserts import assert_error
from tests.campaigns import campaign_gateway, campaign_when, clock, pay, reward_of
from tests.helpers import Client, Gateway, eventually

pytestmark = pytest.mark.both_topologies

__all__ = ["campaign_gateway", "clock"]  # fixtures

DECLINED = "134567890123456782"  # a payer code the instant rail declines


async def coupon_campaign(client: Client, amount: int = 500, **reward: Any) -> dict[str, Any]:
    made = await client.post("/v1/campaigns", {
        "name": "5 CNY off", "kind": "coupon", "reward": {"amount": amount, **reward},
        "limits": {"budget": 100_000}})
    assert made.status == 201, made.body
    body: dict[str, Any] = made.body
    return body


async def issue(client: Client, campaign_id: str, user: str) -> str:
    made = await client.post(f"/v1/campaigns/{campaign_id}/coupons", {"user": user})
    assert made.status == 201, made.body
    assert made.body["object"] == "coupon" and made.body["status"] == "available"
    coupon: str = made.body["id"]
    return coupon


async def coupon_status(client: Client, coupon: str) -> str:
    got = await client.get(f"/v1/coupons/{coupon}")
    assert got.status == 200, got.body
    status: str = got.body["status"]
    return status


async def test_a_coupon_is_used_once(campaign_gateway: Gateway) -> None:
    client, _ = await campaign_gateway.merchant()
    made = await coupon_campaign(client, min_spend=1000)
    assert made["reward"] == {"amount": 500, "min_spend": 1000}
    coupon = await issue(client, made["id"], "alice")
    paid = await pay(client, "c-1", {"user": "alice"}, amount=1200, coupons=[coupon])
    assert reward_of(paid) == {"campaign": made["id"], "kind": "coupon", "amount": 500,
                               "status": "granted", "coupon": coupon}
    assert paid["payer_amount"] == {"amount": 700, "currency": "CNY"}
    await eventually(lambda: _is(client, coupon, "redeemed"))
    await campaign_when(client, made["id"], spent=500)
    again = await client.post("/v1/payments", _body("c-2", "alice", coupon))
    assert_error(again, 409, "coupon_unavailable", "coupons")


async def test_a_raced_coupon_is_reserved_by_exactly_one(campaign_gateway: Gateway) -> None:
    client, _ = await campaign_gateway.merchant()
    made = await coupon_campaign(client)
    coupon = await issue(client, made["id"], "bob")
    replies = await asyncio.gather(*(client.post("/v1/payments", _body(f"r-{i}", "bob", coupon))
                                     for i in range(20)))
    won = [r for r in replies if r.status == 201]
    assert len(won) == 1, [r.status for r in replies]
    assert reward_of(won[0].body) is not None
    for lost in replies:
        if lost.status != 201:
            assert_error(lost, 409, "coupon_unavailable", "coupons")
    await campaign_when(client, made["id"], spent=500)


async def test_another_users_coupon_is_refused_with_nothing_written(
        campaign_gateway: Gateway) -> None:
    client, _ = await campaign_gateway.merchant()
    made = await coupon_campaign(client)
    coupon = await issue(client, made["id"], "carol")
    for otn, payer in (("o-1", {"user": "mallory"}), ("o-2", {"openid": "o-carol"})):
        refused = await client.post("/v1/payments", {**_body(otn, "x", coupon),
                                                     "payer": payer})
        assert_error(refused, 409, "coupon_unavailable", "coupons")
    unknown = await client.post("/v1/payments", _body("o-3", "carol", coupon[:-1] + "0"))
    assert_error(unknown, 409, "coupon_unavailable", "coupons")
    for otn in ("o-1", "o-2", "o-3"):
        assert (await client.get(f"/v1/payments?out_trade_no={otn}")).status == 404
    assert await coupon_status(client, coupon) == "available"
    shown = await client.get(f"/v1/campaigns/{made['id']}")
    assert shown.body["spent"] == 0
    # Another merchant neither sees it nor uses it.
    other, _ = await campaign_gateway.merchant("Other shop")
    assert (await other.get(f"/v1/coupons/{coupon}")).status == 404
    assert_error(await other.post("/v1/payments", _body("o-4", "carol", coupon)), 409,
                 "coupon_unavailable", "coupons")


async def test_a_failed_payment_releases_its_coupon(campaign_gateway: Gateway) -> None:
    client, _ = await campaign_gateway.merchant()
    made = await coupon_campaign(client)
    coupon = await issue(client, made["id"], "dave")
    failed = await pay(client, "f-1", {"user": "dave", "auth_code": DECLINED},
                       scene="quickpay", coupons=[coupon])
    assert failed["status"] == "failed"
    assert reward_of(failed) == {"campaign": made["id"], "kind": "coupon", "amount": 500,
                                 "status": "released", "coupon": coupon}
    await eventually(lambda: _is(client, coupon, "available"))
    await campaign_when(client, made["id"], spent=0)
    paid = await pay(client, "f-2", {"user": "dave"}, coupons=[coupon])
    assert paid["payer_amount"]["amount"] == 500


async def test_min_spend_not_met_is_refused(campaign_gateway: Gateway) -> None:
    client, _ = await campaign_gateway.merchant()
    made = await coupon_campaign(client, min_spend=2000)
    coupon = await issue(client, made["id"], "erin")
    refused = await client.post("/v1/payments", {**_body("m-1", "erin", coupon),
                                                 "amount": 1999})
    assert_error(refused, 409, "coupon_unavailable", "coupons")
    assert await coupon_status(client, coupon) == "available"


async def test_a_refund_returns_the_coupons_share_and_keeps_it_redeemed(
        campaign_gateway: Gateway) -> None:
    client, _ = await campaign_gateway.merchant()
    made = await coupon_campaign(client)
    coupon = await issue(client, made["id"], "fay")
    paid = await pay(client, "rf-1", {"user": "fay"}, coupons=[coupon])
    await campaign_when(client, made["id"], spent=500)
    refunded = await client.post(f"/v1/payments/{paid['id']}/refunds",
                                 {"amount": 500, "out_refund_no": "rf-1-a"})
    assert refunded.status == 201, refunded.body
    await campaign_when(client, made["id"], spent=250)  # ⌊500 × 500 / 1000⌋ went back
    assert await coupon_status(client, coupon) == "redeemed"


async def test_coupon_campaigns_refuse_what_they_do_not_take(campaign_gateway: Gateway) -> None:
    client, _ = await campaign_gateway.merchant()
    for reward, limits, param in (
            ({"amount": 500, "type": "fixed"}, {}, "reward.type"),
            ({"min_spend": 500}, {}, "reward.amount"),
            ({"amount": 500}, {"first_n_payers": 10}, "limits.first_n_payers")):
        refused = await client.post("/v1/campaigns", {"name": "c", "kind": "coupon",
                                                      "reward": reward, "limits": limits})
        assert_error(refused, 422, "validation_error", param)
    discount = await client.post("/v1/campaigns", {"name": "d", "kind": "discount",
                                                   "reward": {"amount": 100}})
    assert_error(discount, 422, "validation_error", "reward.type")
    made = await client.post("/v1/campaigns", {"name": "d", "kind": "discount", "reward": {
        "type": "fixed", "amount": 100, "max": 100}})
    assert_error(await client.post(f"/v1/campaigns/{made.body['id']}/coupons",
                                   {"user": "gus"}), 409, "invalid_state")


async def test_the_readme_campaign_examples_are_taken(campaign_gateway: Gateway) -> None:
    """The bodies of README.md's "Campaigns" examples, as written there."""
    admin = campaign_gateway.admin()
    merchants = [(await campaign_gateway.merchant(name))[1] for name in
                 ("Lawson", "7-Eleven", "AEON")]
    ids = [m["id"] for m in merchants]
    morning_evening = {
        "name": "早7晚5", "kind": "cashback",
        "reward": {"type": "random", "amount": 1, "max": 10000},
        "conditions": {"merchants": ids, "timezone": "Asia/Shanghai",
                       "windows": [{"start": "07:00", "end": "10:00"},
                                   {"start": "17:00", "end": "24:00"}]},
        "limits": {"per_payer": {"count": 1}}}
    first_payers = {
        "name": "First 20,000 payers", "kind": "cashback",
        "reward": {"type": "random", "max": 88800},
        "conditions": {"min_amount": 10000, "timezone": "Australia/Sydney"},
        "limits": {"first_n_payers": 20000}}
    coupon = {"name": "10 CNY off from 50 CNY", "kind": "coupon",
              "reward": {"amount": 1000, "min_spend": 5000},
              "limits": {"budget": 10000000}, "ends_at": "2099-12-31T16:00:00Z"}
    made = await admin.post("/v1/campaigns", morning_evening)
    assert made.status == 201, made.body
    client, _ = await campaign_gateway.merchant()
    for body in (first_payers, coupon):
        made = await client.post("/v1/campaigns", body)
        assert made.status == 201, made.body
    issued = await client.post(f"/v1/campaigns/{made.body['id']}/coupons", {"user": "u_42"})
    assert issued.status == 201, issued.body
    got = await client.get(f"/v1/coupons/{issued.body['id']}")
    assert got.body["expires_at"] == "2099-12-31T16:00:00.000Z", got.body


def _body(otn: str, user: str, coupon: str) -> dict[str, Any]:
    return {"amount": 1000, "currency": "CNY", "out_trade_no": otn, "scene": "native",
            "method": "instant", "description": "Tea", "payer": {"user": user},
            "coupons": [coupon]}


async def _is(client: Client, coupon: str, status: str) -> bool:
    return await coupon_status(client, coupon) == status
