"""The basic path, end to end over HTTP: a quick-pay charge on the bank rail."""

from __future__ import annotations

from tests.conftest import BankSim
from tests.helpers import Gateway, payment_body


async def test_quickpay_succeeds_and_charges_once(gateway: Gateway, bank_sim: BankSim) -> None:
    client, _ = await gateway.merchant()
    created = await client.post("/v1/payments", payment_body("smoke-1"))
    assert created.status == 201, created.body
    assert created.body["status"] == "succeeded"
    fetched = await client.get(f"/v1/payments/{created.body['id']}")
    assert fetched.body["status"] == "succeeded"
    ledger = await bank_sim.ledger()
    order = ledger["orders"][created.body["attempts"][0]["rail_order_no"]]
    assert order["charges"] == 1 and order["charged"] == 1000


async def test_the_server_header_names_no_framework(gateway: Gateway) -> None:
    """Every answer (success, error, unknown route) says `payrouter`, not the framework
    and its version."""
    client, _ = await gateway.merchant()
    for path in ("/healthz", "/v1/payments/pay_nope", "/no/such/route"):
        reply = await client.get(path)
        assert reply.headers["Server"] == "payrouter", (path, reply.headers.get("Server"))
