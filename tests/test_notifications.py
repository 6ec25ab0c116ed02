"""The bank's signed notifications to /v1/notify/bank: genuine ones settle payments,
forged, tampered, stale or unknown ones change nothing, duplicates are harmless, and a
lost one is made up for by the sweeper's query."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
import redis.asyncio as aioredis

from adapters.bank import protocol
from router.store import codec, keys
from tests.asserts import rail_order
from tests.conftest import BankSim, gateway_settings
from tests.helpers import Client, Gateway, eventually, payment_body, start_gateway
from tests.receiver import Receiver, webhook_receiver

# The whole module also runs on Redis Cluster (conftest.py).
pytestmark = pytest.mark.both_topologies


@pytest.fixture
async def quiet_gateway(redis_url: str, bank_sim: BankSim, tmp_path: Path,
                        http: aiohttp.ClientSession) -> AsyncIterator[Gateway]:
    """A gateway without sweeper or webhook workers: only a notification (or a call the
    test makes) can move a payment, and outbox events stay in the stream to be counted."""
    gw = await start_gateway(gateway_settings(redis_url, bank_sim, tmp_path), http,
                             background=False)
    yield gw
    await gw.close()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with webhook_receiver() as r:
        yield r


# --------------------------------------------------------------------------- helpers
async def native_payment(client: Client, otn: str, **extra: Any) -> dict[str, Any]:
    created = await client.post("/v1/payments", payment_body(otn, scene="native", **extra))
    assert created.status == 201, created.body
    assert created.body["status"] == "requires_action"
    body: dict[str, Any] = created.body
    return body


async def sim_pay(bank_sim: BankSim, order_no: str) -> None:
    """The simulated payer pays (the simulator's own control, not the gateway's)."""
    async with bank_sim.session.post(f"{bank_sim.base_url}/sim/orders/{order_no}/pay") as resp:
        assert resp.status == 200, await resp.text()


def order_data(order_no: str, *, amount: int = 1000, status: str = "SUCCESS"
               ) -> dict[str, Any]:
    paid = status == "SUCCESS"
    return {"order_no": order_no, "bank_txn_id": "BT20260101000000000042", "status": status,
            "amount": amount, "currency": "CNY", "charged": amount if paid else 0,
            "refunded": 0, "created_at": "2026-01-01T00:00:00Z",
            **({"paid_at": "2026-01-01T00:00:01Z"} if paid else {})}


def notification(order_no: str, *, event: str = "order.paid", **data: Any) -> bytes:
    body = {"id": f"ntf_{secrets.token_hex(16)}", "event": event,
            "data": order_data(order_no, **data)}
    return json.dumps(body, separators=(",", ":")).encode()


def bank_key(bank_sim: BankSim) -> bytes:
    return bank_sim.runtime.credentials.hmac_key


async def post_notify(gateway: Gateway, body: bytes, headers: dict[str, str],
                      adapter: str = "bank") -> int:
    async with gateway.session.post(f"{gateway.base}/v1/notify/{adapter}", data=body,
                                    headers={**headers, "Content-Type": "application/json"}
                                    ) as resp:
        await resp.read()
        return resp.status


async def status_of(client: Client, pid: str) -> str:
    reply = await client.get(f"/v1/payments/{pid}")
    assert reply.status == 200, reply.body
    status: str = reply.body["status"]
    return status


async def outbox(redis_client: aioredis.Redis, gateway: Gateway) -> list[dict[str, Any]]:
    """Every webhook event waiting in the outbox streams (nothing consumes them here)."""
    events = []
    for shard in range(gateway.settings.redis.shards):
        for _, fields in await redis_client.xrange(keys.outbox(shard)):
            events.append(orjson.loads(codec.unpack(fields[b"b"])))
    return events


async def assert_untouched(client: Client, bank_sim: BankSim, redis_client: aioredis.Redis,
                           gateway: Gateway, payment: dict[str, Any]) -> None:
    assert await status_of(client, payment["id"]) == "requires_action"
    assert await outbox(redis_client, gateway) == []
    order = (await bank_sim.ledger())["orders"][rail_order(payment)]
    assert order["status"] == "WAITING" and order["charges"] == 0


# --------------------------------------------------------------------------- genuine
async def test_simulator_payment_settles_through_notification(
    quiet_gateway: Gateway, bank_sim: BankSim, redis_client: aioredis.Redis
) -> None:
    client, _ = await quiet_gateway.merchant()
    payment = await native_payment(client, "ntf-1")
    await sim_pay(bank_sim, rail_order(payment))
    await bank_sim.runtime.notifications_settled()

    fetched = await client.get(f"/v1/payments/{payment['id']}")
    assert fetched.body["status"] == "succeeded"
    assert fetched.body["rail_reference"]
    events = await outbox(redis_client, quiet_gateway)
    assert [(e["type"], e["data"]["id"]) for e in events] == [
        ("payment.succeeded", payment["id"])]
    order = (await bank_sim.ledger())["orders"][rail_order(payment)]
    assert order["charges"] == 1 and order["charged"] == 1000


async def test_failed_notification_settles_failed(
    quiet_gateway: Gateway, bank_sim: BankSim, redis_client: aioredis.Redis
) -> None:
    client, _ = await quiet_gateway.merchant()
    payment = await native_payment(client, "ntf-failed")
    async with bank_sim.session.post(
            f"{bank_sim.base_url}/sim/orders/{rail_order(payment)}/fail") as resp:
        assert resp.status == 200
    await bank_sim.runtime.notifications_settled()
    fetched = await client.get(f"/v1/payments/{payment['id']}")
    assert fetched.body["status"] == "failed"
    assert fetched.body["failure"]["code"] == "CARD_DECLINED"
    events = await outbox(redis_client, quiet_gateway)
    assert [e["type"] for e in events] == ["payment.failed"]


# --------------------------------------------------------------------------- rejected
async def test_forged_notification_is_rejected(
    quiet_gateway: Gateway, bank_sim: BankSim, redis_client: aioredis.Redis
) -> None:
    client, _ = await quiet_gateway.merchant()
    payment = await native_payment(client, "ntf-forged")
    body = notification(rail_order(payment))
    forged = protocol.sign_notification(secrets.token_bytes(32), body, now=time.time())
    assert 400 <= await post_notify(quiet_gateway, body, forged) < 500
    assert 400 <= await post_notify(quiet_gateway, body, {}) < 500  # unsigned
    await assert_untouched(client, bank_sim, redis_client, quiet_gateway, payment)


async def test_tampered_notification_is_rejected(
    quiet_gateway: Gateway, bank_sim: BankSim, redis_client: aioredis.Redis
) -> None:
    client, _ = await quiet_gateway.merchant()
    payment = await native_payment(client, "ntf-tampered")
    genuine = notification(rail_order(payment), event="order.failed", status="FAILED")
    headers = protocol.sign_notification(bank_key(bank_sim), genuine, now=time.time())
    tampered = (genuine.replace(b'"order.failed"', b'"order.paid"')
                .replace(b'"FAILED"', b'"SUCCESS"'))
    assert tampered != genuine
    assert 400 <= await post_notify(quiet_gateway, tampered, headers) < 500
    await assert_untouched(client, bank_sim, redis_client, quiet_gateway, payment)


@pytest.mark.parametrize("skew_s", [-330, -3600, 330])  # beyond the 300 s window, with slack
async def test_stale_notification_is_rejected(
    quiet_gateway: Gateway, bank_sim: BankSim, redis_client: aioredis.Redis, skew_s: int
) -> None:
    client, _ = await quiet_gateway.merchant()
    payment = await native_payment(client, "ntf-stale")
    body = notification(rail_order(payment))
    headers = protocol.sign_notification(bank_key(bank_sim), body, now=time.time() + skew_s)
    assert 400 <= await post_notify(quiet_gateway, body, headers) < 500
    await assert_untouched(client, bank_sim, redis_client, quiet_gateway, payment)
    # Control: the same body signed now is accepted, so only the timestamp was refused.
    fresh = protocol.sign_notification(bank_key(bank_sim), body, now=time.time())
    assert await post_notify(quiet_gateway, body, fresh) == 200
    assert await status_of(client, payment["id"]) == "succeeded"


async def test_notification_for_unknown_order_is_rejected(
    quiet_gateway: Gateway, bank_sim: BankSim, redis_client: aioredis.Redis
) -> None:
    client, _ = await quiet_gateway.merchant()
    payment = await native_payment(client, "ntf-unknown")
    key = bank_key(bank_sim)
    for order_no in ("AAAAAAAAAAAAAAAAAAAAAA_1", "not-ours", rail_order(payment)[:-1] + "7"):
        body = notification(order_no)
        headers = protocol.sign_notification(key, body, now=time.time())
        assert 400 <= await post_notify(quiet_gateway, body, headers) < 500, order_no
    # Genuinely signed and naming our order, but for another amount: not trusted either.
    body = notification(rail_order(payment), amount=1)
    headers = protocol.sign_notification(key, body, now=time.time())
    assert 400 <= await post_notify(quiet_gateway, body, headers) < 500
    # An adapter that does not exist.
    body = notification(rail_order(payment))
    headers = protocol.sign_notification(key, body, now=time.time())
    assert await post_notify(quiet_gateway, body, headers, adapter="nosuchrail") == 404
    await assert_untouched(client, bank_sim, redis_client, quiet_gateway, payment)


# --------------------------------------------------------------------------- duplicates
async def test_duplicate_notification_is_harmless(
    quiet_gateway: Gateway, bank_sim: BankSim, redis_client: aioredis.Redis,
    receiver: Receiver,
) -> None:
    client, _ = await quiet_gateway.merchant()
    payment = await native_payment(client, "ntf-dup", notify_url=receiver.url())
    await bank_sim.faults(duplicate_notify_rate=1.0)  # the bank sends it twice
    await sim_pay(bank_sim, rail_order(payment))
    await bank_sim.runtime.notifications_settled()
    assert await status_of(client, payment["id"]) == "succeeded"
    before = (await client.get(f"/v1/payments/{payment['id']}")).body

    # Once more, freshly signed by the bank, and a late contradicting one.
    key = bank_key(bank_sim)
    again = notification(rail_order(payment))
    assert await post_notify(quiet_gateway, again,
                             protocol.sign_notification(key, again, now=time.time())) == 200
    late = notification(rail_order(payment), event="order.failed", status="FAILED")
    status = await post_notify(quiet_gateway, late,
                               protocol.sign_notification(key, late, now=time.time()))
    assert status < 500

    after = (await client.get(f"/v1/payments/{payment['id']}")).body
    assert after == before
    events = await outbox(redis_client, quiet_gateway)
    assert [(e["type"], e["data"]["id"]) for e in events] == [
        ("payment.succeeded", payment["id"])]

    # The one event goes out once.
    dispatcher = quiet_gateway.services.webhooks
    await quiet_gateway.services.store.outbox.ensure_groups()
    assert await dispatcher.read_new() == 1
    delivery = await receiver.next()
    assert delivery.event["type"] == "payment.succeeded"
    assert delivery.event["id"] == events[0]["id"]
    assert receiver.queue.empty()
    order = (await bank_sim.ledger())["orders"][rail_order(payment)]
    assert order["charges"] == 1


# --------------------------------------------------------------------------- lost
async def test_dropped_notification_is_made_up_by_query(
    gateway: Gateway, bank_sim: BankSim, receiver: Receiver
) -> None:
    client, _ = await gateway.merchant()
    await bank_sim.faults(drop_notify_rate=1.0)
    payment = await native_payment(client, "ntf-dropped", notify_url=receiver.url())
    await sim_pay(bank_sim, rail_order(payment))

    async def settled() -> bool:
        return await status_of(client, payment["id"]) == "succeeded"

    await eventually(settled, timeout=10.0)
    delivery = await receiver.next_of("payment.succeeded")
    assert delivery.event["data"]["id"] == payment["id"]
    order = (await bank_sim.ledger())["orders"][rail_order(payment)]
    assert order["charges"] == 1


# --------------------------------------------------------------------------- refunds
async def test_refund_settles_through_notification(
    quiet_gateway: Gateway, bank_sim: BankSim, redis_client: aioredis.Redis
) -> None:
    client, _ = await quiet_gateway.merchant()
    created = await client.post("/v1/payments", payment_body("ntf-refund"))
    assert created.status == 201 and created.body["status"] == "succeeded", created.body
    pid = created.body["id"]
    refund = await client.post(f"/v1/payments/{pid}/refunds",
                               {"amount": 400, "out_refund_no": "r1"})
    assert refund.status == 201, refund.body
    assert refund.body["status"] == "processing"

    # A genuinely signed notice about a refund we never made is refused.
    key = bank_key(bank_sim)
    bogus = json.dumps({"id": "ntf_bogus", "event": "refund.succeeded", "data": {
        "refund_no": "AAAAAAAAAAAAAAAAAAAAAA", "order_no": rail_order(created.body),
        "amount": 400, "status": "SUCCESS", "bank_refund_id": "BR1"}}).encode()
    assert 400 <= await post_notify(quiet_gateway, bogus, protocol.sign_notification(
        key, bogus, now=time.time())) < 500

    # No sweeper runs here: only the bank's refund notification can settle it.
    async def refunded() -> bool:
        reply = await client.get(f"/v1/refunds/{refund.body['id']}")
        return bool(reply.body["status"] == "succeeded")

    await eventually(refunded, timeout=5.0)
    payment = (await client.get(f"/v1/payments/{pid}")).body
    assert payment["status"] == "partially_refunded"
    assert payment["refunded_amount"] == 400
    events = await outbox(redis_client, quiet_gateway)
    assert [e["type"] for e in events] == ["payment.succeeded", "refund.succeeded"]
    order = (await bank_sim.ledger())["orders"][rail_order(created.body)]
    assert order["charged"] == 1000 and order["refunded"] == 400
