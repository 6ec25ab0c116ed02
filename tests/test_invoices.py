"""E-invoices (API.md, "E-invoices (fapiao)"), end to end on the WeChat Pay simulator's
fapiao API: the tax of each item, refusals that write nothing, one current invoice per
payment, a partial refund that reverses and reissues, a full refund that only reverses, a
rail without invoices, and an unknown outcome settled by the sweeper or a notification."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from router.store import keys
from tests.asserts import assert_error
from tests.conftest import Sim, gateway_settings
from tests.helpers import Client, Gateway, eventually, payment_body, start_gateway
from tests.receiver import Receiver, webhook_receiver

pytestmark = pytest.mark.both_topologies

PAID_CODE = "134567890123456781"  # a WeChat payer code that pays at once (SANDBOX.md)
COMPANY = {"type": "organization", "title": "深圳市沙箱科技有限公司",
           "tax_id": "91440300MA5G000000", "email": "finance@example.com"}
PERSON = {"type": "individual", "title": "张三"}


def tax(amount: int, bp: int) -> int:
    """amount × bp / (10000 + bp), rounded half up (the amount includes the tax)."""
    return (2 * amount * bp + 10000 + bp) // (2 * (10000 + bp))


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with webhook_receiver() as r:
        yield r


async def paid(client: Client, otn: str, amount: int, **extra: Any) -> dict[str, Any]:
    reply = await client.post("/v1/payments", payment_body(
        otn, amount=amount, method="wechatpay", auth_code=PAID_CODE, **extra))
    assert reply.status == 201 and reply.body["status"] == "succeeded", reply.body
    payment: dict[str, Any] = reply.body
    return payment


async def invoice_of(client: Client, invoice_id: str) -> dict[str, Any]:
    reply = await client.get(f"/v1/invoices/{invoice_id}")
    assert reply.status == 200, reply.body
    body: dict[str, Any] = reply.body
    return body


async def reaches(client: Client, invoice_id: str, status: str) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    async def there() -> bool:
        seen.update(await invoice_of(client, invoice_id))
        return bool(seen["status"] == status)

    await eventually(there)
    return seen


async def sim_invoices(sim: Sim) -> dict[str, dict[str, Any]]:
    invoices: dict[str, dict[str, Any]] = (await sim.ledger())["invoices"]
    return invoices


def rail_no(invoice_id: str) -> str:
    return invoice_id.replace("_", "")


async def refunded(client: Client, pid: str, amount: int, no: str) -> None:
    reply = await client.post(f"/v1/payments/{pid}/refunds",
                              {"amount": amount, "out_refund_no": no})
    assert reply.status == 201, reply.body

    async def done() -> bool:
        got = await client.get(f"/v1/refunds/{reply.body['id']}")
        return bool(got.body["status"] == "succeeded")

    await eventually(done)


async def invoice_traces(redis_client: Any, payment_id: str) -> list[Any]:
    """Invoice records, due entries and the payment's `iv`: what a refusal must not write."""
    shard = keys.shard_in(payment_id)
    due = [m for m in await redis_client.zrange(keys.due(shard), 0, -1)
           if m.startswith(b"iv:")]
    current = await redis_client.hget(keys.payment(shard, payment_id), "iv")
    return [*await redis_client.keys("*iv:*"), *due, *([current] if current else [])]


async def invoice_events(receiver: Receiver, count: int) -> list[tuple[str, str]]:
    """The next `count` invoice events (delivered concurrently: in no set order)."""
    seen: list[tuple[str, str]] = []
    while len(seen) < count:
        event = (await receiver.next()).event
        if event["type"].startswith("invoice."):
            seen.append((event["type"], event["data"]["id"]))
    return sorted(seen)


