"""Payouts through the gateway to each rail's simulator (API.md, "Payouts"): paid,
refused for good, and unknown (the answer lost, settled by the sweeper's query), each
paid at most once in the rail's ledger; the real name carried from 2,000.00 CNY."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Sim
from tests.helpers import Client, Gateway, eventually

# A payee identity per rail, by the last character that picks the simulator's outcome.
PAYEES = {
    "wechatpay": lambda last: {"openid": f"oUpF8uMuAJO_M2pxb1Q9zNjWeS6{last}"},
    "alipay": lambda last: {"alipay_user_id": f"208810217784688{last}"},
    "bank": lambda last: {"bank_account": f"622202100011122{last}"},
}


def rail_no(payout_id: str) -> str:
    return payout_id.replace("_", "")


async def settled(client: Client, pid: str) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    async def ended() -> bool:
        got = await client.get(f"/v1/payouts/{pid}")
        seen.update(got.body)
        return bool(got.body["status"] != "processing")

    await eventually(ended, timeout=15.0)
    return seen


def sim_of(rail: str, bank_sim: Sim, wechat_sim: Sim, alipay_sim: Sim) -> Sim:
    return {"bank": bank_sim, "wechatpay": wechat_sim, "alipay": alipay_sim}[rail]


@pytest.mark.parametrize("rail", ["wechatpay", "alipay", "bank"])
async def test_each_outcome_on_each_rail(wallet_gateway: Gateway, bank_sim: Sim,
                                         wechat_sim: Sim, alipay_sim: Sim, rail: str) -> None:
    client, _ = await wallet_gateway.merchant()
    sim = sim_of(rail, bank_sim, wechat_sim, alipay_sim)
    body = {"amount": 1234, "currency": "CNY", "description": "Prize", "method": rail}
    outcomes = {}
    for last, name in (("1", "paid"), ("2", "refused"), ("9", "unknown")):
        made = await client.post("/v1/payouts", {**body, "out_payout_no": f"{rail}-{name}",
                                                 "payee": PAYEES[rail](last)})
        assert made.status == 201, made.body
        if name == "unknown":
            # Unknown is not failed: processing, or paid already if the rail's
            # notification came while the lost answer was awaited.
            assert made.body["status"] in ("processing", "succeeded"), made.body
        outcomes[name] = await settled(client, made.body["id"])
        again = await client.post("/v1/payouts", {**body, "out_payout_no": f"{rail}-{name}",
                                                  "payee": PAYEES[rail](last)})
        assert again.status == 200 and again.body["id"] == made.body["id"]
    assert outcomes["paid"]["status"] == "succeeded"
    assert outcomes["unknown"]["status"] == "succeeded"
    assert outcomes["refused"]["status"] == "failed"
    assert outcomes["refused"]["failure"]["code"] == "ACCOUNT_FROZEN"
    ledger = (await sim.ledger())["payouts"]
    for name in ("paid", "unknown"):
        row = ledger[rail_no(outcomes[name]["id"])]
        assert row["payouts"] == 1 and row["paid"] == 1234, row
    refused = ledger.get(rail_no(outcomes["refused"]["id"]))
    assert refused is None or refused["paid"] == 0


async def test_large_payout_carries_the_verified_name(wallet_gateway: Gateway,
                                                      wechat_sim: Sim) -> None:
    client, _ = await wallet_gateway.merchant()
    openid = "oUpF8uMuAJO_M2pxb1Q9zNjWeS71"
    async with wechat_sim.session.post(f"{wechat_sim.base_url}/sim/payees",
                                       json={"id": openid, "name": "张三"}) as resp:
        assert resp.status == 200
    for uid, name in (("right", "张三"), ("wrong", "李四")):
        put = await client.request("PUT", f"/v1/users/{uid}", {
            "wallets": {"wechatpay": {"openid": openid}},
            "real_name": {"status": "verified", "method": "bank_card", "name": name}})
        assert put.status == 200, put.body
    body = {"amount": 250_000, "currency": "CNY", "description": "Refund of deposit"}
    right = await client.post("/v1/payouts", {**body, "out_payout_no": "big-1",
                                              "payee": {"user": "right"}})
    wrong = await client.post("/v1/payouts", {**body, "out_payout_no": "big-2",
                                              "payee": {"user": "wrong"}})
    assert right.status == 201 and wrong.status == 201, (right.body, wrong.body)
    assert (await settled(client, right.body["id"]))["status"] == "succeeded"
    failed = await settled(client, wrong.body["id"])
    assert failed["status"] == "failed" and failed["failure"]["code"] == "NAME_NOT_CORRECT"
    assert "李四" not in str(failed)
