"""Transfers (user to user) and payouts through the API (API.md, "Payouts", "Transfers"):
accept, decline, return at expiry; payees, the real-name rules, the natural key."""

from __future__ import annotations

from typing import Any

import pytest

from tests.asserts import assert_error
from tests.helpers import Client, Gateway, eventually
from tests.social import FUNDING, social_gateway, user

pytestmark = pytest.mark.both_topologies
__all__ = ["social_gateway"]


def transfer_body(no: str, **extra: Any) -> dict[str, Any]:
    return {"out_transfer_no": no, "from": "alice", "to": "bob", "amount": 5000,
            "currency": "CNY", "message": "dinner", "funding": FUNDING, **extra}


async def until(client: Client, path: str, status: str) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    async def check() -> bool:
        got = await client.get(path)
        seen.update(got.body)
        return bool(got.body["status"] == status)

    await eventually(check)
    return seen


async def test_transfer_accepted_completes(social_gateway: Gateway) -> None:
    client, _ = await social_gateway.merchant()
    await user(client, "alice")
    await user(client, "bob")
    sent = await client.post("/v1/transfers", transfer_body("t-1"))
    assert sent.status == 201, sent.body
    t = sent.body
    assert t["object"] == "transfer" and t["id"].startswith("tr_")
    assert t["status"] == "awaiting_acceptance" and t["payment"]["status"] == "succeeded"
    assert t["from"] == "alice" and t["to"] == "bob" and t["payout"] is None
    again = await client.post("/v1/transfers", transfer_body("t-1"))
    assert again.status == 200 and again.body["id"] == t["id"]
    clash = await client.post("/v1/transfers", transfer_body("t-1", amount=1))
    assert_error(clash, 409, "out_transfer_no_used", param="out_transfer_no")

    accepted = await client.post(f"/v1/transfers/{t['id']}/accept")
    assert accepted.status == 200, accepted.body
    assert accepted.body["status"] in ("accepted", "completed")
    done = await until(client, f"/v1/transfers/{t['id']}", "completed")
    payout = await client.get(f"/v1/payouts/{done['payout']['id']}")
    assert payout.body["status"] == "succeeded" and payout.body["amount"] == 5000
    declined = await client.post(f"/v1/transfers/{t['id']}/decline")
    assert_error(declined, 409, "invalid_state")


async def test_transfer_declined_or_expired_goes_back(social_gateway: Gateway) -> None:
    client, _ = await social_gateway.merchant()
    await user(client, "alice")
    await user(client, "bob")
    t = (await client.post("/v1/transfers", transfer_body("t-2"))).body
    declined = await client.post(f"/v1/transfers/{t['id']}/decline")
    assert declined.status == 200, declined.body
    assert declined.body["status"] == "returned" and declined.body["refunded_amount"] == 5000
    late = await client.post(f"/v1/transfers/{t['id']}/accept")
    assert_error(late, 409, "red_packet_expired")

    t3 = (await client.post("/v1/transfers", transfer_body("t-3", expires_in_s=1))).body
    back = await until(client, f"/v1/transfers/{t3['id']}", "returned")
    assert back["refunded_amount"] == 5000

    async def refunded() -> bool:
        pay = await client.get(f"/v1/payments/{back['payment']['id']}")
        return bool(pay.body["status"] == "refunded")

    await eventually(refunded)


async def test_transfer_needs_verified_users(social_gateway: Gateway) -> None:
    client, _ = await social_gateway.merchant()
    await user(client, "alice")
    await user(client, "bob", verified=False)
    refused = await client.post("/v1/transfers", transfer_body("t-4"))
    assert_error(refused, 403, "real_name_required", param="to")
    same = await client.post("/v1/transfers", transfer_body("t-4", to="alice"))
    assert_error(same, 422, "validation_error", param="to")


async def test_payouts(social_gateway: Gateway) -> None:
    client, _ = await social_gateway.merchant()
    await user(client, "carol", name="李四")
    body = {"amount": 300, "currency": "CNY", "out_payout_no": "po-1",
            "payee": {"user": "carol"}, "description": "Cashback"}
    made = await client.post("/v1/payouts", body)
    assert made.status == 201, made.body
    p = made.body
    assert p["object"] == "payout" and p["id"].startswith("po_")
    assert p["status"] == "succeeded" and p["method"] == "wechatpay"
    assert p["payee"] == {"user": "carol"} and "李四" not in made.raw.decode()
    again = await client.post("/v1/payouts", body)
    assert again.status == 200 and again.body["id"] == p["id"]
    clash = await client.post("/v1/payouts", {**body, "amount": 301})
    assert_error(clash, 409, "out_payout_no_used", param="out_payout_no")

    frozen = await client.post("/v1/payouts", {**body, "out_payout_no": "po-2",
                                               "payee": {"openid": "oFrozen2"}})
    assert frozen.status == 201 and frozen.body["status"] == "failed"
    assert frozen.body["failure"]["code"] == "ACCOUNT_FROZEN"

    large = {**body, "out_payout_no": "po-3", "amount": 200_000,
             "payee": {"alipay_user_id": "2088000000000001"}}
    assert_error(await client.post("/v1/payouts", large), 422, "validation_error", param="name")
    named = await client.post("/v1/payouts", {**large, "name": "王五"})
    assert named.status == 201 and named.body["method"] == "alipay", named.body

    await user(client, "dave", verified=False)
    gated = await client.post("/v1/payouts", {**body, "out_payout_no": "po-4",
                                              "payee": {"user": "dave"}})
    assert_error(gated, 403, "real_name_required", param="payee.user")
    two = await client.post("/v1/payouts", {**body, "out_payout_no": "po-5",
                                            "payee": {"user": "carol", "openid": "o1"}})
    assert_error(two, 422, "validation_error", param="payee")
    no_rail = await client.post("/v1/payouts", {**body, "out_payout_no": "po-6",
                                                "payee": {"bank_account": "6222000011112222"}})
    assert_error(no_rail, 422, "validation_error", param="method")
    other, _ = await social_gateway.merchant("Other")
    assert (await other.get(f"/v1/payouts/{p['id']}")).status == 404


async def test_accepted_transfer_stays_completed_after_expiry(social_gateway: Gateway) -> None:
    client, _ = await social_gateway.merchant()
    await user(client, "alice")
    await user(client, "bob")
    t = (await client.post("/v1/transfers", transfer_body("t-5", expires_in_s=1))).body
    accepted = await client.post(f"/v1/transfers/{t['id']}/accept")
    assert accepted.status == 200, accepted.body
    await until(client, f"/v1/transfers/{t['id']}", "completed")
    seen: dict[str, Any] = {}

    async def expiry_done() -> bool:
        # The expiry worker has looked at it once its due entry is gone.
        got = await client.get(f"/v1/transfers/{t['id']}")
        seen.update(got.body)
        due = await social_gateway.services.store.red_packets.load(t["id"])
        return due is not None and due.expiry_done

    await eventually(expiry_done)
    assert seen["status"] == "completed" and seen["refunded_amount"] == 0


async def test_decline_after_accept_is_refused(social_gateway: Gateway) -> None:
    client, _ = await social_gateway.merchant()
    await user(client, "alice")
    await user(client, "bob")
    t = (await client.post("/v1/transfers", transfer_body("t-6"))).body
    accepted = await client.post(f"/v1/transfers/{t['id']}/accept")
    assert accepted.status == 200, accepted.body
    declined = await client.post(f"/v1/transfers/{t['id']}/decline")
    assert_error(declined, 409, "invalid_state")