# --------------------------------------------------------------------------- issuing
async def test_issued_with_the_tax_of_each_item(wallet_gateway: Gateway, wechat_sim: Sim,
                                                receiver: Receiver) -> None:
    client, _ = await wallet_gateway.merchant()
    payment = await paid(client, "inv-1", 10600, notify_url=receiver.url())
    items = [{"name": "咨询", "amount": 6000, "tax_rate_bp": 600},
             {"name": "培训", "amount": 4600, "tax_rate_bp": 300}]
    body = {"buyer": COMPANY, "items": items}
    made = await client.post(f"/v1/payments/{payment['id']}/invoice", body)
    assert made.status == 201, made.body
    inv = made.body
    assert inv["object"] == "invoice" and inv["id"].startswith("inv_")
    assert inv["status"] in ("issuing", "issued") and inv["payment_id"] == payment["id"]
    assert (inv["amount"], inv["currency"]) == (10600, "CNY")
    assert [i["tax_amount"] for i in inv["items"]] == [tax(6000, 600), tax(4600, 300)]
    assert inv["tax_amount"] == tax(6000, 600) + tax(4600, 300) == 340 + 134
    assert inv["buyer"] == {"type": "organization", "title": COMPANY["title"],
                            "tax_id": COMPANY["tax_id"], "email": "f***@example.com"}
    issued = await reaches(client, inv["id"], "issued")
    assert len(issued["invoice_no"]) == 20 and issued["invoice_no"].isdigit()
    assert (await sim_invoices(wechat_sim))[rail_no(inv["id"])] == {
        "status": "ISSUED", "total": 10600, "tax": 474,
        "order": payment["attempts"][0]["rail_order_no"]}
    event = (await receiver.next_of("invoice.issued")).event
    assert event["data"]["id"] == inv["id"] and event["data"]["status"] == "issued"
    assert (await client.get(f"/v1/payments/{payment['id']}")).body["invoice"] == inv["id"]

    # One current invoice: the same request answers it, another is refused.
    again = await client.post(f"/v1/payments/{payment['id']}/invoice", body)
    assert again.status == 200 and again.body["id"] == inv["id"], again.body
    other = await client.post(f"/v1/payments/{payment['id']}/invoice", {"buyer": PERSON})
    assert_error(other, 409, "invalid_state")
    assert list(await sim_invoices(wechat_sim)) == [rail_no(inv["id"])]


async def test_bad_requests_write_nothing(wallet_gateway: Gateway, wechat_sim: Sim,
                                          redis_client: Any) -> None:
    client, _ = await wallet_gateway.merchant()
    payment = await paid(client, "inv-2", 1000)
    path = f"/v1/payments/{payment['id']}/invoice"
    key = {"Idempotency-Key": "inv-2-key"}
    short = await client.post(path, {"buyer": PERSON, "items": [
        {"name": "a", "amount": 600, "tax_rate_bp": 600},
        {"name": "b", "amount": 300, "tax_rate_bp": 600}]}, headers=key)
    assert_error(short, 422, "validation_error", param="items")
    no_tax_id = await client.post(path, {"buyer": {"type": "organization", "title": "某公司"}})
    assert_error(no_tax_id, 422, "validation_error", param="buyer.tax_id")
    for bad, param in (({"buyer": {**PERSON, "type": "alien"}}, "buyer.type"),
                       ({"buyer": PERSON, "items": [{"name": "a", "amount": 1000,
                                                     "tax_rate_bp": 10001}]},
                        "items.tax_rate_bp"),
                       ({"buyer": PERSON, "items": []}, "items")):
        assert_error(await client.post(path, bad), 422, "validation_error", param=param)
    assert await invoice_traces(redis_client, payment["id"]) == []
    assert "invoice" not in (await client.get(f"/v1/payments/{payment['id']}")).body
    assert await sim_invoices(wechat_sim) == {}

    # Corrected, with the same key: no items is one item at the default rate (6 %).
    fixed = await client.post(path, {"buyer": PERSON}, headers=key)
    assert fixed.status == 201, fixed.body
    assert fixed.body["items"] == [{"name": "Coffee", "amount": 1000, "tax_rate_bp": 600,
                                    "tax_amount": tax(1000, 600)}]
    assert fixed.body["tax_amount"] == 57 and "email" not in fixed.body["buyer"]
    replay = await client.post(path, {"buyer": PERSON}, headers=key)
    assert replay.raw == fixed.raw and replay.headers["Idempotent-Replayed"] == "true"


async def test_only_a_paid_payment_on_an_invoicing_rail(wallet_gateway: Gateway,
                                                        redis_client: Any) -> None:
    client, _ = await wallet_gateway.merchant()
    bank = await client.post("/v1/payments", payment_body("inv-bank"))
    assert bank.status == 201 and bank.body["status"] == "succeeded", bank.body
    refused = await client.post(f"/v1/payments/{bank.body['id']}/invoice", {"buyer": PERSON})
    assert_error(refused, 422, "validation_error", param=None)
    assert "bank rail issues no invoices" in refused.body["error"]["message"]
    assert await invoice_traces(redis_client, bank.body["id"]) == []
    unpaid = await client.post("/v1/payments", payment_body(
        "inv-qr", scene="native", method="wechatpay"))
    assert unpaid.body["status"] == "requires_action", unpaid.body
    early = await client.post(f"/v1/payments/{unpaid.body['id']}/invoice", {"buyer": PERSON})
    assert_error(early, 409, "invalid_state")
    missing = await client.get("/v1/invoices/inv_00AAAAAAAAAAAAAAAAAAAA")
    assert_error(missing, 404, "not_found")


