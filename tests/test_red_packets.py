"""Red packets (API.md, "Red packets"): funding, grabs in one script under real
concurrency, the two-times-mean and equal splits, best luck, payouts exactly once, and
expiry with its refund to the sender."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from router.sandbox.embedded import free_port
from tests.asserts import assert_error
from tests.helpers import Client, Gateway, eventually, fast_settings, start_gateway
from tests.social import (
    INSTANT_WALLETS,
    open_packet,
    packet_body,
    settled_payouts,
    social_gateway,
    user,
)

pytestmark = pytest.mark.both_topologies
__all__ = ["social_gateway"]


async def users(client: Client, n: int, prefix: str = "u") -> list[str]:
    ids = [f"{prefix}{i}" for i in range(n)]
    await asyncio.gather(*(user(client, uid) for uid in ids))
    return ids


async def test_users_show_masked_names(social_gateway: Gateway) -> None:
    client, _ = await social_gateway.merchant()
    shown = await user(client, "alice", name="张三")
    assert shown["real_name"] == {"status": "verified", "method": "id_card", "name": "*三"}
    got = await client.get("/v1/users/alice")
    assert got.status == 200 and got.body == shown and "张三" not in got.raw.decode()
    bad = await client.request("PUT", "/v1/users/bad%20id", {"wallets": {}, "real_name": {
        "status": "unverified"}})
    assert_error(bad, 422, "validation_error", param="user_id")
    no_how = await client.request("PUT", "/v1/users/bob", {
        "wallets": {"wechatpay": {"openid": "ob"}}, "real_name": {"status": "verified"}})
    assert_error(no_how, 422, "validation_error", param="real_name.method")


async def test_grabs_race_and_the_sum_is_exact(social_gateway: Gateway) -> None:
    client, _ = await social_gateway.merchant()
    await user(client, "alice")
    grabbers = await users(client, 300)
    packet = await open_packet(client, "rp-race", amount=20000, count=100)
    assert packet["remaining_amount"] == 20000 and packet["remaining_count"] == 100

    answers = await asyncio.gather(*(
        client.post(f"/v1/red_packets/{packet['id']}/grabs", {"user": uid}) for uid in grabbers))
    won = [a for a in answers if a.status == 201]
    lost = [a for a in answers if a.status != 201]
    assert len(won) == 100
    for a in lost:
        assert_error(a, 409, "red_packet_empty")
    assert sum(a.body["amount"] for a in won) == 20000
    assert all(a.body["amount"] >= 1 for a in won)

    again = await client.post(f"/v1/red_packets/{packet['id']}/grabs",
                              {"user": won[0].body["user"]})
    assert again.status == 200 and again.body["id"] == won[0].body["id"]
    assert again.body["amount"] == won[0].body["amount"]

    final = await settled_payouts(client, packet["id"])
    assert final["status"] == "finished" and final["remaining_amount"] == 0
    grabs = final["grabs"]
    assert len(grabs) == 100 and sum(g["amount"] for g in grabs) == 20000
    assert all(g["payout"]["status"] == "succeeded" for g in grabs)
    best = max(grabs, key=lambda g: g["amount"])
    assert final["best_luck"] == best["user"]
    assert [g["best_luck"] for g in grabs].count(True) == 1
    payout = await client.get(f"/v1/payouts/{grabs[0]['payout']['id']}")
    assert payout.status == 200 and payout.body["amount"] == grabs[0]["amount"]
    assert payout.body["payee"] == {"user": grabs[0]["user"]}


async def test_two_times_mean_bounds_each_share(social_gateway: Gateway) -> None:
    client, _ = await social_gateway.merchant()
    await user(client, "alice")
    grabbers = await users(client, 10)
    packet = await open_packet(client, "rp-bounds", amount=1000, count=10)
    remaining, left = 1000, 10
    for uid in grabbers:
        got = await client.post(f"/v1/red_packets/{packet['id']}/grabs", {"user": uid})
        assert got.status == 201, got.body
        share = got.body["amount"]
        if left > 1:
            assert 1 <= share <= min(2 * remaining // left, remaining - (left - 1))
        else:
            assert share == remaining
        remaining, left = remaining - share, left - 1
    assert remaining == 0


async def test_equal_split(social_gateway: Gateway) -> None:
    client, _ = await social_gateway.merchant()
    await user(client, "alice")
    grabbers = await users(client, 4)
    packet = await open_packet(client, "rp-equal", amount=400, count=4, split="equal")
    shares = await asyncio.gather(*(
        client.post(f"/v1/red_packets/{packet['id']}/grabs", {"user": u}) for u in grabbers))
    assert [s.body["amount"] for s in shares] == [100] * 4
    final = await settled_payouts(client, packet["id"])
    # Best luck among equals is the earliest grab (the grabs are listed in grab order).
    assert final["best_luck"] == final["grabs"][0]["user"]


@pytest.mark.parametrize(("change", "param"), [
    ({"count": 0}, "count"), ({"count": 101}, "count"), ({"amount": 20001}, "amount"),
    ({"amount": 5, "count": 10}, "amount"),
    ({"amount": 1000, "count": 3, "split": "equal"}, "amount"),
    ({"currency": "USD"}, "currency"), ({"funding": {"scene": "nope"}}, "funding.scene"),
])
async def test_bad_packets_are_refused_and_write_nothing(
        social_gateway: Gateway, change: dict[str, Any], param: str) -> None:
    client, _ = await social_gateway.merchant()
    await user(client, "alice")
    bad = await client.post("/v1/red_packets", {**packet_body("rp-bad"), **change})
    assert_error(bad, 422, "validation_error", param=param)
    good = await client.post("/v1/red_packets", packet_body("rp-bad"))
    assert good.status == 201, good.body  # nothing was written under the natural key


async def test_real_name_gate(social_gateway: Gateway) -> None:
    client, _ = await social_gateway.merchant()
    await user(client, "alice", verified=False)
    refused = await client.post("/v1/red_packets", packet_body("rp-gate"))
    assert_error(refused, 403, "real_name_required", param="sender")
    unknown = await client.post("/v1/red_packets", packet_body("rp-gate", sender="nobody"))
    assert_error(unknown, 422, "unknown_user", param="sender")
    await user(client, "alice")
    await user(client, "mallory", verified=False)
    packet = await open_packet(client, "rp-gate")
    grab = await client.post(f"/v1/red_packets/{packet['id']}/grabs", {"user": "mallory"})
    assert_error(grab, 403, "real_name_required", param="user")


async def test_not_open_and_other_merchants(social_gateway: Gateway) -> None:
    client, _ = await social_gateway.merchant()
    other, _ = await social_gateway.merchant("Other")
    await user(client, "alice")
    await user(client, "bob")
    declined = await client.post("/v1/red_packets", packet_body(
        "rp-declined", funding={"scene": "quickpay", "method": "instant",
                                "payer": {"auth_code": "134567890123456782"}}))
    assert declined.status == 201 and declined.body["payment"]["status"] == "failed"
    assert declined.body["status"] == "canceled"
    grab = await client.post(f"/v1/red_packets/{declined.body['id']}/grabs", {"user": "bob"})
    assert_error(grab, 409, "red_packet_not_open")
    packet = await open_packet(client, "rp-mine")
    await user(other, "bob")
    theirs = await other.post(f"/v1/red_packets/{packet['id']}/grabs", {"user": "bob"})
    assert_error(theirs, 404, "not_found")
    assert (await other.get(f"/v1/red_packets/{packet['id']}")).status == 404


async def test_expiry_refunds_the_rest_exactly_once(social_gateway: Gateway) -> None:
    client, _ = await social_gateway.merchant()
    await user(client, "alice")
    *grabbers, late_one = await users(client, 4)
    packet = await open_packet(client, "rp-expire", amount=1000, count=10, expires_in_s=1)
    taken = 0
    for uid in grabbers:
        got = await client.post(f"/v1/red_packets/{packet['id']}/grabs", {"user": uid})
        taken += got.body["amount"]
    seen: dict[str, Any] = {}

    async def expired() -> bool:
        got = await client.get(f"/v1/red_packets/{packet['id']}")
        seen.update(got.body)
        return bool(got.body["status"] == "expired")

    await eventually(expired)
    assert seen["refunded_amount"] == 1000 - taken
    late = await client.post(f"/v1/red_packets/{packet['id']}/grabs", {"user": late_one})
    assert_error(late, 409, "red_packet_expired")

    async def refunded() -> bool:
        pay = await client.get(f"/v1/payments/{seen['payment']['id']}")
        return bool(pay.body["refunded_amount"] == 1000 - taken)

    await eventually(refunded)
    refunds = await client.get(f"/v1/payments/{seen['payment']['id']}/refunds")
    assert len(refunds.body["data"]) == 1


async def test_a_grabs_payout_survives_a_crash_before_it_is_sent(
        redis_url: str, tmp_path: Path, http: aiohttp.ClientSession) -> None:
    """The grab records its payout, due at once, in the same script: a gateway that dies
    right after the grab (here: one without workers, stopped) loses nothing; the next
    gateway's sweeper sends it, once."""
    settings = fast_settings(redis_url, INSTANT_WALLETS, free_port(), str(tmp_path / "d"))
    first = await start_gateway(settings, http, background=False)
    client, _ = await first.merchant()
    await user(client, "alice")
    await user(client, "bob")
    packet = await open_packet(client, "rp-crash", amount=500, count=1)
    grab = await client.post(f"/v1/red_packets/{packet['id']}/grabs", {"user": "bob"})
    assert grab.status == 201 and grab.body["amount"] == 500
    payout = await client.get(f"/v1/payouts/{grab.body['payout']['id']}")
    assert payout.body["status"] == "processing"
    await first.close()

    second = await start_gateway(
        fast_settings(redis_url, INSTANT_WALLETS, free_port(), str(tmp_path / "d")), http)
    try:
        again = Client(http, second.base, client.token)

        async def paid() -> bool:
            got = await again.get(f"/v1/payouts/{grab.body['payout']['id']}")
            return bool(got.body["status"] == "succeeded")

        await eventually(paid)
    finally:
        await second.close()


async def test_expiry_workers_racing_refund_once(redis_url: str, tmp_path: Path,
                                                 http: aiohttp.ClientSession) -> None:
    settings = fast_settings(redis_url, INSTANT_WALLETS, free_port(), str(tmp_path / "d"))
    gw = await start_gateway(settings, http, background=False)
    try:
        client, _ = await gw.merchant()
        await user(client, "alice")
        packet = await open_packet(client, "rp-race-expiry", amount=900, count=3,
                                   expires_in_s=1)
        worker = gw.services.social.worker

        async def expired() -> bool:
            await asyncio.gather(*(worker.work(packet["id"]) for _ in range(8)))
            got = await client.get(f"/v1/red_packets/{packet['id']}")
            return bool(got.body["status"] == "expired")

        await eventually(expired)
        await asyncio.gather(*(worker.work(packet["id"]) for _ in range(8)))
        refunds = await client.get(f"/v1/payments/{packet['payment']['id']}/refunds")
        assert [r["amount"] for r in refunds.body["data"]] == [900]
    finally:
        await gw.close()
