"""A create whose charge went unanswered is re-driven by its retry: the same attempt is
sent again (same rail_order_no, which the rail dedupes) and the retry is answered with
what the rail says now, e.g. the QR code the lost answer carried. Never a second charge.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Sim
from tests.helpers import Gateway
from tests.test_wallets_gateway import ledger_orders, wallet_body

KEY = {"Idempotency-Key": "retry-me"}


@pytest.fixture
def sims(bank_sim: Sim, wechat_sim: Sim, alipay_sim: Sim) -> dict[str, Sim]:
    return {"bank": bank_sim, "wechatpay": wechat_sim, "alipay": alipay_sim}


def _body(rail: str, otn: str) -> dict[str, Any]:
    return wallet_body(rail, otn, "native")


@pytest.mark.parametrize("rail", ["wechatpay", "alipay", "bank"])
@pytest.mark.parametrize(("fault", "status", "code"), [
    ("timeout_rate", 504, "adapter_timeout"),  # charge applied, answer lost
    ("error_rate", 502, "adapter_error"),  # the rail's system error: unknown
])
async def test_retry_of_an_unanswered_create_gets_the_rails_answer(
    wallet_gateway: Gateway, sims: dict[str, Sim], rail: str, fault: str, status: int,
    code: str,
) -> None:
    sim = sims[rail]
    client, _ = await wallet_gateway.merchant()
    body = _body(rail, f"rd-{rail}-{fault}")
    await sim.faults(**{fault: 1.0})
    first = await client.post("/v1/payments", body, headers=KEY)
    assert first.status == status, first.body
    assert first.body["error"]["code"] == code
    assert first.body["error"]["payment_status"] == "processing"
    await sim.faults()

    retried = await client.post("/v1/payments", body, headers=KEY)
    assert retried.status == 201, retried.body
    assert retried.headers.get("Idempotent-Replayed") is None  # asked the rail again
    assert retried.body["id"] == first.body["error"]["payment_id"]
    assert retried.body["status"] == "requires_action"
    assert retried.body["action"]["type"] == "qr_code"
    assert len(retried.body["attempts"]) == 1  # the same attempt, sent again

    # Now settled by the rail's word: a further retry replays it byte for byte.
    again = await client.post("/v1/payments", body, headers=KEY)
    assert again.status == 201 and again.raw == retried.raw
    assert again.headers["Idempotent-Replayed"] == "true"

    paid = await client.post(f"/v1/sandbox/payments/{retried.body['id']}/pay")
    assert paid.status == 200 and paid.body["status"] == "succeeded", paid.body
    orders = await ledger_orders(sim)  # never more than one charge per order
    assert sum(order["charges"] for order in orders.values()) == 1


async def test_a_retry_without_a_key_re_drives_too(
    wallet_gateway: Gateway, wechat_sim: Sim
) -> None:
    """The out_trade_no is the natural key: a retry without Idempotency-Key finds the
    payment and, its charge unanswered, asks the rail again."""
    client, _ = await wallet_gateway.merchant()
    body = _body("wechatpay", "rd-nokey")
    await wechat_sim.faults(timeout_rate=1.0)
    first = await client.post("/v1/payments", body)
    assert first.status == 504, first.body
    await wechat_sim.faults()
    retried = await client.post("/v1/payments", body)
    assert retried.status == 201 and retried.body["action"]["type"] == "qr_code", retried.body
    found = await client.get(f"/v1/payments/{retried.body['id']}")
    assert found.body["action"] == retried.body["action"]


async def test_a_retry_while_the_rail_still_fails_stays_unknown(
    wallet_gateway: Gateway, alipay_sim: Sim
) -> None:
    client, _ = await wallet_gateway.merchant()
    body = _body("alipay", "rd-still")
    await alipay_sim.faults(error_rate=1.0)
    for _ in range(2):
        answer = await client.post("/v1/payments", body, headers=KEY)
        assert answer.status == 502 and answer.body["error"]["code"] == "adapter_error"
    await alipay_sim.faults()
    settled = await client.post("/v1/payments", body, headers=KEY)
    assert settled.status == 201 and settled.body["status"] == "requires_action"
    assert sum(o["charges"] for o in (await ledger_orders(alipay_sim)).values()) == 0