# --------------------------------------------------------------------------- refunds
async def test_a_partial_refund_reverses_and_reissues_the_rest(
        wallet_gateway: Gateway, wechat_sim: Sim, receiver: Receiver) -> None:
    client, _ = await wallet_gateway.merchant()
    payment = await paid(client, "inv-3", 10000, notify_url=receiver.url())
    pid = payment["id"]
    first = (await client.post(f"/v1/payments/{pid}/invoice", {"buyer": COMPANY, "items": [
        {"name": "A", "amount": 6000, "tax_rate_bp": 600},
        {"name": "B", "amount": 4000, "tax_rate_bp": 1300}]})).body
    await reaches(client, first["id"], "issued")
    await refunded(client, pid, 2500, "r1")

    await reaches(client, first["id"], "reversed")
    second_id = await _next_invoice(client, pid, first["id"])
    second = await reaches(client, second_id, "issued")
    assert (second["amount"], second["replaces"]) == (7500, first["id"])
    # Scaled proportionally: 6000 × 0.75 and 4000 × 0.75.
    assert [(i["name"], i["amount"]) for i in second["items"]] == [("A", 4500), ("B", 3000)]
    assert second["tax_amount"] == tax(4500, 600) + tax(3000, 1300)
    assert second["buyer"] == first["buyer"]
    ledger = await sim_invoices(wechat_sim)
    assert ledger[rail_no(first["id"])]["status"] == "REVERSED"
    assert ledger[rail_no(second_id)] == {"status": "ISSUED", "total": 7500,
                                          "tax": second["tax_amount"],
                                          "order": ledger[rail_no(first["id"])]["order"]}
    assert await invoice_events(receiver, 3) == sorted([
        ("invoice.issued", first["id"]), ("invoice.reversed", first["id"]),
        ("invoice.issued", second_id)])

    # The rest refunded: the reissue is reversed and nothing follows it.
    await refunded(client, pid, 7500, "r2")
    await reaches(client, second_id, "reversed")
    assert len(await sim_invoices(wechat_sim)) == 2
    assert (await client.get(f"/v1/payments/{pid}")).body["invoice"] == second_id


async def test_a_full_refund_reverses_and_reissues_nothing(wallet_gateway: Gateway,
                                                           wechat_sim: Sim) -> None:
    client, _ = await wallet_gateway.merchant()
    payment = await paid(client, "inv-4", 2000)
    inv = (await client.post(f"/v1/payments/{payment['id']}/invoice",
                             {"buyer": PERSON})).body
    await reaches(client, inv["id"], "issued")
    await refunded(client, payment["id"], 2000, "r1")
    reversed_ = await reaches(client, inv["id"], "reversed")
    assert reversed_["invoice_no"]
    ledger = await sim_invoices(wechat_sim)
    assert list(ledger) == [rail_no(inv["id"])] and ledger[rail_no(inv["id"])][
        "status"] == "REVERSED"
    after = (await client.get(f"/v1/payments/{payment['id']}")).body
    assert (after["status"], after["invoice"]) == ("refunded", inv["id"])
    # The same request answers the (reversed) invoice; no other is made for it.
    again = await client.post(f"/v1/payments/{payment['id']}/invoice", {"buyer": PERSON})
    assert again.status == 200 and again.body["status"] == "reversed", again.body
    other = await client.post(f"/v1/payments/{payment['id']}/invoice", {"buyer": COMPANY})
    assert_error(other, 409, "invalid_state")


