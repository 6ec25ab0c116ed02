"""Campaigns (API.md, "Campaigns, coupons and merchant points"): made by a merchant or the
admin, refused with the field at fault, and limits that hold exactly however many
payments race for them: first-N distinct payers, the budget down to its last unit, the
per-payer cap, a retried create reserving once."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.asserts import assert_error
from tests.campaigns import (
    campaign_body,
    campaign_gateway,
    campaign_when,
    clock,
    new_campaign,
    pay,
    reward_of,
)
from tests.helpers import Gateway, eventually

pytestmark = pytest.mark.both_topologies

__all__ = ["campaign_gateway", "clock"]  # fixtures


async def test_first_n_is_exact_with_200_concurrent_payers(campaign_gateway: Gateway) -> None:
    client, _ = await campaign_gateway.merchant()
    made = await new_campaign(client, limits={"first_n_payers": 5})
    payments = await asyncio.gather(*(pay(client, f"fn-{i}", {"openid": f"o-payer-{i}"})
                                      for i in range(200)))
    rewarded = [p for p in payments if reward_of(p)]
    assert len(rewarded) == 5
    assert all(reward_of(p) == {"campaign": made["id"], "kind": "discount", "amount": 100,
                                "status": "granted"} for p in rewarded)
    assert all(p["payer_amount"] == {"amount": 900, "currency": "CNY"} for p in rewarded)
    assert all("payer_amount" not in p for p in payments if not reward_of(p))
    # A payer already rewarded is no new payer: with no per-payer cap, it earns again.
    first = rewarded[0]["out_trade_no"].removeprefix("fn-")
    again = await pay(client, "fn-again", {"openid": f"o-payer-{first}"})
    assert reward_of(again) is not None
    await campaign_when(client, made["id"], payers_rewarded=5, spent=600, status="active")


async def test_the_budget_is_never_overspent_at_its_last_unit(campaign_gateway: Gateway) -> None:
    client, _ = await campaign_gateway.merchant()
    made = await new_campaign(client, "cashback", limits={"budget": 1000},
                              reward={"type": "fixed", "amount": 300, "max": 300})
    payments = await asyncio.gather(*(pay(client, f"bu-{i}", {"openid": f"o-b-{i}x"})
                                      for i in range(40)))
    amounts = sorted(r["amount"] for p in payments if (r := reward_of(p)))
    assert amounts == [100, 300, 300, 300]  # the last reward is cut to what was left
    shown = await campaign_when(client, made["id"], spent=1000, payers_rewarded=4)
    assert shown["status"] == "exhausted"
    later = await pay(client, "bu-late", {"openid": "o-b-late"})
    assert reward_of(later) is None


async def test_the_per_payer_cap_holds(campaign_gateway: Gateway) -> None:
    client, _ = await campaign_gateway.merchant()
    made = await new_campaign(client, reward={"type": "percent", "percent_bp": 3000,
                                              "max": 300},
                              limits={"per_payer": {"count": 2, "amount": 500}})
    payments = await asyncio.gather(*(pay(client, f"pp-{i}", {"buyer_id": "2088000000000001"})
                                      for i in range(10)))
    assert sorted(r["amount"] for p in payments if (r := reward_of(p))) == [200, 300]
    other = await pay(client, "pp-other", {"user": "carol"}, amount=500)
    assert reward_of(other) == {"campaign": made["id"], "kind": "discount", "amount": 150,
                                "status": "granted"}
    await campaign_when(client, made["id"], spent=650, payers_rewarded=2)


async def test_a_retried_create_reserves_once(campaign_gateway: Gateway) -> None:
    client, _ = await campaign_gateway.merchant()
    made = await new_campaign(client, limits={"budget": 5000})
    body = {"amount": 1000, "currency": "CNY", "out_trade_no": "retry-1", "scene": "native",
            "method": "bank", "description": "Tea", "payer": {"openid": "o-retry"}}
    first, second = await asyncio.gather(client.post("/v1/payments", body),
                                         client.post("/v1/payments", body))
    assert sorted([first.status, second.status]) == [200, 201], (first.body, second.body)
    assert first.body["promotions"] == second.body["promotions"]
    created = first if first.status == 201 else second
    assert created.body["status"] == "requires_action"  # the other may see it processing
    assert reward_of(created.body) == {"campaign": made["id"], "kind": "discount",
                                       "amount": 100, "status": "reserved"}
    third = await client.post("/v1/payments", body, headers={"Idempotency-Key": "k-retry"})
    assert third.status == 200 and third.body["promotions"] == created.body["promotions"]
    replayed = await client.post("/v1/payments", body, headers={"Idempotency-Key": "k-retry"})
    assert replayed.raw == third.raw and replayed.headers["Idempotent-Replayed"] == "true"
    other = await client.post("/v1/payments", {**body, "amount": 2000})
    assert_error(other, 409, "out_trade_no_used", "out_trade_no")
    await campaign_when(client, made["id"], spent=100, payers_rewarded=1)


async def test_no_identity_or_no_match_earns_nothing(campaign_gateway: Gateway) -> None:
    client, _ = await campaign_gateway.merchant()
    other_client, _ = await campaign_gateway.merchant("Other shop")
    await new_campaign(client, conditions={"min_amount": 500, "methods": ["instant"],
                                           "scenes": ["native", "quickpay"]})
    code = {"auth_code": "134567890123456781"}  # a payer code: its owner is not known yet
    assert reward_of(await pay(client, "nm-1", code, scene="quickpay")) is None
    assert reward_of(await pay(client, "nm-2", {"openid": "o-1"}, amount=499)) is None
    assert reward_of(await pay(client, "nm-3", {"openid": "o-1"}, scene="h5")) is None
    assert reward_of(await pay(client, "nm-4", {"openid": "o-1"}, method="bank")) is None
    assert reward_of(await pay(other_client, "nm-5", {"openid": "o-1"})) is None
    assert reward_of(await pay(client, "nm-6", {"openid": "o-1"}, amount=500)) is not None


async def test_an_admin_campaign_spans_the_merchants_it_lists(
        campaign_gateway: Gateway) -> None:
    a, shop_a = await campaign_gateway.merchant("A")
    b, shop_b = await campaign_gateway.merchant("B")
    c, _ = await campaign_gateway.merchant("C")
    admin = campaign_gateway.admin()
    made = await new_campaign(admin, "cashback",
                              conditions={"merchants": [shop_a["id"], shop_b["id"]]})
    assert made["status"] == "active" and made["conditions"]["merchants"] == sorted(
        [shop_a["id"], shop_b["id"]])
    assert reward_of(await pay(a, "ad-1", {"openid": "o-a"})) is not None
    assert reward_of(await pay(b, "ad-2", {"openid": "o-a"})) is not None
    assert reward_of(await pay(c, "ad-3", {"openid": "o-a"})) is None
    seen = await campaign_when(admin, made["id"], spent=200, payers_rewarded=1)
    assert seen["limits"] == {"first_n_payers": None, "per_payer": None, "budget": None}
    missing = await a.get(f"/v1/campaigns/{made['id']}")  # the admin's, not A's
    assert_error(missing, 404, "not_found")


async def test_a_merchant_sees_and_ends_only_its_own(campaign_gateway: Gateway) -> None:
    client, merchant = await campaign_gateway.merchant()
    other, _ = await campaign_gateway.merchant("Other")
    made = await new_campaign(client, conditions={"merchants": [merchant["id"]]})
    assert made["conditions"]["timezone"] == "Asia/Shanghai"
    assert_error(await other.get(f"/v1/campaigns/{made['id']}"), 404, "not_found")
    assert_error(await other.post(f"/v1/campaigns/{made['id']}/end"), 404, "not_found")
    assert_error(await client.get("/v1/campaigns/cmp_nope"), 404, "not_found")
    ended = await client.post(f"/v1/campaigns/{made['id']}/end",
                              headers={"Idempotency-Key": "end-1"})
    assert ended.status == 200 and ended.body["status"] == "ended", ended.body
    again = await client.post(f"/v1/campaigns/{made['id']}/end",
                              headers={"Idempotency-Key": "end-1"})
    assert again.raw == ended.raw and again.headers["Idempotent-Replayed"] == "true"
    assert reward_of(await pay(client, "end-1", {"openid": "o-1"})) is None


@pytest.mark.parametrize("change, param", [
    ({"conditions": {"windows": [{"start": "10:00", "end": "07:00"}]}},
     "conditions.windows.end"),
    ({"conditions": {"windows": [{"start": "10:00", "end": "10:00"}]}},
     "conditions.windows.end"),
    ({"conditions": {"windows": [{"start": "7:00", "end": "10:00"}]}},
     "conditions.windows.start"),
    ({"conditions": {"windows": [{"days": [0], "start": "07:00", "end": "10:00"}]}},
     "conditions.windows.days"),
    ({"conditions": {"timezone": "Mars/Olympus_Mons"}}, "conditions.timezone"),
    ({"conditions": {"timezone": "../etc/passwd"}}, "conditions.timezone"),
    ({"reward": {"type": "fixed", "amount": 500, "max": 300}}, "reward.amount"),
    ({"reward": {"type": "random", "amount": 500, "max": 300}}, "reward.amount"),
    ({"reward": {"type": "fixed", "max": 300}}, "reward.amount"),
    ({"reward": {"type": "percent", "max": 300}}, "reward.percent_bp"),
    ({"reward": {"type": "percent", "percent_bp": 10001, "max": 300}}, "reward.percent_bp"),
    ({"limits": {"budget": 0}}, "limits.budget"),
    ({"limits": {"budget": -5}}, "limits.budget"),
    ({"limits": {"first_n_payers": 0}}, "limits.first_n_payers"),
    ({"conditions": {"merchants": ["mch_someoneelse"]}}, "conditions.merchants"),
    ({"conditions": {"methods": ["carrier_pigeon"]}}, "conditions.methods"),
    ({"conditions": {"currency": "XXX"}}, "conditions.currency"),
    ({"kind": "voucher"}, "kind"),
    ({"kind": "coupon"}, "reward.type"),  # a coupon's reward is {"amount", "min_spend"?}
    ({"starts_at": "2030-01-02T00:00:00Z", "ends_at": "2030-01-01T00:00:00Z"}, "ends_at"),
    ({"starts_at": "2030-01-02T00:00:00"}, "starts_at"),
])
async def test_bad_campaigns_are_refused_and_write_nothing(
        campaign_gateway: Gateway, redis_client: Any, change: dict[str, Any],
        param: str) -> None:
    client, _ = await campaign_gateway.merchant()
    body = {**campaign_body(), **change}
    refused = await client.post("/v1/campaigns", body, headers={"Idempotency-Key": "bad"})
    assert_error(refused, 422, "validation_error", param)
    assert await redis_client.scard("campaigns") == 0
    fixed = await client.post("/v1/campaigns", campaign_body(),
                              headers={"Idempotency-Key": "bad"})  # the key was not spent
    assert fixed.status == 201, fixed.body


async def test_an_admin_campaign_lists_existing_merchants(campaign_gateway: Gateway) -> None:
    admin = campaign_gateway.admin()
    assert_error(await admin.post("/v1/campaigns", campaign_body()), 422, "validation_error",
                 "conditions.merchants")
    unknown = campaign_body(conditions={"merchants": ["mch_00nobody"]})
    assert_error(await admin.post("/v1/campaigns", unknown), 422, "validation_error",
                 "conditions.merchants")


async def test_the_dashboard_shows_live_budgets(campaign_gateway: Gateway) -> None:
    client, _ = await campaign_gateway.merchant()
    made = await new_campaign(client, "cashback", limits={"budget": 5000})
    await new_campaign(client)  # no budget: no bar
    await pay(client, "db-1", {"openid": "o-db"})
    wanted = {"id": made["id"], "name": "cashback campaign", "currency": "CNY",
              "budget": 5000, "spent": 100}

    async def shown() -> bool:
        figures = await campaign_gateway.admin().get("/v1/admin/dashboard")
        return bool(figures.body["campaigns"] == [wanted])

    await eventually(shown)
    ended = await client.post(f"/v1/campaigns/{made['id']}/end")
    assert ended.status == 200
    figures = await campaign_gateway.admin().get("/v1/admin/dashboard")
    assert figures.body["campaigns"] == []  # ended through this process: gone at once
