"""Guards around social money: the funding payment belongs to its packet, the real-name
gate is read afresh before money goes, large transfers carry the verified name, and a
change of `[redis] shards` never moves a natural key to a second object."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import pytest

from router.sandbox.embedded import free_port
from tests.asserts import assert_error
from tests.helpers import Client, Gateway, eventually, fast_settings, start_gateway
from tests.social import FUNDING, INSTANT_WALLETS, open_packet, social_gateway, user

pytestmark = pytest.mark.both_topologies
__all__ = ["social_gateway"]


async def test_the_funding_payment_cannot_be_refunded_or_forged(social_gateway: Gateway
                                                                ) -> None:
    client, _ = await social_gateway.merchant()
    await user(client, "alice")
    packet = await open_packet(client, "g-1", amount=1000, count=2)
    pid = packet["payment"]["id"]
    assert packet["payment"]["out_trade_no"] == packet["id"] + ":fund"
    refund = await client.post(f"/v1/payments/{pid}/refunds",
                               {"amount": 1000, "out_refund_no": "steal"})
    assert_error(refund, 409, "invalid_state")
    forged = await client.post("/v1/payments", {
        "amount": 1, "currency": "CNY", "out_trade_no": "rp_00abc:fund", "scene": "quickpay",
        "method": "instant", "payer": {"auth_code": "134567890123456781"}})
    assert_error(forged, 422, "validation_error", param="out_trade_no")


async def test_a_grabber_unverified_since_is_not_paid(redis_url: str, tmp_path: Path,
                                                      http: aiohttp.ClientSession) -> None:
    """The grab passed the gate; the user is unverified before the payout goes: the
    payout fails (`real_name_required`) and the share goes back with the rest."""
    settings = fast_settings(redis_url, INSTANT_WALLETS, free_port(), str(tmp_path / "d"))
    gw = await start_gateway(settings, http, background=False)  # sweeps by hand
    try:
        client, _ = await gw.merchant()
        await user(client, "alice")
        await user(client, "bob")
        packet = await open_packet(client, "g-2", amount=1000, count=2, expires_in_s=1)
        grab = await client.post(f"/v1/red_packets/{packet['id']}/grabs", {"user": "bob"})
        assert grab.status == 201
        await user(client, "bob", verified=False)
        seen: dict[str, Any] = {}

        async def expired() -> bool:
            await gw.services.sweeper.sweep_once()
            got = await client.get(f"/v1/red_packets/{packet['id']}")
            seen.update(got.body)
            return bool(got.body["status"] == "expired")

        await eventually(expired)
        payout = await client.get(f"/v1/payouts/{grab.body['payout']['id']}")
        assert payout.body["status"] == "failed"
        assert payout.body["failure"]["code"] == "real_name_required"
        assert seen["refunded_amount"] == 1000
    finally:
        await gw.close()


async def test_a_large_transfer_needs_the_recipients_name(social_gateway: Gateway) -> None:
    client, _ = await social_gateway.merchant()
    await user(client, "alice")
    got = await client.request("PUT", "/v1/users/bob", {
        "wallets": {"wechatpay": {"openid": "obob1"}},
        "real_name": {"status": "verified", "method": "phone"}})
    assert got.status == 200
    body = {"out_transfer_no": "g-3", "from": "alice", "to": "bob", "amount": 250_000,
            "currency": "CNY", "funding": FUNDING}
    t = await client.post("/v1/transfers", body)
    assert t.status == 201, t.body
    refused = await client.post(f"/v1/transfers/{t.body['id']}/accept")
    assert_error(refused, 403, "real_name_required", param="to")
    await user(client, "bob", name="王五")
    accepted = await client.post(f"/v1/transfers/{t.body['id']}/accept")
    assert accepted.status == 200, accepted.body
    payout = await client.get(f"/v1/payouts/{accepted.body['payout']['id']}")
    assert payout.status == 200 and "王五" not in payout.raw.decode()


async def test_more_shards_find_the_same_objects(redis_url: str, tmp_path: Path,
                                                 http: aiohttp.ClientSession) -> None:
    first_settings = fast_settings(redis_url, INSTANT_WALLETS, free_port(), str(tmp_path / "a"))
    first = await start_gateway(first_settings, http)
    try:
        client, merchant = await first.merchant()
        await user(client, "carol")
        body = {"amount": 300, "currency": "CNY", "out_payout_no": "g-4",
                "payee": {"user": "carol"}, "description": "Cashback"}
        made = await client.post("/v1/payouts", body)
        assert made.status == 201, made.body
    finally:
        await first.close()
    more = fast_settings(redis_url, INSTANT_WALLETS, free_port(), str(tmp_path / "b"))
    more = msgspec.structs.replace(more, redis=msgspec.structs.replace(more.redis,
                                                                        shards=32))
    second = await start_gateway(more, http)
    try:
        again = Client(http, second.base, client.token)
        repeat = await again.post("/v1/payouts", body)
        assert repeat.status == 200 and repeat.body["id"] == made.body["id"], repeat.body
        assert (await again.get("/v1/users/carol")).status == 200
        assert merchant["id"]
    finally:
        await second.close()
