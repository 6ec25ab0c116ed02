"""Profit sharing (API.md, "Service providers and sub-merchants"): the ratio cap under
concurrent splits, refusals that write nothing, receivers, the natural key, a refusal
that frees the cap, and a refund that takes shared money back first; end to end on the
WeChat Pay simulator (`/v3/profitsharing/orders`, `/return-orders`)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.asserts import assert_error
from tests.conftest import Sim
from tests.helpers import Client, Gateway, eventually, payment_body
from tests.partners import (
    SP_MCHID_ACCOUNT,
    acting,
    instant_partners,
    provider,
    sub_merchant,
    wechat_partners,
)

pytestmark = pytest.mark.both_topologies
__all__ = ["instant_partners", "wechat_partners"]


async def shop_with_payment(gw: Gateway, amount: int = 10000, **sub: Any
                            ) -> tuple[Client, dict[str, Any], dict[str, Any], dict[str, Any]]:
    """A provider acting for its sub-merchant, with a paid payment (the `instant`
    stand-in pays at once); also the provider and the sub-merchant."""
    sp, sp_body = await provider(gw)
    merchant = await sub_merchant(sp, "1900000101", **sub)
    shop = acting(sp, merchant["id"])
    paid = await shop.post("/v1/payments", payment_body("pay-1", amount=amount,
                                                        method="wechatpay"))
    assert paid.status == 201 and paid.body["status"] == "succeeded", paid.body
    return shop, paid.body, sp_body, merchant


def to_provider(sp_id: str, amount: int) -> dict[str, Any]:
    return {"type": "service_provider", "id": sp_id, "amount": amount}


async def test_the_cap_holds_under_20_concurrent_splits(instant_partners: Gateway) -> None:
    shop, payment, sp, _ = await shop_with_payment(instant_partners)
    answers = await asyncio.gather(*(
        shop.post(f"/v1/payments/{payment['id']}/splits",
                  {"out_split_no": f"s-{i}", "receivers": [to_provider(sp["id"], 700)]})
        for i in range(20)))
    made = [a for a in answers if a.status == 201]
    assert len(made) == 4  # 4 × 700 = 2800 ≤ 30 % of 10000 < 5 × 700
    for refused in (a for a in answers if a.status != 201):
        assert_error(refused, 422, "split_exceeds_cap", param="receivers")
    assert all(a.body["status"] == "succeeded" and a.body["object"] == "split" for a in made)
    listed = await shop.get(f"/v1/payments/{payment['id']}/splits")
    assert sum(s["amount"] for s in listed.body["data"]) == 2800
    last = await shop.post(f"/v1/payments/{payment['id']}/splits",
                           {"out_split_no": "s-last", "receivers": [to_provider(sp["id"], 200)]})
    assert last.status == 201, last.body
    got = await shop.get(f"/v1/splits/{last.body['id']}")
    assert got.status == 200 and got.body == last.body


async def test_over_the_cap_or_bad_receivers_write_nothing(instant_partners: Gateway,
                                                           redis_client: Any) -> None:
    shop, payment, sp, merchant = await shop_with_payment(instant_partners,
                                                          max_split_bp=2000)
    path = f"/v1/payments/{payment['id']}/splits"
    before = sorted(await redis_client.keys("*spl*"))
    over = await shop.post(path, {"out_split_no": "s-1", "receivers": [
        to_provider(sp["id"], 1500), {"type": "merchant", "id": merchant["id"], "amount": 501}]})
    assert_error(over, 422, "validation_error", param="receivers[1].id")  # not itself
    over = await shop.post(path, {"out_split_no": "s-1",
                                  "receivers": [to_provider(sp["id"], 2001)]})
    assert_error(over, 422, "split_exceeds_cap", param="receivers")  # its own cap: 20 %
    for receivers, status, code, param in (
            ([{"type": "merchant", "id": "mch_0000000000000000", "amount": 1}], 422,
             "validation_error", "receivers[0].id"),
            ([{"type": "service_provider", "id": "sp_someone_else", "amount": 1}], 422,
             "validation_error", "receivers[0].id"),
            ([{"type": "user", "id": "nobody", "amount": 1}], 422, "unknown_user",
             "receivers[0].id"),
            ([to_provider(sp["id"], 1), to_provider(sp["id"], 1)], 422, "validation_error",
             "receivers[1]"),
            ([], 422, "validation_error", "receivers")):
        bad = await shop.post(path, {"out_split_no": "s-2", "receivers": receivers})
        assert_error(bad, status, code, param=param)
    assert sorted(await redis_client.keys("*spl*")) == before
    assert await redis_client.hget(f"{{{int(payment['id'][4:6], 16)}}}p:{payment['id']}",
                                   "sh") is None
    fits = await shop.post(path, {"out_split_no": "s-1",
                                  "receivers": [to_provider(sp["id"], 2000)]})
    assert fits.status == 201, fits.body


async def test_unknown_sub_merchant_in_the_header_is_404(instant_partners: Gateway) -> None:
    shop, payment, sp, _ = await shop_with_payment(instant_partners)
    stranger = acting(shop, "mch_0000000000000000")
    reply = await stranger.post(f"/v1/payments/{payment['id']}/splits", {
        "out_split_no": "s-1", "receivers": [to_provider(sp["id"], 1)]})
    assert_error(reply, 404, "not_found")


async def test_receivers_resolve_to_accounts(instant_partners: Gateway) -> None:
    sp, sp_body = await provider(instant_partners)
    home = await sub_merchant(sp, "1900000101")
    store = await sub_merchant(sp, "1900000103")
    shop = acting(sp, home["id"])
    for uid, verified in (("alice", True), ("bob", False)):
        body: dict[str, Any] = {"wallets": {"wechatpay": {"openid": f"o-{uid}"}},
                                "real_name": {"status": "unverified"}}
        if verified:
            body["real_name"] = {"status": "verified", "method": "id_card", "name": "张三"}
        assert (await shop.request("PUT", f"/v1/users/{uid}", body)).status == 200
    paid = await shop.post("/v1/payments", payment_body("pay-r", amount=10000,
                                                        method="wechatpay"))
    path = f"/v1/payments/{paid.body['id']}/splits"
    unverified = await shop.post(path, {"out_split_no": "s-0", "receivers": [
        {"type": "user", "id": "bob", "amount": 100}]})
    assert_error(unverified, 403, "real_name_required", param="receivers[0].id")
    split = await shop.post(path, {"out_split_no": "s-1", "receivers": [
        to_provider(sp_body["id"], 1000), {"type": "merchant", "id": store["id"], "amount": 800},
        {"type": "user", "id": "alice", "amount": 700}]})
    assert split.status == 201, split.body
    assert split.body["status"] == "succeeded" and split.body["amount"] == 2500
    assert split.body["receivers"][2] == {"type": "user", "id": "alice", "amount": 700}
    assert SP_MCHID_ACCOUNT not in split.raw.decode()  # accounts are the rail's business


async def test_repeat_out_split_no(instant_partners: Gateway) -> None:
    shop, payment, sp, _ = await shop_with_payment(instant_partners)
    path = f"/v1/payments/{payment['id']}/splits"
    body = {"out_split_no": "s-1", "receivers": [to_provider(sp["id"], 500)]}
    first = await shop.post(path, body)
    again = await shop.post(path, body)
    assert first.status == 201 and again.status == 200
    assert again.body["id"] == first.body["id"]
    clash = await shop.post(path, {**body, "receivers": [to_provider(sp["id"], 501)]})
    assert_error(clash, 409, "out_split_no_used", param="out_split_no")
    keyed = await shop.post(path, {**body, "out_split_no": "s-2"},
                            headers={"Idempotency-Key": "sk-1"})
    replay = await shop.post(path, {**body, "out_split_no": "s-2"},
                             headers={"Idempotency-Key": "sk-1"})
    assert replay.raw == keyed.raw and replay.headers["Idempotent-Replayed"] == "true"


async def test_a_refusal_frees_the_cap(instant_partners: Gateway) -> None:
    shop, payment, _, _ = await shop_with_payment(instant_partners)
    frozen = {"wallets": {"wechatpay": {"openid": "o-frozen-2"}},
              "real_name": {"status": "verified", "method": "phone", "name": "李四"}}
    assert (await shop.request("PUT", "/v1/users/frozen", frozen)).status == 200
    path = f"/v1/payments/{payment['id']}/splits"
    refused = await shop.post(path, {"out_split_no": "s-1", "receivers": [
        {"type": "user", "id": "frozen", "amount": 3000}]})
    assert refused.status == 201 and refused.body["status"] == "failed", refused.body
    assert refused.body["failure"]["code"] == "NO_RELATION"
    alice = {**frozen, "wallets": {"wechatpay": {"openid": "o-alice"}}}
    assert (await shop.request("PUT", "/v1/users/alice", alice)).status == 200
    whole = await shop.post(path, {"out_split_no": "s-2", "receivers": [
        {"type": "user", "id": "alice", "amount": 3000}]})
    assert whole.status == 201 and whole.body["status"] == "succeeded", whole.body


async def test_a_refund_takes_shared_money_back_first(instant_partners: Gateway,
                                                      redis_client: Any) -> None:
    shop, payment, sp, _ = await shop_with_payment(instant_partners)
    pid = payment["id"]
    split = await shop.post(f"/v1/payments/{pid}/splits", {
        "out_split_no": "s-1", "receivers": [to_provider(sp["id"], 3000)]})
    assert split.status == 201 and split.body["status"] == "succeeded"
    within = await shop.post(f"/v1/payments/{pid}/refunds",
                             {"amount": 7000, "out_refund_no": "r-1"})
    assert within.status == 201 and within.body["status"] == "succeeded"
    assert (await shop.get(f"/v1/splits/{split.body['id']}")).body["returned_amount"] == 0
    # 3000 are left with the merchant... none: all 3000 not refunded are shared.
    needs = await shop.post(f"/v1/payments/{pid}/refunds",
                            {"amount": 1000, "out_refund_no": "r-2"})
    assert needs.status == 201 and needs.body["status"] == "succeeded", needs.body
    assert (await shop.get(f"/v1/splits/{split.body['id']}")).body["returned_amount"] == 1000
    # The cap now counts what is left: 30 % of 2000 = 600 < 2000 still shared.
    more = await shop.post(f"/v1/payments/{pid}/splits", {
        "out_split_no": "s-2", "receivers": [to_provider(sp["id"], 1)]})
    assert_error(more, 422, "split_exceeds_cap", param="receivers")
    rest = await shop.post(f"/v1/payments/{pid}/refunds",
                           {"amount": 2000, "out_refund_no": "r-3"})
    assert rest.status == 201 and rest.body["status"] == "succeeded", rest.body
    final = await shop.get(f"/v1/payments/{pid}")
    assert final.body["status"] == "refunded" and final.body["refunded_amount"] == 10000
    assert (await shop.get(f"/v1/splits/{split.body['id']}")).body["returned_amount"] == 3000
    shard = int(pid[4:6], 16)
    assert await redis_client.hget(f"{{{shard}}}p:{pid}", "sh") == b"0"


async def test_split_and_return_on_wechat(wechat_partners: Gateway, wechat_sim: Sim) -> None:
    sp, sp_body = await provider(wechat_partners)
    merchant = await sub_merchant(sp, "1900000109")
    shop = acting(sp, merchant["id"])
    native = await shop.post("/v1/payments", payment_body("w-1", amount=10000,
                                                          scene="native", method="wechatpay"))
    pid = native.body["id"]
    paid = await shop.post(f"/v1/sandbox/payments/{pid}/pay")
    assert paid.body["status"] == "succeeded", paid.body
    split = await shop.post(f"/v1/payments/{pid}/splits", {
        "out_split_no": "w-s1", "receivers": [to_provider(sp_body["id"], 3000)]})
    assert split.status == 201 and split.body["status"] == "processing", split.body
    # The 3000 shared are still being split: a refund that needs them must wait.
    early = await shop.post(f"/v1/payments/{pid}/refunds",
                            {"amount": 8000, "out_refund_no": "w-r1"})
    assert_error(early, 409, "invalid_state")
    within = await shop.post(f"/v1/payments/{pid}/refunds",
                             {"amount": 7000, "out_refund_no": "w-r0"})
    assert within.status == 201, within.body

    async def shared() -> bool:
        got = await shop.get(f"/v1/splits/{split.body['id']}")
        return bool(got.body["status"] == "succeeded")

    await eventually(shared)  # WeChat finishes a split later: the sweeper asks
    rail_no = split.body["id"].replace("_", "")
    row = (await wechat_sim.ledger())["splits"][f"1900000109/{rail_no}"]  # a partner split
    assert row["receivers"] == [{"type": "MERCHANT_ID", "account": SP_MCHID_ACCOUNT,
                                 "amount": 3000, "result": "SUCCESS", "returned": 0}]
    refund = await shop.post(f"/v1/payments/{pid}/refunds",
                             {"amount": 1000, "out_refund_no": "w-r1"})
    assert refund.status == 201, refund.body

    async def refunded() -> bool:
        got = await shop.get(f"/v1/refunds/{refund.body['id']}")
        return bool(got.body["status"] == "succeeded")

    await eventually(refunded)
    got = await shop.get(f"/v1/splits/{split.body['id']}")
    assert got.body["returned_amount"] == 1000
    row = (await wechat_sim.ledger())["splits"][f"1900000109/{rail_no}"]
    assert row["returned"] == 1000  # taken back at the rail before the refund went out


async def test_a_direct_merchant_shares_with_its_users(wechat_partners: Gateway) -> None:
    client, _ = await wechat_partners.merchant()
    alice = {"wallets": {"wechatpay": {"openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS61"}},
             "real_name": {"status": "verified", "method": "id_card", "name": "张三"}}
    assert (await client.request("PUT", "/v1/users/alice", alice)).status == 200
    native = await client.post("/v1/payments", payment_body("d-1", amount=1000, scene="native",
                                                            method="wechatpay"))
    pid = native.body["id"]
    assert (await client.post(f"/v1/sandbox/payments/{pid}/pay")).body["status"] == "succeeded"
    path = f"/v1/payments/{pid}/splits"
    provider_receiver = await client.post(path, {"out_split_no": "d-s0", "receivers": [
        {"type": "service_provider", "id": "sp_x", "amount": 1}]})
    assert_error(provider_receiver, 422, "validation_error", param="receivers[0].id")
    over = await client.post(path, {"out_split_no": "d-s1", "receivers": [
        {"type": "user", "id": "alice", "amount": 301}]})
    assert_error(over, 422, "split_exceeds_cap", param="receivers")  # default: 30 %
    split = await client.post(path, {"out_split_no": "d-s1", "receivers": [
        {"type": "user", "id": "alice", "amount": 300}]})
    assert split.status == 201 and "service_provider" not in split.body, split.body

    async def shared() -> bool:
        got = await client.get(f"/v1/splits/{split.body['id']}")
        return bool(got.body["status"] == "succeeded")

    await eventually(shared)


async def test_a_receiver_the_rail_closes_is_not_shared(wechat_partners: Gateway,
                                                        wechat_sim: Sim,
                                                        redis_client: Any) -> None:
    """A merchant account ending in 2 is frozen at the simulator: WeChat finishes the split
    with that receiver CLOSED. Only the other share is shared, journaled and returnable;
    the closed one goes back to the cap."""
    sp, sp_body = await provider(wechat_partners)
    merchant = await sub_merchant(sp, "1900000109")
    frozen = await sub_merchant(sp, "1900000102", name="Frozen")
    shop = acting(sp, merchant["id"])
    native = await shop.post("/v1/payments", payment_body("c-1", amount=10000,
                                                          scene="native", method="wechatpay"))
    pid = native.body["id"]
    assert (await shop.post(f"/v1/sandbox/payments/{pid}/pay")).body["status"] == "succeeded"
    split = await shop.post(f"/v1/payments/{pid}/splits", {"out_split_no": "c-s1", "receivers": [
        to_provider(sp_body["id"], 1000),
        {"type": "merchant", "id": frozen["id"], "amount": 2000}]})
    assert split.status == 201, split.body

    async def shared() -> bool:
        got = await shop.get(f"/v1/splits/{split.body['id']}")
        return bool(got.body["status"] == "succeeded")

    await eventually(shared)
    assert (await shop.get(f"/v1/splits/{split.body['id']}")).body["amount"] == 1000
    assert await redis_client.hget(f"{{{int(pid[4:6], 16)}}}p:{pid}", "sh") == b"1000"
    journaled: list[int] = []

    async def chained() -> bool:
        got = await shop.get("/v1/journal?limit=100")
        journaled[:] = [e["amount"] for e in got.body["data"] if e["kind"] == "split"]
        return bool(journaled)

    await eventually(chained)
    assert journaled == [1000]
    rest = await shop.post(f"/v1/payments/{pid}/splits", {"out_split_no": "c-s2", "receivers": [
        to_provider(sp_body["id"], 2000)]})  # 1000 + 2000 fit the 3000 cap again
    assert rest.status == 201, rest.body
