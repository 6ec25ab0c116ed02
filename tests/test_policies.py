"""Whitelists and per-action quotas (API.md, "Whitelists and per-action quotas"): a
merchant outside a whitelist is refused, one over its quota gets 429 with Retry-After,
neither writes anything, and a change applies on every gateway process within a second."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from msgspec.structs import replace

from router.sandbox.embedded import free_port
from router.settings import ServerSettings
from router.store import keys
from tests.asserts import assert_error
from tests.helpers import Client, Gateway, payment_body, start_gateway
from tests.social import FUNDING, packet_body, social_gateway, user

pytestmark = pytest.mark.both_topologies
__all__ = ["social_gateway"]

CODE = {"type": "order", "amount": 500, "currency": "CNY", "description": "Noodles"}


def code_body(n: int) -> dict[str, Any]:
    return {**CODE, "out_trade_no": f"cc-order-{n}"}


async def put_policy(admin: Client, action: str, policy: dict[str, Any]) -> dict[str, Any]:
    got = await admin.request("PUT", f"/v1/admin/policies/{action}", policy)
    assert got.status == 200, got.body
    result: dict[str, Any] = got.body
    return result


async def shard_of(gateway: Gateway, merchant_id: str) -> int:
    merchant = await gateway.services.merchants.get(merchant_id)
    assert merchant is not None
    return merchant.shard


async def codes_of(redis_client: Any, shard: int, merchant_id: str) -> int:
    """Checkout codes the merchant has in Redis."""
    found = 0
    async for name in redis_client.scan_iter(match=f"*cc:cc_{shard:02x}*"):
        found += merchant_id.encode() in await redis_client.get(name)
    return found


@pytest.fixture
async def second_gateway(social_gateway: Gateway,
                         http: aiohttp.ClientSession) -> AsyncIterator[Gateway]:
    """Another gateway process on the same Redis (its own policy cache)."""
    settings = replace(social_gateway.settings,
                       server=ServerSettings(host="127.0.0.1", port=free_port()))
    gw = await start_gateway(settings, http)
    yield gw
    await gw.close()


async def test_whitelist_refuses_every_action_and_writes_nothing(
    social_gateway: Gateway, redis_client: Any
) -> None:
    gw = social_gateway
    admin = gw.admin()
    allowed, allowed_mch = await gw.merchant("Allowed")
    other, other_mch = await gw.merchant("Other")
    for uid in ("alice", "bob"):
        await user(other, uid)
    paid = await other.post("/v1/payments", payment_body("wl-pay", method="instant"))
    assert paid.status == 201, paid.body
    for action in ("share_link.create", "checkout_code.create", "red_packet.create",
                   "transfer.create", "payout.create"):
        shown = await put_policy(admin, action, {"whitelist": [allowed_mch["id"]],
                                                 "quota": {"count": 5, "per_s": 60}})
        assert shown == {"object": "policy", "action": action,
                         "whitelist": [allowed_mch["id"]], "quota": {"count": 5, "per_s": 60},
                         "updated_at": shown["updated_at"]}

    key = {"Idempotency-Key": "wl-1"}
    refusals = [
        await other.post(f"/v1/payments/{paid.body['id']}/share_link", {}, headers=key),
        await other.post("/v1/checkout_codes", code_body(1), headers=key),
        await other.post("/v1/red_packets", packet_body("wl-rp"), headers=key),
        await other.post("/v1/transfers", {
            "out_transfer_no": "wl-t", "from": "alice", "to": "bob", "amount": 100,
            "currency": "CNY", "funding": FUNDING}, headers=key),
        await other.post("/v1/payouts", {
            "amount": 100, "currency": "CNY", "out_payout_no": "wl-po",
            "payee": {"user": "bob"}, "description": "Prize"}, headers=key),
    ]
    for refused in refusals:
        assert_error(refused, 403, "not_whitelisted", param=None)

    # Nothing written: no objects, no quota taken, the Idempotency-Key released.
    shard = await shard_of(gw, other_mch["id"])
    shards = gw.settings.redis.shards
    rp = keys.spread_id("rp", shards, other_mch["id"], "wl-rp")
    tr = keys.spread_id("tr", shards, other_mch["id"], "wl-t")
    po = keys.spread_id("po", shards, other_mch["id"], "wl-po")
    written = [keys.red_packet(keys.shard_in(rp), rp), keys.red_packet(keys.shard_in(tr), tr),
               keys.payout(keys.shard_in(po), po),
               keys.idempotency(shard, other_mch["id"], "wl-1"),
               *(keys.policy_quota(shard, a, other_mch["id"]) for a in (
                   "share_link.create", "checkout_code.create", "red_packet.create",
                   "transfer.create", "payout.create"))]
    for name in written:
        assert not await redis_client.exists(name), name
    assert await codes_of(redis_client, shard, other_mch["id"]) == 0

    # The whitelisted merchant goes ahead; the refused one, once the list is gone.
    made = await allowed.post("/v1/checkout_codes", code_body(2))
    assert made.status == 201, made.body
    gone = await admin.request("DELETE", "/v1/admin/policies/checkout_code.create")
    assert gone.body == {"object": "policy", "action": "checkout_code.create", "deleted": True}
    retried = await other.post("/v1/checkout_codes", code_body(1), headers=key)
    assert retried.status == 201, retried.body
    assert await codes_of(redis_client, shard, other_mch["id"]) == 1


async def test_quota_answers_429_with_retry_after_until_lifted(social_gateway: Gateway) -> None:
    gw = social_gateway
    admin = gw.admin()
    client, _ = await gw.merchant()
    other, _ = await gw.merchant("Other")
    await put_policy(admin, "checkout_code.create", {"quota": {"count": 1, "per_s": 3600}})

    first = await client.post("/v1/checkout_codes", code_body(1))
    assert first.status == 201, first.body
    over = await client.post("/v1/checkout_codes", code_body(2))
    assert_error(over, 429, "quota_exceeded")
    assert 3590 <= int(over.headers["Retry-After"]) <= 3600
    assert over.headers["RateLimit-Limit"] == "1"
    assert over.headers["RateLimit-Remaining"] == "0"
    # Per merchant: another merchant has its own window.
    assert (await other.post("/v1/checkout_codes", code_body(1))).status == 201

    shown = await admin.get("/v1/admin/policies/checkout_code.create")
    assert shown.status == 200 and shown.body["quota"] == {"count": 1, "per_s": 3600}
    listed = await admin.get("/v1/admin/policies")
    assert [p["action"] for p in listed.body["data"]] == ["checkout_code.create"]

    gone = await admin.request("DELETE", "/v1/admin/policies/checkout_code.create")
    assert gone.status == 200 and gone.body["deleted"] is True
    assert (await client.post("/v1/checkout_codes", code_body(3))).status == 201
    assert_error(await admin.get("/v1/admin/policies/checkout_code.create"), 404, "not_found")
    again = await admin.request("DELETE", "/v1/admin/policies/checkout_code.create")
    assert again.status == 200 and again.body["deleted"] is False


async def test_a_refused_action_gives_its_unit_back(social_gateway: Gateway,
                                                    redis_client: Any) -> None:
    """The action refuses after the quota was taken (a check only it can make): the
    unit is returned, so the quota counts only actions that went ahead."""
    gw = social_gateway
    client, merchant = await gw.merchant()
    await user(client, "alice")
    await put_policy(gw.admin(), "red_packet.create", {"quota": {"count": 1, "per_s": 3600}})
    await put_policy(gw.admin(), "share_link.create", {"quota": {"count": 1, "per_s": 3600}})

    unknown_sender = await client.post("/v1/red_packets", packet_body("rp-1", sender="nobody"))
    assert_error(unknown_sender, 422, "unknown_user", param="sender")
    made = await client.post("/v1/red_packets", packet_body("rp-1"))
    assert made.status == 201, made.body
    existing = await client.post("/v1/red_packets", packet_body("rp-1"))
    assert_error(existing, 429, "quota_exceeded")  # the quota comes before the natural key

    paid = await client.post("/v1/payments", payment_body("sl-paid", method="instant"))
    not_shareable = await client.post(f"/v1/payments/{paid.body['id']}/share_link", {})
    assert_error(not_shareable, 409, "invalid_state")
    window = keys.policy_quota(await shard_of(gw, merchant["id"]), "share_link.create",
                               merchant["id"])
    assert await redis_client.hget(window, "n") == b"0"


async def test_concurrent_calls_never_exceed_the_quota(social_gateway: Gateway) -> None:
    gw = social_gateway
    client, _ = await gw.merchant()
    await put_policy(gw.admin(), "checkout_code.create", {"quota": {"count": 5, "per_s": 600}})
    answers = await asyncio.gather(*(client.post("/v1/checkout_codes", code_body(i))
                                     for i in range(20)))
    assert sorted(a.status for a in answers) == [201] * 5 + [429] * 15


async def test_bad_policies_are_refused_with_their_param(social_gateway: Gateway) -> None:
    admin = social_gateway.admin()
    cases: list[tuple[str, Any, int, str, str | None]] = [
        ("grab.create", {"quota": {"count": 1, "per_s": 1}}, 404, "not_found", "action"),
        ("payout.create", {"quota": {"count": 0, "per_s": 60}}, 422, "validation_error",
         "quota.count"),
        ("payout.create", {"quota": {"count": 1}}, 422, "validation_error", "quota.per_s"),
        ("payout.create", {"quota": {"count": 1, "per_s": 1.5}}, 422, "validation_error",
         "quota.per_s"),
        ("payout.create", {"whitelist": ["not-a-merchant"]}, 422, "validation_error",
         "whitelist"),
        ("payout.create", {"whitelist": "mch_1"}, 422, "validation_error", "whitelist"),
        ("payout.create", {"limit": 3}, 422, "validation_error", "limit"),
    ]
    for action, body, status, code, param in cases:
        got = await admin.request("PUT", f"/v1/admin/policies/{action}", body)
        assert_error(got, status, code, param=param)
    not_json = await admin.request("PUT", "/v1/admin/policies/payout.create", raw=b"[1]")
    assert_error(not_json, 400, "invalid_json")
    merchant, _ = await social_gateway.merchant()
    assert_error(await merchant.request("PUT", "/v1/admin/policies/payout.create", {}),
                 401, "unauthorized")
    assert_error(await admin.get("/v1/admin/policies/grab.create"), 404, "not_found",
                 param="action")
    listed = await admin.get("/v1/admin/policies")
    assert listed.status == 200 and listed.body == {"object": "list", "data": []}


async def test_a_change_applies_on_another_process_within_a_second(
    social_gateway: Gateway, second_gateway: Gateway
) -> None:
    admin = social_gateway.admin()
    here, _ = await social_gateway.merchant()
    there = Client(here.session, second_gateway.base, here.token)
    n = 0

    async def create(client: Client) -> int:
        nonlocal n
        n += 1
        return (await client.post("/v1/checkout_codes", code_body(n))).status

    async def seen_there_within(wanted: int) -> float:
        started = time.monotonic()
        while (status := await create(there)) != wanted:
            assert status in (201, 403, 429), status
            assert time.monotonic() - started < 1.5, "the change did not apply in time"
            await asyncio.sleep(0.02)
        return time.monotonic() - started

    # A quota is one window per merchant, whichever process serves it.
    await put_policy(admin, "checkout_code.create", {"quota": {"count": 2, "per_s": 600}})
    assert [await create(here), await create(there)] == [201, 201]
    assert [await create(here), await create(there)] == [429, 429]
    await admin.request("DELETE", "/v1/admin/policies/checkout_code.create")
    assert await seen_there_within(201) < 1.3

    await put_policy(admin, "checkout_code.create", {"whitelist": ["mch_someoneelse"]})
    assert await seen_there_within(403) < 1.3
    gone = await admin.request("DELETE", "/v1/admin/policies/checkout_code.create")
    assert gone.body["deleted"] is True
    assert await seen_there_within(201) < 1.3
