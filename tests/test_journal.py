"""The journal (API.md, "E-invoices (fapiao) and the journal"): every movement of money
lands in its merchant's hash chain; the chain verifies, and a changed entry is named."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from typing import Any

import orjson
import pytest

from router.ledger.entries import GENESIS, entry_hash
from router.store import keys
from tests.helpers import Client, Gateway, eventually, payment_body

pytestmark = pytest.mark.both_topologies


async def chain_of(client: Client, count: int) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []

    async def chained() -> bool:
        got = await client.get("/v1/journal?limit=1000")
        assert got.status == 200, got.body
        seen[:] = got.body["data"]
        return len(seen) >= count

    await eventually(chained)
    return seen


def verify_cli(redis_url: str, merchant: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "router.cli", "journal", "verify", "--redis-url", redis_url,
         "--merchant", merchant], capture_output=True, text=True, timeout=60, check=False)


async def test_movements_are_chained_and_verify(gateway: Gateway, redis_url: str,
                                                redis_client: Any) -> None:
    client, merchant = await gateway.merchant()
    paid = await asyncio.gather(*(
        client.post("/v1/payments", payment_body(f"j-{i}", amount=100 + i, method="instant"))
        for i in range(20)))
    assert all(p.status == 201 and p.body["status"] == "succeeded" for p in paid)
    refund = await client.post(f"/v1/payments/{paid[0].body['id']}/refunds",
                               {"amount": 40, "out_refund_no": "j-r1"})
    assert refund.status == 201, refund.body
    # 20 charges, the refund, and the merchant's point for its one payer today.
    entries = await chain_of(client, 22)
    assert [e["seq"] for e in entries] == list(range(1, 23))
    charges = [e for e in entries if e["kind"] == "charge"]
    assert sorted(e["ref"] for e in charges) == sorted(p.body["id"] for p in paid)
    assert {e["kind"] for e in entries} == {"charge", "refund", "points"}
    point = next(e for e in entries if e["kind"] == "points")
    assert point["amount"] == 100 and point["ref"] in {p.body["id"] for p in paid}
    back = next(e for e in entries if e["kind"] == "refund")
    assert back["ref"] == refund.body["id"] and back["amount"] == 40
    prev = GENESIS
    for entry in entries:
        assert entry["prev"] == prev and entry["hash"] == entry_hash(prev, entry)
        prev = entry["hash"]
    head = await client.get("/v1/journal/head")
    assert head.body["seq"] == 22 and head.body["hash"] == prev
    page = await client.get("/v1/journal?after=20&limit=5")
    assert [e["seq"] for e in page.body["data"]] == [21, 22]

    ok = await asyncio.to_thread(verify_cli, redis_url, merchant["id"])
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "OK, 22 entries" in ok.stdout

    # Change one entry's amount in Redis: verify names it.
    record = await gateway.services.merchants.get(merchant["id"])
    assert record is not None
    key = keys.journal(record.shard, merchant["id"])
    tampered = dict(entries[6], amount=entries[6]["amount"] + 1)
    await redis_client.lset(key, 6, orjson.dumps(tampered))
    bad = await asyncio.to_thread(verify_cli, redis_url, merchant["id"])
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "BROKEN at seq 7" in bad.stdout


async def test_bad_journal_query(gateway: Gateway) -> None:
    client, _ = await gateway.merchant()
    got = await client.get("/v1/journal?limit=0")
    assert got.status == 422 and got.body["error"]["param"] == "limit"
    empty = await client.get("/v1/journal/head")
    assert empty.body == {"object": "journal_head", "seq": 0, "hash": GENESIS}
