"""Rate limits (API.md, "Rate limits"): per merchant, per payer and per rail; a refused
call is a 429 with Retry-After and RateLimit-* headers and has no side effect."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from msgspec.structs import replace

from router.settings import RateLimit
from tests.asserts import assert_error
from tests.conftest import BankSim, gateway_settings
from tests.helpers import Gateway, Reply, payment_body, start_gateway

# The whole module also runs on Redis Cluster (conftest.py).
pytestmark = pytest.mark.both_topologies

A_CODE = "134567890123456781"
B_CODE = "134567890123456791"


def assert_limited(reply: Reply, burst: int) -> None:
    assert_error(reply, 429, "rate_limited")
    assert int(reply.headers["Retry-After"]) >= 1
    assert int(reply.headers["RateLimit-Limit"]) == burst
    assert int(reply.headers["RateLimit-Remaining"]) == 0
    assert int(reply.headers["RateLimit-Reset"]) >= 0


async def test_merchant_limit_refuses_the_call_after_the_burst(
    gateway: Gateway, bank_sim: BankSim
) -> None:
    client, created = await gateway.merchant()
    patched = await gateway.admin().patch(f"/v1/admin/merchants/{created['id']}",
                                          {"rate_limit": {"rps": 1, "burst": 3}})
    assert patched.status == 200, patched.body
    assert patched.body["rate_limit"] == {"rps": 1, "burst": 3}
    for n in range(3):
        ok = await client.post("/v1/payments", payment_body(f"ml-{n}"))
        assert ok.status == 201, ok.body
    refused = await client.post("/v1/payments", payment_body("ml-3"),
                                headers={"Idempotency-Key": "k-ml-3"})
    assert_limited(refused, 3)
    # Reads count against the same limit.
    assert_limited(await client.get("/v1/payments?out_trade_no=ml-0"), 3)
    # Lift the limit (the admin API is not limited) and look for side effects: none.
    lifted = await gateway.admin().patch(f"/v1/admin/merchants/{created['id']}",
                                         {"rate_limit": None})
    assert lifted.status == 200, lifted.body
    assert (await client.get("/v1/payments?out_trade_no=ml-3")).status == 404
    ledger = await bank_sim.ledger()
    assert ledger["totals"]["orders"] == 3 and ledger["totals"]["charges"] == 3
    # The out_trade_no and the Idempotency-Key are both still free.
    retry = await client.post("/v1/payments", payment_body("ml-3"),
                              headers={"Idempotency-Key": "k-ml-3"})
    assert retry.status == 201, retry.body
    assert retry.headers.get("Idempotent-Replayed") is None
    assert (await bank_sim.ledger())["totals"]["charges"] == 4


async def test_merchant_limit_applies_to_refunds_without_effect(
    gateway: Gateway, bank_sim: BankSim
) -> None:
    client, created = await gateway.merchant()
    payment = await client.post("/v1/payments", payment_body("ml-refund"))
    assert payment.status == 201, payment.body
    await gateway.admin().patch(f"/v1/admin/merchants/{created['id']}",
                                {"rate_limit": {"rps": 1, "burst": 1}})
    path = f"/v1/payments/{payment.body['id']}/refunds"
    first = await client.post(path, {"amount": 100, "out_refund_no": "r1"})
    assert first.status == 201, first.body
    refused = await client.post(path, {"amount": 100, "out_refund_no": "r2"})
    assert_limited(refused, 1)
    await gateway.admin().patch(f"/v1/admin/merchants/{created['id']}", {"rate_limit": None})
    listed = await client.get(path)
    assert [r["out_refund_no"] for r in listed.body["data"]] == ["r1"]


async def test_limits_are_per_merchant(gateway: Gateway) -> None:
    slow, _ = await gateway.merchant("Slow", rate_limit={"rps": 1, "burst": 1})
    other, _ = await gateway.merchant("Other")
    assert (await slow.get("/v1/payments?out_trade_no=x")).status == 404
    assert_limited(await slow.get("/v1/payments?out_trade_no=x"), 1)
    for _ in range(5):
        assert (await other.get("/v1/payments?out_trade_no=x")).status == 404


async def test_payer_limit_applies_per_payer(gateway: Gateway, bank_sim: BankSim) -> None:
    client, _ = await gateway.merchant(payer_rate_limit={"rps": 1, "burst": 2})
    for n in range(2):
        ok = await client.post("/v1/payments", payment_body(f"pl-a{n}", auth_code=A_CODE))
        assert ok.status == 201, ok.body
    refused = await client.post("/v1/payments", payment_body("pl-a2", auth_code=A_CODE))
    assert_limited(refused, 2)
    # Another payer of the same merchant is not affected.
    for n in range(2):
        ok = await client.post("/v1/payments", payment_body(f"pl-b{n}", auth_code=B_CODE))
        assert ok.status == 201, ok.body
    assert (await client.get("/v1/payments?out_trade_no=pl-a2")).status == 404
    ledger = await bank_sim.ledger()
    assert ledger["totals"]["orders"] == 4 and ledger["totals"]["charges"] == 4


async def test_payer_limit_is_per_merchant(gateway: Gateway) -> None:
    alice, _ = await gateway.merchant("Alice", payer_rate_limit={"rps": 1, "burst": 1})
    bob, _ = await gateway.merchant("Bob", payer_rate_limit={"rps": 1, "burst": 1})
    assert (await alice.post("/v1/payments", payment_body("pm-1"))).status == 201
    assert_limited(await alice.post("/v1/payments", payment_body("pm-2")), 1)
    assert (await bob.post("/v1/payments", payment_body("pm-1"))).status == 201


@pytest.fixture
async def quota_gateway(redis_url: str, bank_sim: BankSim, tmp_path: Path,
                        http: aiohttp.ClientSession) -> AsyncIterator[Gateway]:
    """A gateway whose bank rail takes at most a burst of 2 payments, then 1 a second."""
    settings = gateway_settings(redis_url, bank_sim, tmp_path)
    rails = tuple(replace(r, rate_limit=RateLimit(rps=1, burst=2)) if r.name == "bank" else r
                  for r in settings.rails)
    gw = await start_gateway(replace(settings, rails=rails), http)
    yield gw
    await gw.close()


async def test_rail_quota_protects_the_bank(quota_gateway: Gateway, bank_sim: BankSim) -> None:
    alice, _ = await quota_gateway.merchant("Alice")
    bob, _ = await quota_gateway.merchant("Bob")
    assert (await alice.post("/v1/payments", payment_body("rq-1"))).status == 201
    assert (await bob.post("/v1/payments", payment_body("rq-2", auth_code=B_CODE))).status == 201
    # The quota is the rail's, across merchants and payers.
    refused = await alice.post("/v1/payments", payment_body("rq-3", auth_code=B_CODE))
    assert_limited(refused, 2)
    refused = await bob.post("/v1/payments", payment_body("rq-4"))
    assert_limited(refused, 2)
    # Another rail is not limited by it.
    instant = await alice.post("/v1/payments", payment_body("rq-5", method="instant"))
    assert instant.status == 201 and instant.body["status"] == "succeeded", instant.body
    ledger = await bank_sim.ledger()
    assert ledger["totals"]["orders"] == 2 and ledger["totals"]["charges"] == 2
    assert (await alice.get("/v1/payments?out_trade_no=rq-3")).status == 404
    assert (await bob.get("/v1/payments?out_trade_no=rq-4")).status == 404


async def test_calls_that_never_reach_the_rail_do_not_spend_its_quota(
    quota_gateway: Gateway, bank_sim: BankSim
) -> None:
    """The quota is taken before the payment script (its key is global, outside the
    merchant's slot) and given back when no rail call follows: an idempotent replay,
    a repeated out_trade_no."""
    alice, _ = await quota_gateway.merchant("Alice")
    key = {"Idempotency-Key": "quota-replay"}
    first = await alice.post("/v1/payments", payment_body("rq-1"), headers=key)
    assert first.status == 201, first.body
    for _ in range(3):
        replay = await alice.post("/v1/payments", payment_body("rq-1"), headers=key)
        assert replay.headers.get("Idempotent-Replayed") == "true"
        same = await alice.post("/v1/payments", payment_body("rq-1"))
        assert same.status == 200 and same.body["id"] == first.body["id"], same.body
    # One of the burst of 2 is left for a call that does reach the rail.
    second = await alice.post("/v1/payments", payment_body("rq-2", auth_code=B_CODE))
    assert second.status == 201, second.body
    assert_limited(await alice.post("/v1/payments", payment_body("rq-3", auth_code=B_CODE)), 2)
    assert (await bank_sim.ledger())["totals"]["charges"] == 2
