"""Payment outcomes through the gateway on the bank rail: payer codes by their last
digit (SANDBOX.md), sandbox-driven native payments, close, and their webhooks. Every
outcome is checked against the simulator's ledger."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from adapters.base import Query, RailStatus, Reverse
from router.domain import Status
from tests.asserts import rail_order
from tests.conftest import BankSim, gateway_settings
from tests.helpers import Client, Gateway, eventually, payment_body, start_gateway
from tests.receiver import Receiver, webhook_receiver

# The whole module also runs on Redis Cluster (conftest.py).
pytestmark = pytest.mark.both_topologies


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with webhook_receiver() as r:
        yield r


async def ledger_order(bank_sim: BankSim, payment: dict[str, Any]) -> dict[str, Any]:
    orders: dict[str, Any] = (await bank_sim.ledger())["orders"]
    assert rail_order(payment) in orders, orders
    order: dict[str, Any] = orders[rail_order(payment)]
    return order


async def wait_status(client: Client, pid: str, status: str, within: float = 10.0
                      ) -> dict[str, Any]:
    """Poll the public API until the sweeper has moved the payment to `status`."""
    seen: dict[str, Any] = {}

    async def reached() -> bool:
        reply = await client.get(f"/v1/payments/{pid}")
        assert reply.status == 200, reply.body
        seen.update(reply.body)
        # A settled payment never moves again except by refunds.
        assert reply.body["status"] in ("processing", "requires_action", status), reply.body
        return bool(reply.body["status"] == status)

    await eventually(reached, timeout=within)
    return seen


# --------------------------------------------------------------------------- payer codes
async def test_code_1_succeeds_at_once(gateway: Gateway, bank_sim: BankSim) -> None:
    client, _ = await gateway.merchant()
    created = await client.post("/v1/payments",
                                payment_body("qp-1", auth_code="134567890123456781"))
    assert created.status == 201, created.body
    body = created.body
    assert body["status"] == "succeeded"
    assert body["object"] == "payment" and body["id"].startswith("pay_")
    assert body["adapter"] == "bank" and body["scene"] == "quickpay"
    assert "action" not in body and "failure" not in body
    assert body["rail_reference"]
    order = await ledger_order(bank_sim, body)
    assert order == {"status": "SUCCESS", "charged": 1000, "charges": 1, "refunded": 0}


async def test_code_2_fails_and_charges_nothing(gateway: Gateway, bank_sim: BankSim) -> None:
    client, _ = await gateway.merchant()
    created = await client.post("/v1/payments",
                                payment_body("qp-2", auth_code="134567890123456782"))
    assert created.status == 201, created.body
    assert created.body["status"] == "failed"
    assert created.body["failure"]["code"] == "INSUFFICIENT_FUNDS"
    assert created.body["failure"]["message"]
    fetched = await client.get(f"/v1/payments/{created.body['id']}")
    assert fetched.body["status"] == "failed"
    assert fetched.body["failure"] == created.body["failure"]
    order = await ledger_order(bank_sim, created.body)
    assert order["status"] == "FAILED"
    assert order["charged"] == 0 and order["charges"] == 0
    # A failed payment cannot be refunded.
    refund = await client.post(f"/v1/payments/{created.body['id']}/refunds",
                               {"amount": 100, "out_refund_no": "r1"})
    assert refund.status == 409 and refund.body["error"]["code"] == "invalid_state"


async def test_code_5_processing_then_succeeded(gateway: Gateway, bank_sim: BankSim) -> None:
    client, _ = await gateway.merchant()
    created = await client.post("/v1/payments",
                                payment_body("qp-5", auth_code="134567890123456785"))
    assert created.status == 201, created.body
    assert created.body["status"] == "processing"
    settled = await wait_status(client, created.body["id"], "succeeded")
    assert settled["rail_reference"]
    order = await ledger_order(bank_sim, created.body)
    assert order["status"] == "SUCCESS"
    assert order["charged"] == 1000 and order["charges"] == 1


async def test_code_6_processing_then_reversed(gateway: Gateway, bank_sim: BankSim,
                                               receiver: Receiver) -> None:
    client, _ = await gateway.merchant()
    created = await client.post("/v1/payments", payment_body(
        "qp-6", auth_code="134567890123456786", notify_url=receiver.url()))
    assert created.status == 201, created.body
    assert created.body["status"] == "processing"
    await wait_status(client, created.body["id"], "closed")
    order = await ledger_order(bank_sim, created.body)
    assert order["status"] == "REVERSED"
    assert order["charged"] - order["refunded"] == 0  # no money kept
    delivery = await receiver.next_of("payment.closed")
    assert delivery.event["data"]["id"] == created.body["id"]
    assert delivery.event["data"]["status"] == "closed"


async def test_code_9_times_out_then_settles_charged_once(
    gateway: Gateway, bank_sim: BankSim
) -> None:
    client, _ = await gateway.merchant()
    created = await client.post("/v1/payments",
                                payment_body("qp-9", auth_code="134567890123456789"))
    assert created.status == 504, created.body
    error = created.body["error"]
    assert error["code"] == "adapter_timeout"
    pid = error["payment_id"]
    assert pid.startswith("pay_")
    # Unknown to the request path; the sweeper (first check before the 1 s rail timeout
    # in these settings) may already have learnt the outcome by querying.
    assert error["payment_status"] in ("processing", "succeeded")

    settled = await wait_status(client, pid, "succeeded")
    assert settled["amount"] == 1000
    by_otn = await client.get("/v1/payments?out_trade_no=qp-9")
    assert by_otn.status == 200 and by_otn.body["id"] == pid
    order = await ledger_order(bank_sim, settled)
    assert order["status"] == "SUCCESS"
    assert order["charged"] == 1000 and order["charges"] == 1
    assert (await bank_sim.ledger())["totals"]["charges"] == 1


# --------------------------------------------------------------------------- native
async def native_payment(client: Client, otn: str, **extra: Any) -> dict[str, Any]:
    created = await client.post("/v1/payments",
                                payment_body(otn, scene="native", **extra))
    assert created.status == 201, created.body
    assert created.body["status"] == "requires_action"
    assert created.body["action"]["type"] == "qr_code"
    assert created.body["action"]["qr_code"].startswith("bankqr://")
    body: dict[str, Any] = created.body
    return body


async def test_native_sandbox_pay_succeeds(gateway: Gateway, bank_sim: BankSim,
                                           receiver: Receiver) -> None:
    client, _ = await gateway.merchant()
    payment = await native_payment(client, "nat-pay", notify_url=receiver.url())
    paid = await client.post(f"/v1/sandbox/payments/{payment['id']}/pay")
    assert paid.status == 200, paid.body
    assert paid.body["status"] == "succeeded"
    assert "action" not in paid.body
    fetched = await client.get(f"/v1/payments/{payment['id']}")
    assert fetched.body["status"] == "succeeded"
    order = await ledger_order(bank_sim, payment)
    assert order["charged"] == 1000 and order["charges"] == 1
    delivery = await receiver.next_of("payment.succeeded")
    assert delivery.event["data"]["id"] == payment["id"]
    # Paying again is refused by the gateway; nothing more is charged.
    again = await client.post(f"/v1/sandbox/payments/{payment['id']}/pay")
    assert again.status == 409 and again.body["error"]["code"] == "invalid_state"
    assert (await ledger_order(bank_sim, payment))["charges"] == 1


async def test_native_sandbox_fail_fails(gateway: Gateway, bank_sim: BankSim,
                                         receiver: Receiver) -> None:
    client, _ = await gateway.merchant()
    payment = await native_payment(client, "nat-fail", notify_url=receiver.url())
    failed = await client.post(f"/v1/sandbox/payments/{payment['id']}/fail")
    assert failed.status == 200, failed.body
    assert failed.body["status"] == "failed"
    assert failed.body["failure"]["code"] == "CARD_DECLINED"
    order = await ledger_order(bank_sim, payment)
    assert order["status"] == "FAILED" and order["charged"] == 0
    delivery = await receiver.next_of("payment.failed")
    assert delivery.event["data"]["id"] == payment["id"]
    assert delivery.event["data"]["failure"]["code"] == "CARD_DECLINED"


async def test_close_unpaid_native_payment(gateway: Gateway, bank_sim: BankSim,
                                           receiver: Receiver) -> None:
    client, _ = await gateway.merchant()
    payment = await native_payment(client, "nat-close", notify_url=receiver.url())
    closed = await client.post(f"/v1/payments/{payment['id']}/close")
    assert closed.status == 200, closed.body
    assert closed.body["status"] == "closed"
    assert "action" not in closed.body
    fetched = await client.get(f"/v1/payments/{payment['id']}")
    assert fetched.body["status"] == "closed"
    order = await ledger_order(bank_sim, payment)
    assert order["status"] == "CLOSED" and order["charged"] == 0
    delivery = await receiver.next_of("payment.closed")
    assert delivery.event["data"]["id"] == payment["id"]
    # Closing again is harmless; the payer can no longer pay it.
    again = await client.post(f"/v1/payments/{payment['id']}/close")
    assert again.status == 200 and again.body["status"] == "closed"
    pay = await client.post(f"/v1/sandbox/payments/{payment['id']}/pay")
    assert pay.status == 409
    assert (await ledger_order(bank_sim, payment))["charges"] == 0


async def test_close_paid_payment_is_refused(gateway: Gateway, bank_sim: BankSim) -> None:
    client, _ = await gateway.merchant()
    payment = await native_payment(client, "nat-paid-close")
    paid = await client.post(f"/v1/sandbox/payments/{payment['id']}/pay")
    assert paid.body["status"] == "succeeded"
    refused = await client.post(f"/v1/payments/{payment['id']}/close")
    assert refused.status == 409, refused.body
    assert refused.body["error"]["code"] == "invalid_state"
    fetched = await client.get(f"/v1/payments/{payment['id']}")
    assert fetched.body["status"] == "succeeded"
    order = await ledger_order(bank_sim, payment)
    assert order["status"] == "SUCCESS" and order["charged"] == 1000


async def test_close_paid_at_rail_but_not_yet_known(gateway: Gateway, bank_sim: BankSim
                                                    ) -> None:
    """The payer paid at the rail but the gateway has not heard yet: close learns the
    truth instead of closing."""
    client, _ = await gateway.merchant()
    await bank_sim.faults(drop_notify_rate=1.0)
    payment = await native_payment(client, "nat-race")
    async with bank_sim.session.post(
            f"{bank_sim.base_url}/sim/orders/{rail_order(payment)}/pay") as resp:
        assert resp.status == 200
    refused = await client.post(f"/v1/payments/{payment['id']}/close")
    assert refused.status == 409, refused.body
    assert refused.body["error"]["code"] == "invalid_state"
    fetched = await client.get(f"/v1/payments/{payment['id']}")
    assert fetched.body["status"] == "succeeded"
    order = await ledger_order(bank_sim, payment)
    assert order["status"] == "SUCCESS" and order["charges"] == 1


async def test_paid_seen_while_the_router_reverses_does_not_settle_the_payment(
    redis_url: str, bank_sim: BankSim, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    """The sweeper decided to reverse an unknown charge (marked it closing) and a query
    or notification then says "paid": the reversal in flight will hand the money back,
    so settling on "paid" would report a payment whose money the payer has again. Only
    the reversal's answer settles it."""
    gateway = await start_gateway(gateway_settings(redis_url, bank_sim, tmp_path), http,
                                  background=False)  # no sweeper: the test plays it
    try:
        client, _ = await gateway.merchant()
        created = await client.post("/v1/payments",
                                    payment_body("rv-9", auth_code="134567890123456789"))
        assert created.status == 504, created.body  # charged, answer lost
        payments, store = gateway.services.payments, gateway.services.store
        settler, transitions = payments.settler, payments.transitions
        payment = await store.payments.load(created.body["error"]["payment_id"])
        assert payment is not None and payment.status is Status.PROCESSING
        order_no = payment.rail.current.rail_order_no

        before = payment
        payment, marked = await settler.mark_closing(payment)  # the sweeper's decision
        assert marked
        # The request's own late "paid", applied to the version it knew: the compare-and-
        # set fails, and the retry on the fresh record must not settle it either.
        late, moved = await transitions.move(before, Status.SUCCEEDED, lambda state: None)
        assert not moved and late.status is Status.PROCESSING
        paid = await settler.rails.call("bank", Query(order_no))
        assert paid.status is RailStatus.SUCCEEDED
        payment = await settler.apply(payment, paid)  # "paid", seen meanwhile
        assert payment.status is Status.PROCESSING

        closed = await settler.end(payment, Reverse(order_no))  # the reversal lands
        assert closed.status is Status.CLOSED
        order = (await bank_sim.ledger())["orders"][order_no]
        assert order["status"] == "REVERSED"
        assert order["charged"] - order["refunded"] == 0  # the payer has it back
    finally:
        await gateway.close()
