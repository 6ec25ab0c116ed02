"""Refunds (API.md, "Payments"): partial and full, listing, the out_refund_no natural
key, never above the paid amount even under concurrency, and tenant isolation."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.asserts import assert_error, ledger_order
from tests.conftest import BankSim
from tests.helpers import Client, Gateway, eventually, payment_body

# The whole module also runs on Redis Cluster (conftest.py).
pytestmark = pytest.mark.both_topologies


async def paid(client: Client, otn: str, amount: int = 1000) -> dict[str, Any]:
    created = await client.post("/v1/payments", payment_body(otn, amount=amount))
    assert created.status == 201 and created.body["status"] == "succeeded", created.body
    body: dict[str, Any] = created.body
    return body


async def wait_for_payment(client: Client, pid: str, status: str) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    async def check() -> bool:
        got = await client.get(f"/v1/payments/{pid}")
        assert got.status == 200, got.body
        seen.update(got.body)
        return bool(got.body["status"] == status)

    await eventually(check)
    return seen


async def test_partial_then_full_refund(gateway: Gateway, bank_sim: BankSim) -> None:
    client, _ = await gateway.merchant()
    payment = await paid(client, "refund-1")
    pid = payment["id"]
    path = f"/v1/payments/{pid}/refunds"

    first = await client.post(path, {"amount": 300, "out_refund_no": "r1", "reason": "damaged"})
    assert first.status == 201, first.body
    refund = first.body
    assert refund["object"] == "refund" and refund["id"].startswith("re_")
    assert refund["payment_id"] == pid and refund["amount"] == 300
    assert refund["currency"] == "CNY" and refund["out_refund_no"] == "r1"
    assert refund["status"] in ("processing", "succeeded")

    after = await wait_for_payment(client, pid, "partially_refunded")
    assert after["refunded_amount"] == 300 and after["amount"] == 1000
    got = await client.get(f"/v1/refunds/{refund['id']}")
    assert got.status == 200 and got.body["status"] == "succeeded", got.body
    assert got.body["reason"] == "damaged"
    order = await ledger_order(bank_sim, payment)
    assert order is not None and order["refunded"] == 300 and order["charged"] == 1000

    second = await client.post(path, {"amount": 700, "out_refund_no": "r2"})
    assert second.status == 201, second.body
    after = await wait_for_payment(client, pid, "refunded")
    assert after["refunded_amount"] == 1000

    async def second_settled() -> bool:
        got = await client.get(f"/v1/refunds/{second.body['id']}")
        return bool(got.body["status"] == "succeeded")

    await eventually(second_settled)
    listed = await client.get(path)
    assert listed.status == 200 and listed.body["object"] == "list"
    rows = listed.body["data"]
    assert [r["id"] for r in rows] == [refund["id"], second.body["id"]]
    assert [r["amount"] for r in rows] == [300, 700]
    assert all(r["status"] == "succeeded" and r["payment_id"] == pid for r in rows)
    order = await ledger_order(bank_sim, payment)
    assert order is not None and order["refunded"] == 1000 and order["charged"] == 1000
    assert order["charges"] == 1

    # Nothing is left to refund.
    more = await client.post(path, {"amount": 1, "out_refund_no": "r3"})
    assert_error(more, 422, "refund_exceeds_amount")


async def test_out_refund_no_is_a_natural_key(gateway: Gateway, bank_sim: BankSim) -> None:
    client, _ = await gateway.merchant()
    payment = await paid(client, "refund-2")
    path = f"/v1/payments/{payment['id']}/refunds"
    first = await client.post(path, {"amount": 200, "out_refund_no": "r1"})
    assert first.status == 201, first.body
    again = await client.post(path, {"amount": 200, "out_refund_no": "r1"})
    assert again.status == 200 and again.body["id"] == first.body["id"], again.body
    for other in ({"amount": 300, "out_refund_no": "r1"},
                  {"amount": 200, "out_refund_no": "r1", "reason": "other"}):
        conflict = await client.post(path, other)
        assert_error(conflict, 409, "out_refund_no_used")
    # The same out_refund_no on another payment is another refund.
    other_payment = await paid(client, "refund-3")
    elsewhere = await client.post(f"/v1/payments/{other_payment['id']}/refunds",
                                  {"amount": 200, "out_refund_no": "r1"})
    assert elsewhere.status == 201 and elsewhere.body["id"] != first.body["id"]
    listed = await client.get(path)
    assert [r["id"] for r in listed.body["data"]] == [first.body["id"]]
    after = await wait_for_payment(client, payment["id"], "partially_refunded")
    assert after["refunded_amount"] == 200
    order = await ledger_order(bank_sim, payment)
    assert order is not None and order["refunded"] == 200


async def test_concurrent_refunds_never_exceed_the_paid_amount(
    gateway: Gateway, bank_sim: BankSim
) -> None:
    client, _ = await gateway.merchant()
    payment = await paid(client, "refund-race")
    pid = payment["id"]
    path = f"/v1/payments/{pid}/refunds"
    replies = await asyncio.gather(*(
        client.post(path, {"amount": 100, "out_refund_no": f"r{n}"}) for n in range(12)
    ))
    accepted = [r for r in replies if r.status == 201]
    refused = [r for r in replies if r.status != 201]
    assert len(accepted) == 10, [(r.status, r.body) for r in replies]
    assert sum(r.body["amount"] for r in accepted) == 1000
    for reply in refused:
        assert_error(reply, 422, "refund_exceeds_amount")
    assert len({r.body["id"] for r in accepted}) == 10

    async def all_refunded() -> bool:
        order = await ledger_order(bank_sim, payment)
        assert order is not None
        assert order["refunded"] <= order["charged"] == 1000, order
        got = await client.get(f"/v1/payments/{pid}")
        return bool(got.body["status"] == "refunded" and order["refunded"] == 1000)

    await eventually(all_refunded)
    final = await client.get(f"/v1/payments/{pid}")
    assert final.body["refunded_amount"] == 1000
    listed = await client.get(path)
    assert len(listed.body["data"]) == 10
    assert {r["id"] for r in listed.body["data"]} == {r.body["id"] for r in accepted}
    assert all(r["status"] == "succeeded" for r in listed.body["data"])


async def test_refunds_of_another_merchants_payment_are_not_found(
    gateway: Gateway, bank_sim: BankSim
) -> None:
    alice, _ = await gateway.merchant("Alice")
    mallory, _ = await gateway.merchant("Mallory")
    payment = await paid(alice, "refund-alice")
    pid = payment["id"]
    mine = await alice.post(f"/v1/payments/{pid}/refunds", {"amount": 100, "out_refund_no": "a"})
    assert mine.status == 201, mine.body
    for reply in (
        await mallory.post(f"/v1/payments/{pid}/refunds", {"amount": 900, "out_refund_no": "m"}),
        await mallory.post(f"/v1/payments/{pid}/refunds", {"amount": 100, "out_refund_no": "a"}),
        await mallory.post(f"/v1/payments/{pid}/refunds", {"amount": 100, "out_refund_no": "a"},
                           headers={"Idempotency-Key": "m-1"}),
        await mallory.get(f"/v1/payments/{pid}/refunds"),
        await mallory.get(f"/v1/refunds/{mine.body['id']}"),
    ):
        assert_error(reply, 404, "not_found")
        assert pid not in reply.raw.decode() and mine.body["id"] not in reply.raw.decode()
    after = await wait_for_payment(alice, pid, "partially_refunded")
    assert after["refunded_amount"] == 100
    listed = await alice.get(f"/v1/payments/{pid}/refunds")
    assert [r["out_refund_no"] for r in listed.body["data"]] == ["a"]
    order = await ledger_order(bank_sim, payment)
    assert order is not None and order["refunded"] == 100


async def test_refund_of_an_instant_payment(gateway: Gateway) -> None:
    client, _ = await gateway.merchant()
    created = await client.post("/v1/payments", payment_body("refund-inst", method="instant"))
    assert created.status == 201 and created.body["status"] == "succeeded", created.body
    path = f"/v1/payments/{created.body['id']}/refunds"
    refund = await client.post(path, {"amount": 1000, "out_refund_no": "all"})
    assert refund.status == 201 and refund.body["status"] == "succeeded", refund.body
    got = await client.get(f"/v1/payments/{created.body['id']}")
    assert got.body["status"] == "refunded" and got.body["refunded_amount"] == 1000
    assert_error(await client.post(path, {"amount": 1, "out_refund_no": "more"}),
                 422, "refund_exceeds_amount")
