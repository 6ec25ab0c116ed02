"""Webhooks to merchants, over real HTTP: signed events, retries, dead letters,
redelivery, and takeover of entries a dead worker read but never acknowledged."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import aiohttp
import pytest
import redis.asyncio as aioredis
from msgspec.structs import replace

from router.security import verify_webhook_signature
from router.store import keys
from router.store.outbox import GROUP, Entry
from tests.conftest import BankSim, gateway_settings
from tests.helpers import Client, Gateway, eventually, payment_body, start_gateway
from tests.receiver import HANG, Delivery, Receiver, webhook_receiver

# The whole module also runs on Redis Cluster (conftest.py).
pytestmark = pytest.mark.both_topologies

SECRET = "whsec_test_secret_1"  # what Gateway.merchant() sets


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with webhook_receiver() as r:
        yield r


def assert_signed(delivery: Delivery, secret: str = SECRET) -> None:
    assert verify_webhook_signature(secret, delivery.signature, delivery.body,
                                    now=int(time.time()))


async def paid_payment(client: Client, otn: str, **extra: Any) -> dict[str, Any]:
    created = await client.post("/v1/payments", payment_body(otn, **extra))
    assert created.status == 201, created.body
    assert created.body["status"] == "succeeded"
    body: dict[str, Any] = created.body
    return body


async def dead_ids(gateway: Gateway) -> list[str]:
    reply = await gateway.admin().get("/v1/admin/events/dead")
    assert reply.status == 200, reply.body
    return [item["id"] for item in reply.body["data"]]


# --------------------------------------------------------------------------- delivery
async def test_payment_succeeded_goes_to_notify_url_signed(
    gateway: Gateway, receiver: Receiver
) -> None:
    client, _ = await gateway.merchant()
    payment = await paid_payment(client, "wh-1", notify_url=receiver.url("/pay-hook"))

    delivery = await receiver.next()
    assert delivery.path == "/pay-hook"
    assert delivery.headers["Content-Type"].startswith("application/json")
    assert_signed(delivery)
    event = delivery.event
    assert event["id"].startswith("evt_")
    assert event["type"] == "payment.succeeded"
    assert isinstance(event["created_at"], str) and event["created_at"].endswith("Z")
    data = event["data"]
    assert data["object"] == "payment"
    assert data["id"] == payment["id"]
    assert data["status"] == "succeeded"
    assert data["amount"] == 1000 and data["currency"] == "CNY"
    assert data["out_trade_no"] == "wh-1"
    fetched = await client.get(f"/v1/payments/{payment['id']}")
    assert fetched.body["status"] == data["status"]


async def test_signature_rejects_wrong_secret_and_tampered_body(
    gateway: Gateway, receiver: Receiver
) -> None:
    client, _ = await gateway.merchant()
    await paid_payment(client, "wh-sig", notify_url=receiver.url())
    delivery = await receiver.next()
    now = int(time.time())
    header = delivery.signature
    assert header.startswith("t=") and ",v1=" in header

    assert verify_webhook_signature(SECRET, header, delivery.body, now=now)
    assert not verify_webhook_signature("whsec_some_other_secret", header, delivery.body,
                                        now=now)
    tampered = delivery.body.replace(b'"amount":1000', b'"amount":1')
    assert tampered != delivery.body
    assert not verify_webhook_signature(SECRET, header, tampered, now=now)
    # A captured delivery replayed long after is refused too.
    assert not verify_webhook_signature(SECRET, header, delivery.body, now=now + 3600)


async def test_merchant_default_webhook_url_when_payment_has_none(
    gateway: Gateway, receiver: Receiver
) -> None:
    client, merchant = await gateway.merchant(webhook_url=receiver.url("/default"))
    fetched = await gateway.admin().get(f"/v1/admin/merchants/{merchant['id']}")
    assert fetched.status == 200
    payment = await paid_payment(client, "wh-default")
    assert "notify_url" not in payment

    delivery = await receiver.next()
    assert delivery.path == "/default"
    assert_signed(delivery)
    assert delivery.event["type"] == "payment.succeeded"
    assert delivery.event["data"]["id"] == payment["id"]


async def test_notify_url_wins_over_merchant_default(
    gateway: Gateway, receiver: Receiver
) -> None:
    client, _ = await gateway.merchant(webhook_url=receiver.url("/default"))
    payment = await paid_payment(client, "wh-both", notify_url=receiver.url("/specific"))
    delivery = await receiver.next()
    assert delivery.path == "/specific"
    assert delivery.event["data"]["id"] == payment["id"]


async def test_secret_rotation_signs_with_new_secret(
    gateway: Gateway, receiver: Receiver
) -> None:
    new_secret = "whsec_rotated_secret_2"
    client, _ = await gateway.merchant(webhook_secret=new_secret)
    await paid_payment(client, "wh-rotated", notify_url=receiver.url())
    delivery = await receiver.next()
    assert_signed(delivery, new_secret)
    assert not verify_webhook_signature(SECRET, delivery.signature, delivery.body,
                                        now=int(time.time()))


async def test_refund_succeeded_event(gateway: Gateway, receiver: Receiver) -> None:
    client, _ = await gateway.merchant()
    payment = await paid_payment(client, "wh-refund", notify_url=receiver.url())
    assert (await receiver.next()).event["type"] == "payment.succeeded"

    refund = await client.post(f"/v1/payments/{payment['id']}/refunds",
                               {"amount": 300, "out_refund_no": "r1"})
    assert refund.status == 201, refund.body

    delivery = await receiver.next_of("refund.succeeded", within=8.0)
    assert_signed(delivery)
    event = delivery.event
    assert event["id"].startswith("evt_")
    data = event["data"]
    assert data["object"] == "refund"
    assert data["id"] == refund.body["id"]
    assert data["payment_id"] == payment["id"]
    assert data["amount"] == 300 and data["status"] == "succeeded"
    fetched = await client.get(f"/v1/payments/{payment['id']}")
    assert fetched.body["status"] == "partially_refunded"
    assert fetched.body["refunded_amount"] == 300


# --------------------------------------------------------------------------- retries
async def test_failed_delivery_is_retried_with_same_event_id(
    gateway: Gateway, receiver: Receiver
) -> None:
    receiver.statuses.extend([500])
    client, _ = await gateway.merchant()
    payment = await paid_payment(client, "wh-retry", notify_url=receiver.url())

    first = await receiver.next()
    assert first.answered == 500
    second = await receiver.next()
    assert second.answered == 200
    assert second.event["id"] == first.event["id"]
    assert second.body == first.body  # the same event, byte for byte
    assert second.event["data"]["id"] == payment["id"]
    assert_signed(second)
    assert await dead_ids(gateway) == []


async def test_receiver_timeout_is_retried(gateway: Gateway, receiver: Receiver) -> None:
    receiver.statuses.extend([HANG])  # the first delivery never gets an answer in time
    client, _ = await gateway.merchant()
    await paid_payment(client, "wh-timeout", notify_url=receiver.url())

    first = await receiver.next()
    started = time.monotonic()
    timeout_s = gateway.settings.webhooks.timeout_s
    second = await receiver.next(within=timeout_s + 5.0)
    # Retried once the first try timed out, not while it was still awaiting an answer
    # (here claim_idle_s < timeout_s: the reclaimer must not take the entry in flight).
    assert time.monotonic() - started >= timeout_s * 0.9
    assert second.answered == 200
    assert second.event["id"] == first.event["id"]
    assert second.body == first.body


async def test_redirect_is_not_followed_but_retried(
    gateway: Gateway, receiver: Receiver
) -> None:
    """A 3xx is not a 2xx: following it would turn the POST into a bodiless GET (or send
    the signed event somewhere else), so it counts as a failed delivery."""
    receiver.statuses.extend([302])
    client, _ = await gateway.merchant()
    await paid_payment(client, "wh-redirect", notify_url=receiver.url())

    first = await receiver.next()
    assert (first.method, first.answered) == ("POST", 302)
    second = await receiver.next()
    assert (second.method, second.path) == ("POST", "/hooks")
    assert second.event["id"] == first.event["id"]


async def test_dead_letter_then_admin_redelivery(
    gateway: Gateway, receiver: Receiver
) -> None:
    receiver.default_status = 503
    client, _ = await gateway.merchant()
    await paid_payment(client, "wh-dead", notify_url=receiver.url())

    tries = len(gateway.settings.webhooks.retry_schedule_s) + 1
    failed = [await receiver.next(within=8.0) for _ in range(tries)]
    eid = failed[0].event["id"]
    assert {d.event["id"] for d in failed} == {eid}
    assert all(d.answered == 503 for d in failed)

    async def parked() -> bool:
        return eid in await dead_ids(gateway)

    await eventually(parked, timeout=5.0)
    assert receiver.queue.empty()  # parked: no more tries on its own

    admin = gateway.admin()
    unknown = await admin.post("/v1/admin/events/evt_0000000000000000000000/redeliver")
    assert unknown.status == 404
    assert unknown.body["error"]["code"] == "not_found"
    merchant_client, _ = await gateway.merchant("Other")
    refused = await merchant_client.post(f"/v1/admin/events/{eid}/redeliver")
    assert refused.status == 401

    receiver.default_status = 200  # the merchant fixed its endpoint
    replay = await admin.post(f"/v1/admin/events/{eid}/redeliver")
    assert replay.status == 202, replay.body
    delivered = await receiver.next(within=5.0)
    assert delivered.answered == 200
    assert delivered.event["id"] == eid
    assert delivered.body == failed[0].body
    assert_signed(delivered)
    assert eid not in await dead_ids(gateway)


# --------------------------------------------------------------------------- takeover
async def test_entry_of_dead_worker_is_reclaimed(
    redis_url: str, redis_client: aioredis.Redis, bank_sim: BankSim, tmp_path: Path,
    http: aiohttp.ClientSession, receiver: Receiver,
) -> None:
    gw = await start_gateway(gateway_settings(redis_url, bank_sim, tmp_path), http,
                             background=False)
    stop = asyncio.Event()
    task: asyncio.Task[None] | None = None
    try:
        dispatcher = gw.services.webhooks
        await gw.services.store.outbox.ensure_groups()
        client, _ = await gw.merchant()
        payment = await paid_payment(client, "wh-dead-worker", notify_url=receiver.url())
        stream = keys.outbox(keys.shard_of(payment["id"]) or 0)

        # A worker reads the entry, then dies before delivering or acknowledging it.
        reply = cast(list[Any], await redis_client.xreadgroup(
            GROUP, "dead-worker", {stream: ">"}, count=10))
        assert len(reply) == 1
        _, entries = reply[0]
        assert len(entries) == 1
        _, fields = entries[0]
        eid = fields[b"e"].decode()
        read_at = time.monotonic()

        task = asyncio.create_task(dispatcher.run(stop))
        delivery = await receiver.next(within=8.0)
        waited = time.monotonic() - read_at
        assert delivery.event["id"] == eid
        assert delivery.event["type"] == "payment.succeeded"
        assert delivery.event["data"]["id"] == payment["id"]
        assert_signed(delivery)
        # Taken over only once the entry had been idle for claim_idle_s.
        assert waited >= gw.settings.webhooks.claim_idle_s * 0.9

        async def acknowledged() -> bool:
            pending = await redis_client.xpending(stream, GROUP)
            return int(pending["pending"]) == 0

        await eventually(acknowledged, timeout=5.0)
        assert receiver.queue.empty()
    finally:
        stop.set()
        if task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(task, 5.0)
        await gw.close()


async def test_reads_rotate_over_every_shard(
    redis_url: str, bank_sim: BankSim, tmp_path: Path, http: aiohttp.ClientSession,
    receiver: Receiver,
) -> None:
    """A read covers only `shards_per_read` outbox streams; rotating, it still reaches
    every shard's events."""
    settings = gateway_settings(redis_url, bank_sim, tmp_path)
    settings = replace(settings, webhooks=replace(settings.webhooks, shards_per_read=3))
    gw = await start_gateway(settings, http)
    try:
        paid: set[str] = set()
        shards: set[int] = set()
        for n in range(12):
            client, _ = await gw.merchant(f"Shop {n}")
            payment = await paid_payment(client, f"rot-{n}", notify_url=receiver.url())
            paid.add(payment["id"])
            shards.add(keys.shard_of(payment["id"]) or 0)
        assert len(shards) > 3  # more shards than one read covers
        delivered = {(await receiver.next()).event["data"]["id"] for _ in paid}
        assert delivered == paid
    finally:
        await gw.close()