async def test_reversed_and_reissued_once_without_the_listener(
        quiet_wallet_gateway: Gateway, wechat_sim: Sim, redis_client: Any) -> None:
    """A process that dies right after the refund succeeded: the refund script left the
    invoice due, and five workers racing on it reverse it once and reissue it once."""
    gw = quiet_wallet_gateway
    gw.services.payments.refunds.invoice_listeners.clear()  # as if the process died
    client, _ = await gw.merchant()
    payment = await paid(client, "inv-8", 3000)
    first = (await client.post(f"/v1/payments/{payment['id']}/invoice",
                               {"buyer": PERSON})).body
    worker = gw.services.invoices.worker
    await worker.work(first["id"])  # what the sweeper does
    assert (await invoice_of(client, first["id"]))["status"] == "issued"
    shard = keys.shard_in(payment["id"])
    assert await redis_client.zscore(keys.due(shard), f"iv:{first['id']}") is None
    await refunded(client, payment["id"], 1000, "r1")
    assert await redis_client.zscore(keys.due(shard), f"iv:{first['id']}") is not None
    await asyncio.gather(*(worker.work(first["id"]) for _ in range(5)))
    second_id = (await client.get(f"/v1/payments/{payment['id']}")).body["invoice"]
    assert second_id != first["id"]
    await asyncio.gather(*(worker.work(second_id) for _ in range(5)))
    assert (await invoice_of(client, first["id"]))["status"] == "reversed"
    second = await invoice_of(client, second_id)
    assert (second["status"], second["amount"]) == ("issued", 2000)
    ledger = await sim_invoices(wechat_sim)
    assert {no: (row["status"], row["total"]) for no, row in ledger.items()} == {
        rail_no(first["id"]): ("REVERSED", 3000), rail_no(second_id): ("ISSUED", 2000)}
    assert [m for m in await redis_client.zrange(keys.due(shard), 0, -1)
            if m.startswith(b"iv:")] == []


async def _next_invoice(client: Client, pid: str, previous: str) -> str:
    found: list[str] = []

    async def moved_on() -> bool:
        current = (await client.get(f"/v1/payments/{pid}")).body.get("invoice")
        found.append(current)
        return bool(current != previous)

    await eventually(moved_on)
    return found[-1]


# --------------------------------------------------------------------------- unknown outcomes
async def test_unknown_outcomes_are_settled_by_the_sweeper(wallet_gateway: Gateway,
                                                           wechat_sim: Sim) -> None:
    client, _ = await wallet_gateway.merchant()
    lost, failed = await paid(client, "inv-5", 500), await paid(client, "inv-6", 700)
    await wechat_sim.faults(timeout_rate=1.0)  # issued, the answer never comes
    late = await client.post(f"/v1/payments/{lost['id']}/invoice", {"buyer": PERSON})
    await wechat_sim.faults(error_rate=1.0)  # SYSTEM_ERROR: nothing issued
    down = await client.post(f"/v1/payments/{failed['id']}/invoice", {"buyer": PERSON})
    for reply in (late, down):
        assert reply.status == 201 and reply.body["status"] == "issuing", reply.body
    assert list(await sim_invoices(wechat_sim)) == [rail_no(late.body["id"])]
    await wechat_sim.faults()
    for reply in (late, down):  # asked about; the one never received is sent again
        await reaches(client, reply.body["id"], "issued")
    ledger = await sim_invoices(wechat_sim)
    assert {no: row["total"] for no, row in ledger.items()} == {
        rail_no(late.body["id"]): 500, rail_no(down.body["id"]): 700}


@pytest.fixture
async def quiet_wallet_gateway(redis_url: str, bank_sim: Sim, wechat_sim: Sim, alipay_sim: Sim,
                               tmp_path: Path, http: aiohttp.ClientSession
                               ) -> AsyncIterator[Gateway]:
    """No sweeper: only the rail's notifications settle anything."""
    settings = gateway_settings(redis_url, bank_sim, tmp_path, wechat_sim, alipay_sim)
    gw = await start_gateway(settings, http, background=False)
    yield gw
    await gw.close()


async def test_the_rails_notification_settles_it(quiet_wallet_gateway: Gateway,
                                                 wechat_sim: Sim) -> None:
    client, _ = await quiet_wallet_gateway.merchant()
    qr = await client.post("/v1/payments", payment_body(
        "inv-7", amount=1300, scene="native", method="wechatpay"))
    order_no = qr.body["attempts"][0]["rail_order_no"]
    async with wechat_sim.session.post(f"{wechat_sim.base_url}/sim/orders/{order_no}/pay"
                                       ) as resp:
        assert resp.status == 200, await resp.text()
    await wechat_sim.runtime.notifications_settled()
    inv = await client.post(f"/v1/payments/{qr.body['id']}/invoice", {"buyer": PERSON})
    assert inv.status == 201 and inv.body["status"] in ("issuing", "issued"), inv.body
    await wechat_sim.runtime.notifications_settled()  # FAPIAO.ISSUED to /v1/notify/wechatpay
    issued = await invoice_of(client, inv.body["id"])
    assert issued["status"] == "issued" and issued["invoice_no"], issued
