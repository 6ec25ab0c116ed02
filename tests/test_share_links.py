"""Pay-for-me links: the payment a requester made, paid by a friend in their own wallet;
exactly one payer, an expiring link, and webhooks that say who paid."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from router.store import keys
from tests.conftest import Sim
from tests.helpers import Client, Gateway
from tests.receiver import Receiver, webhook_receiver

ALIPAY_UA = {"User-Agent": "Mozilla/5.0 (Android) AlipayClient/10.5.90"}
WECHAT_UA = {"User-Agent": "Mozilla/5.0 (Android) MicroMessenger/8.0.50"}
JSON = {"Accept": "application/json"}


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with webhook_receiver() as r:
        yield r


async def _shared(client: Client, otn: str, notify_url: str | None = None
                  ) -> tuple[dict[str, Any], dict[str, Any]]:
    body: dict[str, Any] = {"amount": 990, "currency": "CNY", "out_trade_no": otn,
                            "scene": "native", "method": "wechatpay"}
    if notify_url:
        body["notify_url"] = notify_url
    payment = await client.post("/v1/payments", body)
    assert payment.status == 201 and payment.body["status"] == "requires_action"
    link = await client.post(f"/v1/payments/{payment.body['id']}/share_link")
    assert link.status == 201, link.body
    assert link.body["url"].endswith(f"/s/{link.body['id']}")
    return payment.body, link.body


async def test_a_friend_pays_in_another_wallet_and_the_webhook_says_so(
    wallet_gateway: Gateway, wechat_sim: Sim, alipay_sim: Sim, receiver: Receiver
) -> None:
    client, _ = await wallet_gateway.merchant()
    payment, link = await _shared(client, "share-1", receiver.url())
    opened = await client.get(f"/s/{link['id']}", headers={**ALIPAY_UA, **JSON})
    assert opened.status == 200, opened.body
    assert opened.body["id"] == payment["id"] and opened.body["adapter"] == "alipay"
    first, second = opened.body["attempts"]
    assert first["adapter"] == "wechatpay" and first["failure_code"] == "HANDED_OVER"
    assert second["adapter"] == "alipay" and second["via"] == "share_link"
    assert second["scene"] == "h5" and opened.body["action"]["type"] == "redirect"
    # The requester's QR order was closed at WeChat Pay before Alipay got the payment.
    assert wechat_sim_order(await wechat_sim.ledger(), first["rail_order_no"]) == "CLOSED"

    paid = await client.post(f"/v1/sandbox/payments/{payment['id']}/pay")
    assert paid.body["status"] == "succeeded"
    event = (await receiver.next_of("payment.succeeded")).event
    assert event["data"]["id"] == payment["id"] and event["data"]["adapter"] == "alipay"
    assert event["data"]["attempts"][-1]["via"] == "share_link"
    assert (await alipay_sim.ledger())["totals"]["charges"] == 1
    assert (await wechat_sim.ledger())["totals"]["charges"] == 0


def wechat_sim_order(ledger: dict[str, Any], order_no: str) -> str:
    return str(ledger["orders"][order_no]["status"])


async def test_exactly_one_payer_claims_the_link(wallet_gateway: Gateway) -> None:
    client, _ = await wallet_gateway.merchant()
    payment, link = await _shared(client, "share-2")
    path = client.base + f"/s/{link['id']}"
    async with client.session.get(path, headers={**ALIPAY_UA, **JSON}) as first:
        assert first.status == 200
        cookie = first.cookies["payrouter_link_claim"].value
    second = await client.get(f"/s/{link['id']}", headers={**WECHAT_UA, **JSON})
    assert second.status == 409 and second.body["error"]["code"] == "already_claimed"
    back = await client.get(f"/s/{link['id']}", headers={
        **ALIPAY_UA, **JSON, "Cookie": f"payrouter_link_claim={cookie}"})
    assert back.status == 200 and back.body["id"] == payment["id"]
    assert len(back.body["attempts"]) == 2  # returning does not hand it over again


async def test_a_link_expires(wallet_gateway: Gateway, redis_client: aioredis.Redis) -> None:
    client, _ = await wallet_gateway.merchant()
    _, link = await _shared(client, "share-3")
    shard = keys.shard_of(link["id"])
    assert shard is not None
    key = keys.share_link(shard, link["id"])
    assert 1_790_000 < await redis_client.pttl(key) <= 1_800_000  # 30 min by default
    await redis_client.delete(key)  # what the expiry does when the time comes
    expired = await client.get(f"/s/{link['id']}", headers={**ALIPAY_UA, **JSON})
    assert expired.status == 404 and expired.body["error"]["code"] == "link_expired"
    short = await client.post(f"/v1/payments/{link['payment_id']}/share_link",
                              {"expires_in_s": 5})
    assert short.status == 422 and short.body["error"]["param"] == "expires_in_s"


async def test_the_requester_paid_first(
    wallet_gateway: Gateway, wechat_sim: Sim, alipay_sim: Sim
) -> None:
    client, _ = await wallet_gateway.merchant()
    payment, link = await _shared(client, "share-4")
    order = payment["attempts"][0]["rail_order_no"]
    async with client.session.post(f"{wechat_sim.base_url}/sim/orders/{order}/pay") as resp:
        assert resp.status == 200
    late = await client.get(f"/s/{link['id']}", headers={**ALIPAY_UA, **JSON})
    assert late.status == 409, late.body
    state = await client.get(f"/v1/payments/{payment['id']}")
    assert state.body["status"] == "succeeded" and len(state.body["attempts"]) == 1
    assert (await alipay_sim.ledger())["totals"]["orders"] == 0
    refused = await client.post(f"/v1/payments/{payment['id']}/share_link")
    assert refused.status == 409 and refused.body["error"]["code"] == "invalid_state"
