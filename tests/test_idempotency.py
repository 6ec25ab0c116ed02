"""Idempotency (API.md, "Idempotency"): the Idempotency-Key and the out_trade_no natural
key, on creates, refunds and closes, sequential and concurrent."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from router.store import keys
from tests.asserts import assert_error, ledger_order
from tests.conftest import BankSim
from tests.helpers import Client, Gateway, Reply, eventually, payment_body

# The whole module also runs on Redis Cluster (conftest.py).
pytestmark = pytest.mark.both_topologies

CONCURRENCY = 40


def key(value: str) -> dict[str, str]:
    return {"Idempotency-Key": value}


def replayed(reply: Reply) -> bool:
    return reply.headers.get("Idempotent-Replayed") == "true"


async def paid(client: Client, otn: str, amount: int = 1000) -> dict[str, Any]:
    created = await client.post("/v1/payments", payment_body(otn, amount=amount))
    assert created.status == 201 and created.body["status"] == "succeeded", created.body
    body: dict[str, Any] = created.body
    return body


# --------------------------------------------------------------------------- replay
async def test_replay_returns_stored_answer_byte_for_byte(
    gateway: Gateway, bank_sim: BankSim
) -> None:
    client, _ = await gateway.merchant()
    body = payment_body("idem-1")
    first = await client.post("/v1/payments", body, headers=key("k-1"))
    assert first.status == 201, first.body
    assert not replayed(first)
    for _ in range(3):
        again = await client.post("/v1/payments", body, headers=key("k-1"))
        assert again.status == 201
        assert again.raw == first.raw
        assert replayed(again)
    ledger = await bank_sim.ledger()
    assert ledger["totals"] == {**ledger["totals"], "orders": 1, "charges": 1, "charged": 1000}
    found = await client.get("/v1/payments?out_trade_no=idem-1")
    assert found.body["id"] == first.body["id"]


async def test_retry_of_a_timed_out_create_asks_the_rail_and_charges_once(
    gateway: Gateway, bank_sim: BankSim
) -> None:
    """The first answer was unknown (the charge went through, its answer was lost): the
    retry sends the same charge again, which the bank dedupes, and answers with what it
    says now. The 504 is never replayed."""
    client, _ = await gateway.merchant()
    body = payment_body("idem-timeout-1", auth_code="134567890123456789")
    first = await client.post("/v1/payments", body, headers=key("k-timeout"))
    assert_error(first, 504, "adapter_timeout")
    again = await client.post("/v1/payments", body, headers=key("k-timeout"))
    assert again.status == 201 and not replayed(again), again.body
    assert again.body["id"] == first.body["error"]["payment_id"]
    assert again.body["status"] == "succeeded"
    third = await client.post("/v1/payments", body, headers=key("k-timeout"))
    assert third.raw == again.raw and replayed(third)
    assert (await bank_sim.ledger())["totals"]["charges"] == 1


async def test_same_key_different_body_is_refused(gateway: Gateway, bank_sim: BankSim) -> None:
    client, _ = await gateway.merchant()
    first = await client.post("/v1/payments", payment_body("idem-2"), headers=key("k-2"))
    assert first.status == 201, first.body
    for other in (payment_body("idem-2", amount=1001), payment_body("idem-3"),
                  payment_body("idem-2", metadata={"a": "b"})):
        assert_error(await client.post("/v1/payments", other, headers=key("k-2")),
                     422, "idempotency_key_reused")
    # The same key on another route is another request, too.
    refund = await client.post(f"/v1/payments/{first.body['id']}/refunds",
                               {"amount": 100, "out_refund_no": "r1"}, headers=key("k-2"))
    assert_error(refund, 422, "idempotency_key_reused")
    # The stored answer is intact.
    again = await client.post("/v1/payments", payment_body("idem-2"), headers=key("k-2"))
    assert again.raw == first.raw and replayed(again)
    assert (await client.get("/v1/payments?out_trade_no=idem-3")).status == 404
    ledger = await bank_sim.ledger()
    assert ledger["totals"]["orders"] == 1 and ledger["totals"]["refunded"] == 0


async def test_refused_requests_are_not_stored(gateway: Gateway, bank_sim: BankSim) -> None:
    client, _ = await gateway.merchant()
    k = key("k-fix")
    bad = payment_body("idem-fix")
    del bad["amount"]
    assert_error(await client.post("/v1/payments", bad, headers=k), 422, "validation_error",
                 "amount")
    assert_error(await client.post("/v1/payments", raw=b"{", headers=k), 400, "invalid_json")
    # An out_trade_no conflict is a refusal before any effect too.
    await paid(client, "idem-taken")
    assert_error(await client.post("/v1/payments", payment_body("idem-taken", amount=5),
                                   headers=k), 409, "out_trade_no_used")
    fixed = await client.post("/v1/payments", payment_body("idem-fix"), headers=k)
    assert fixed.status == 201 and not replayed(fixed), fixed.body
    assert fixed.body["status"] == "succeeded"
    again = await client.post("/v1/payments", payment_body("idem-fix"), headers=k)
    assert again.raw == fixed.raw and replayed(again)
    assert (await bank_sim.ledger())["totals"]["charges"] == 2


# --------------------------------------------------------------------------- out_trade_no
async def test_out_trade_no_is_a_natural_key(gateway: Gateway, bank_sim: BankSim) -> None:
    client, _ = await gateway.merchant()
    first = await client.post("/v1/payments", payment_body("otn-nat-1"))
    assert first.status == 201, first.body
    for headers in (None, key("k-otn-a"), key("k-otn-b")):
        again = await client.post("/v1/payments", payment_body("otn-nat-1"), headers=headers)
        assert again.status == 200, again.body
        assert again.body["id"] == first.body["id"]
        assert again.body["status"] == "succeeded"
        assert not replayed(again)
    # A key first used for a repeat replays that 200.
    replay = await client.post("/v1/payments", payment_body("otn-nat-1"), headers=key("k-otn-a"))
    assert replay.status == 200 and replayed(replay)
    conflict = await client.post("/v1/payments", payment_body("otn-nat-1", amount=2000))
    assert_error(conflict, 409, "out_trade_no_used")
    ledger = await bank_sim.ledger()
    assert ledger["totals"]["orders"] == 1 and ledger["totals"]["charges"] == 1


# --------------------------------------------------------------------------- refunds, close
async def test_refund_with_key_is_replayed(gateway: Gateway, bank_sim: BankSim) -> None:
    client, _ = await gateway.merchant()
    payment = await paid(client, "idem-refund-1")
    path = f"/v1/payments/{payment['id']}/refunds"
    body = {"amount": 300, "out_refund_no": "r1"}
    first = await client.post(path, body, headers=key("k-refund"))
    assert first.status == 201 and not replayed(first), first.body
    again = await client.post(path, body, headers=key("k-refund"))
    assert again.status == 201 and again.raw == first.raw and replayed(again)
    other = await client.post(path, {"amount": 300, "out_refund_no": "r2"},
                              headers=key("k-refund"))
    assert_error(other, 422, "idempotency_key_reused")
    listed = await client.get(path)
    assert [r["id"] for r in listed.body["data"]] == [first.body["id"]]

    async def settled() -> bool:
        got = await client.get(f"/v1/payments/{payment['id']}")
        return bool(got.body["status"] == "partially_refunded")

    await eventually(settled)
    order = await ledger_order(bank_sim, payment)
    assert order is not None and order["refunded"] == 300


async def test_close_with_key_is_replayed(gateway: Gateway, bank_sim: BankSim) -> None:
    client, _ = await gateway.merchant()
    created = await client.post("/v1/payments", payment_body("idem-close-1", scene="native"))
    assert created.status == 201 and created.body["status"] == "requires_action", created.body
    pid = created.body["id"]
    first = await client.post(f"/v1/payments/{pid}/close", headers=key("k-close"))
    assert first.status == 200 and first.body["status"] == "closed", first.body
    assert not replayed(first)
    again = await client.post(f"/v1/payments/{pid}/close", headers=key("k-close"))
    assert again.status == 200 and again.raw == first.raw and replayed(again)
    # The same key closing another payment is a different request.
    other = await client.post("/v1/payments", payment_body("idem-close-2", scene="native"))
    reused = await client.post(f"/v1/payments/{other.body['id']}/close", headers=key("k-close"))
    assert_error(reused, 422, "idempotency_key_reused")
    assert (await client.get(f"/v1/payments/{other.body['id']}")).body["status"] == (
        "requires_action")
    order = await ledger_order(bank_sim, created.body)
    assert order is not None and order["status"] == "CLOSED"


async def test_refused_close_does_not_burn_the_key(gateway: Gateway) -> None:
    client, _ = await gateway.merchant()
    payment = await paid(client, "idem-close-3")
    refused = await client.post(f"/v1/payments/{payment['id']}/close", headers=key("k-c3"))
    assert_error(refused, 409, "invalid_state")
    again = await client.post(f"/v1/payments/{payment['id']}/close", headers=key("k-c3"))
    assert_error(again, 409, "invalid_state")
    assert not replayed(again)


# --------------------------------------------------------------------------- scope
async def test_keys_are_scoped_per_merchant(gateway: Gateway, bank_sim: BankSim) -> None:
    alice, _ = await gateway.merchant("Alice")
    bob, _ = await gateway.merchant("Bob")
    body = payment_body("shared-otn")
    a = await alice.post("/v1/payments", body, headers=key("shared-key"))
    b = await bob.post("/v1/payments", body, headers=key("shared-key"))
    assert a.status == 201 and b.status == 201, (a.body, b.body)
    assert not replayed(a) and not replayed(b)
    assert a.body["id"] != b.body["id"]
    ledger = await bank_sim.ledger()
    assert ledger["totals"]["orders"] == 2 and ledger["totals"]["charges"] == 2
    assert (await bob.get(f"/v1/payments/{a.body['id']}")).status == 404


# --------------------------------------------------------------------------- concurrency
async def test_concurrent_creates_with_one_key_charge_once(
    gateway: Gateway, bank_sim: BankSim
) -> None:
    client, _ = await gateway.merchant()
    body = payment_body("race-key-1")
    replies = await asyncio.gather(*(
        client.post("/v1/payments", body, headers=key("race-key")) for _ in range(CONCURRENCY)
    ))
    originals = [r for r in replies if r.status == 201 and not replayed(r)]
    assert len(originals) == 1, [(r.status, r.body) for r in replies]
    original = originals[0]
    for reply in replies:
        if reply is original:
            continue
        if reply.status == 409:
            assert_error(reply, 409, "idempotency_key_in_use")
        else:
            assert reply.status == 201 and replayed(reply), (reply.status, reply.body)
            assert reply.raw == original.raw
    # Once settled, every retry is a replay of that one answer.
    again = await client.post("/v1/payments", body, headers=key("race-key"))
    assert again.raw == original.raw and replayed(again)
    ledger = await bank_sim.ledger()
    assert ledger["totals"]["orders"] == 1 and ledger["totals"]["charges"] == 1
    found = await client.get("/v1/payments?out_trade_no=race-key-1")
    assert found.body["id"] == original.body["id"]


async def test_concurrent_creates_with_one_out_trade_no_charge_once(
    gateway: Gateway, bank_sim: BankSim
) -> None:
    # A payer limit above the burst, so that only deduplication is at play.
    client, _ = await gateway.merchant(payer_rate_limit={"rps": 1000, "burst": 1000})
    body = payment_body("race-otn-1")
    replies = await asyncio.gather(*(client.post("/v1/payments", body)
                                     for _ in range(CONCURRENCY)))
    statuses = sorted(r.status for r in replies)
    assert statuses == [200] * (CONCURRENCY - 1) + [201], [r.body for r in replies]
    assert len({r.body["id"] for r in replies}) == 1
    ledger = await bank_sim.ledger()
    assert ledger["totals"]["orders"] == 1 and ledger["totals"]["charges"] == 1
    pid = replies[0].body["id"]
    assert (await client.get(f"/v1/payments/{pid}")).body["status"] == "succeeded"


async def test_a_payment_redis_lost_is_recreated_by_the_retry_without_a_second_charge(
    gateway: Gateway, bank_sim: BankSim, redis_client: Any
) -> None:
    """A failover to a replica that never got the last writes loses an acknowledged
    payment's record and its idempotency entry. The client's retry creates it again —
    with the same id, because ids derive from the merchant and out_trade_no, hence the
    same rail order number, which the rail dedupes."""
    client, merchant = await gateway.merchant()
    key = {"Idempotency-Key": "lost-1"}
    first = await client.post("/v1/payments", payment_body("lost-1"), headers=key)
    assert first.status == 201 and first.body["status"] == "succeeded", first.body
    pid = first.body["id"]
    shard = keys.shard_of(pid)
    assert shard is not None
    await redis_client.delete(keys.payment(shard, pid))
    await redis_client.delete(keys.idempotency(shard, merchant["id"], "lost-1"))
    await redis_client.zrem(keys.due(shard), f"p:{pid}")
    assert (await client.get(f"/v1/payments/{pid}")).status == 404  # lost

    again = await client.post("/v1/payments", payment_body("lost-1"), headers=key)
    assert again.status == 201 and again.body["id"] == pid, again.body
    assert again.body["status"] == "succeeded"
    order = (await bank_sim.ledger())["orders"][again.body["attempts"][0]["rail_order_no"]]
    assert order["charges"] == 1
    assert (await bank_sim.ledger())["totals"]["charges"] == 1