async def test_settling_never_touches_another_event_under_the_same_entry_id(
    redis_url: str, bank_sim: BankSim, tmp_path: Path, http: aiohttp.ClientSession,
) -> None:
    """During a failover a batch can be read from a restarted old master that has not yet
    learnt it was replaced; its entry ids may name other events on the real master.
    Settling such a batch there must neither acknowledge nor delete those events."""
    gw = await start_gateway(gateway_settings(redis_url, bank_sim, tmp_path), http,
                             background=False)  # no worker reads the stream meanwhile
    outbox = gw.services.store.outbox
    link = gw.services.store.link
    stream = keys.outbox(3)
    await link.call("XADD", stream, "5-0", "e", "evt_real", "m", "mch_x", "u", "", "b",
                    b"\x00{}")
    await outbox.ensure_groups()
    await link.call("XREADGROUP", "GROUP", GROUP, "other-consumer", "STREAMS", stream, ">")

    read_elsewhere = Entry(stream, b"5-0", b"evt_stale", "mch_x", "", b"\x00{}")
    await outbox.settle(stream, [(read_elsewhere, True)], 0)
    assert len(await link.call("XRANGE", stream, "5-0", "5-0")) == 1  # still there
    assert (await link.call("XPENDING", stream, GROUP))[0] == 1  # and still pending

    read_here = dataclasses.replace(read_elsewhere, event_id=b"evt_real")
    await outbox.settle(stream, [(read_here, True)], 0)
    assert await link.call("XRANGE", stream, "5-0", "5-0") == []
    assert (await link.call("XPENDING", stream, GROUP))[0] == 0
    await gw.close()
