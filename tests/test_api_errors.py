"""Every row of API.md's error table, through HTTP: status, code, param, the envelope,
and that no error leaks a secret or a stack trace."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from tests.asserts import assert_error, assert_no_leak, ledger_order
from tests.conftest import BankSim
from tests.helpers import ADMIN_TOKEN, Client, Gateway, Reply, eventually, payment_body

SECRET = "whsec_test_secret_1"


async def paid(client: Client, otn: str, amount: int = 1000) -> dict[str, Any]:
    created = await client.post("/v1/payments", payment_body(otn, amount=amount))
    assert created.status == 201, created.body
    assert created.body["status"] == "succeeded", created.body
    body: dict[str, Any] = created.body
    return body


# --------------------------------------------------------------------------- 400
async def test_body_not_a_json_object_is_invalid_json(gateway: Gateway) -> None:
    client, created = await gateway.merchant()
    for raw in (b"not json", b"{\"amount\": 1", b"", b"[1, 2]", b"\"text\"", b"42", b"null",
                b"\xff\xfe"):
        reply = await client.post("/v1/payments", raw=raw)
        assert_error(reply, 400, "invalid_json")
        assert_no_leak(reply, created["api_key"], SECRET)


async def test_refund_and_close_bodies_must_be_json_objects(gateway: Gateway) -> None:
    client, _ = await gateway.merchant()
    payment = await paid(client, "bad-json-1")
    refund = await client.post(f"/v1/payments/{payment['id']}/refunds", raw=b"[]")
    assert_error(refund, 400, "invalid_json")
    refund = await client.post(f"/v1/payments/{payment['id']}/refunds", raw=b"{oops")
    assert_error(refund, 400, "invalid_json")
    close = await client.post(f"/v1/payments/{payment['id']}/close", raw=b"[1]")
    assert_error(close, 400, "invalid_json")


async def test_malformed_idempotency_key_is_invalid_request(
    gateway: Gateway, bank_sim: BankSim
) -> None:
    client, _ = await gateway.merchant()
    for key in ("", "k" * 256, "tab\there", "caf\u00e9"):
        reply = await client.post("/v1/payments", payment_body("bad-key-1"),
                                  headers={"Idempotency-Key": key})
        assert_error(reply, 400, "invalid_request")
    # Refused before any effect: nothing was created, nothing charged.
    assert (await client.get("/v1/payments?out_trade_no=bad-key-1")).status == 404
    assert (await bank_sim.ledger())["totals"]["orders"] == 0


async def test_malformed_idempotency_key_on_refund_and_close(gateway: Gateway) -> None:
    client, _ = await gateway.merchant()
    payment = await paid(client, "bad-key-2")
    bad = {"Idempotency-Key": "x" * 300}
    refund = await client.post(f"/v1/payments/{payment['id']}/refunds",
                               {"amount": 100, "out_refund_no": "r1"}, headers=bad)
    assert_error(refund, 400, "invalid_request")
    close = await client.post(f"/v1/payments/{payment['id']}/close", headers=bad)
    assert_error(close, 400, "invalid_request")
    listed = await client.get(f"/v1/payments/{payment['id']}/refunds")
    assert listed.status == 200 and listed.body["data"] == []


# --------------------------------------------------------------------------- 401
async def test_missing_or_wrong_key_is_unauthorized(gateway: Gateway, bank_sim: BankSim) -> None:
    client, created = await gateway.merchant()
    payment = await paid(client, "auth-1")
    for authorization in (None, "Bearer sk_wrong_key", "Bearer ", "Basic dXNlcjpwYXNz",
                          created["api_key"], f"Bearer {created['api_key']}x"):
        await _all_unauthorized(gateway, created, payment["id"], authorization)
    # Nothing happened: one order (the paid one), no refund.
    ledger = await bank_sim.ledger()
    assert ledger["totals"]["orders"] == 1 and ledger["totals"]["refunded"] == 0
    assert (await client.get("/v1/payments?out_trade_no=auth-2")).status == 404
    assert (await client.get(f"/v1/payments/{payment['id']}")).body["status"] == "succeeded"


async def _all_unauthorized(gateway: Gateway, created: dict[str, Any], pid: str,
                            authorization: str | None) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    calls = [
        ("POST", "/v1/payments", payment_body("auth-2")),
        ("GET", f"/v1/payments/{pid}", None),
        ("GET", "/v1/payments?out_trade_no=auth-1", None),
        ("POST", f"/v1/payments/{pid}/close", None),
        ("POST", f"/v1/payments/{pid}/refunds", {"amount": 1, "out_refund_no": "r"}),
        ("GET", f"/v1/payments/{pid}/refunds", None),
    ]
    for method, path, body in calls:
        async with gateway.session.request(
            method, gateway.base + path, data=orjson.dumps(body) if body else None,
            headers={**headers, "Content-Type": "application/json"},
        ) as resp:
            raw = await resp.read()
            reply = Reply(resp.status, orjson.loads(raw), raw, resp.headers)
        assert_error(reply, 401, "unauthorized")
        assert_no_leak(reply, created["api_key"], SECRET, ADMIN_TOKEN)


async def test_admin_routes_refuse_merchant_keys(gateway: Gateway) -> None:
    client, created = await gateway.merchant()
    mid = created["id"]
    for reply in (
        await client.post("/v1/admin/merchants", {"name": "Evil"}),
        await client.get(f"/v1/admin/merchants/{mid}"),
        await client.patch(f"/v1/admin/merchants/{mid}", {"rate_limit": {"rps": 1e6,
                                                                          "burst": 10**6}}),
        await client.post("/v1/admin/events/evt_x/redeliver"),
        await client.get("/v1/admin/events/dead"),
    ):
        assert_error(reply, 401, "unauthorized")
        assert_no_leak(reply, created["api_key"], SECRET, ADMIN_TOKEN)
    # The merchant is unchanged.
    record = await gateway.admin().get(f"/v1/admin/merchants/{mid}")
    assert record.status == 200 and record.body["rate_limit"] is None


async def test_admin_token_is_not_a_merchant_key(gateway: Gateway) -> None:
    reply = await gateway.admin().post("/v1/payments", payment_body("admin-1"))
    assert_error(reply, 401, "unauthorized")
    assert_no_leak(reply, ADMIN_TOKEN)


# --------------------------------------------------------------------------- 404
async def test_unknown_ids_are_not_found(gateway: Gateway) -> None:
    client, _ = await gateway.merchant()
    for path in ("/v1/payments/pay_nope", "/v1/payments/pay_0a00000000000000000000",
                 "/v1/payments?out_trade_no=never-used", "/v1/refunds/re_nope",
                 "/v1/refunds/re_0a00000000000000000000",
                 "/v1/payments/pay_0a00000000000000000000/refunds"):
        assert_error(await client.get(path), 404, "not_found")
    for path, body in (("/v1/payments/pay_0a00000000000000000000/close", None),
                       ("/v1/payments/pay_nope/refunds", {"amount": 1, "out_refund_no": "r"})):
        assert_error(await client.post(path, body), 404, "not_found")


async def test_another_merchants_objects_are_not_found(
    gateway: Gateway, bank_sim: BankSim
) -> None:
    alice, alice_rec = await gateway.merchant("Alice")
    mallory, mallory_rec = await gateway.merchant("Mallory")
    payment = await paid(alice, "alice-1")
    refund = await alice.post(f"/v1/payments/{payment['id']}/refunds",
                              {"amount": 100, "out_refund_no": "r1"})
    assert refund.status == 201, refund.body
    pid, rid = payment["id"], refund.body["id"]

    replies = [
        await mallory.get(f"/v1/payments/{pid}"),
        await mallory.get("/v1/payments?out_trade_no=alice-1"),
        await mallory.post(f"/v1/payments/{pid}/close"),
        await mallory.post(f"/v1/payments/{pid}/refunds", {"amount": 100, "out_refund_no": "r2"}),
        await mallory.post(f"/v1/payments/{pid}/refunds", {"amount": 100, "out_refund_no": "r1"}),
        await mallory.get(f"/v1/payments/{pid}/refunds"),
        await mallory.get(f"/v1/refunds/{rid}"),
    ]
    for reply in replies:
        assert_error(reply, 404, "not_found")
        # Nothing of Alice's leaks into Mallory's answers.
        assert_no_leak(reply, pid, rid, "alice-1", alice_rec["id"], alice_rec["api_key"],
                       mallory_rec["api_key"], SECRET)
    # Alice's payment is untouched: one refund of 100 only, and it is not closed.
    listed = await alice.get(f"/v1/payments/{pid}/refunds")
    assert [r["id"] for r in listed.body["data"]] == [rid]

    async def settled() -> bool:
        return (await alice.get(f"/v1/payments/{pid}")).body["status"] == "partially_refunded"

    await eventually(settled)
    order = await ledger_order(bank_sim, payment)
    assert order is not None and order["refunded"] == 100 and order["charged"] == 1000


# --------------------------------------------------------------------------- 409
async def test_same_key_in_flight_is_in_use(gateway: Gateway, bank_sim: BankSim) -> None:
    client, _ = await gateway.merchant()
    body = payment_body("hang-1", auth_code="134567890123456789")
    headers = {"Idempotency-Key": "in-flight-1"}
    first = asyncio.create_task(client.post("/v1/payments", body, headers=headers))

    async def at_bank() -> bool:
        return (await bank_sim.ledger())["totals"]["orders"] == 1

    await eventually(at_bank, timeout=3)
    assert not first.done()
    second = await client.post("/v1/payments", body, headers=headers)
    assert_error(second, 409, "idempotency_key_in_use")
    done = await first
    # The rail's answer is lost: 504, unless the sweeper's query settled the payment
    # before the rail timeout ran out, in which case the payment itself is the answer.
    if done.status == 201:
        assert done.body["status"] == "succeeded"
    else:
        assert_error(done, 504, "adapter_timeout")
    assert (await bank_sim.ledger())["totals"]["charges"] == 1


async def test_out_trade_no_with_other_parameters_is_conflict(
    gateway: Gateway, bank_sim: BankSim
) -> None:
    client, _ = await gateway.merchant()
    first = await paid(client, "otn-1")
    for changed in (payment_body("otn-1", amount=999),
                    payment_body("otn-1", auth_code="134567890123456771"),
                    payment_body("otn-1", description="Tea")):
        assert_error(await client.post("/v1/payments", changed), 409, "out_trade_no_used")
    assert (await client.get("/v1/payments?out_trade_no=otn-1")).body["id"] == first["id"]
    assert (await bank_sim.ledger())["totals"]["charges"] == 1


async def test_refund_of_unpaid_payment_is_invalid_state(
    gateway: Gateway, bank_sim: BankSim
) -> None:
    client, _ = await gateway.merchant()
    created = await client.post("/v1/payments", payment_body("qr-1", scene="native"))
    assert created.status == 201 and created.body["status"] == "requires_action", created.body
    reply = await client.post(f"/v1/payments/{created.body['id']}/refunds",
                              {"amount": 100, "out_refund_no": "r1"})
    assert_error(reply, 409, "invalid_state")
    assert (await client.get(f"/v1/payments/{created.body['id']}/refunds")).body["data"] == []
    # A failed (declined) payment cannot be refunded either.
    declined = await client.post("/v1/payments",
                                 payment_body("declined-1", auth_code="134567890123456782"))
    assert declined.status == 201 and declined.body["status"] == "failed", declined.body
    reply = await client.post(f"/v1/payments/{declined.body['id']}/refunds",
                              {"amount": 100, "out_refund_no": "r1"})
    assert_error(reply, 409, "invalid_state")
    assert (await bank_sim.ledger())["totals"]["refunded"] == 0


async def test_close_of_paid_payment_is_invalid_state(
    gateway: Gateway, bank_sim: BankSim
) -> None:
    client, _ = await gateway.merchant()
    payment = await paid(client, "paid-close-1")
    assert_error(await client.post(f"/v1/payments/{payment['id']}/close"), 409, "invalid_state")
    after = await client.get(f"/v1/payments/{payment['id']}")
    assert after.body["status"] == "succeeded"
    order = await ledger_order(bank_sim, payment)
    assert order is not None and order["status"] == "SUCCESS" and order["refunded"] == 0


# --------------------------------------------------------------------------- 413
async def test_body_over_64_kib_is_payload_too_large(gateway: Gateway, bank_sim: BankSim) -> None:
    client, created = await gateway.merchant()
    big = payment_body("big-1", metadata={"blob": "x" * (65 * 1024)})
    reply = await client.post("/v1/payments", big)
    assert_error(reply, 413, "payload_too_large")
    assert_no_leak(reply, created["api_key"], SECRET)
    payment = await paid(client, "big-2")
    refund = await client.post(f"/v1/payments/{payment['id']}/refunds",
                               {"amount": 1, "out_refund_no": "r1", "reason": "y" * 70_000})
    assert_error(refund, 413, "payload_too_large")
    assert (await client.get("/v1/payments?out_trade_no=big-1")).status == 404
    assert (await bank_sim.ledger())["totals"]["orders"] == 1


# --------------------------------------------------------------------------- 422
def _without(body: dict[str, Any], field: str) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != field}


_BASE = payment_body("val-1")
VALIDATION_CASES: list[tuple[str, dict[str, Any], str]] = [
    ("missing amount", _without(_BASE, "amount"), "amount"),
    ("amount 0", {**_BASE, "amount": 0}, "amount"),
    ("amount -1", {**_BASE, "amount": -1}, "amount"),
    ("amount 1.5", {**_BASE, "amount": 1.5}, "amount"),
    ("amount string", {**_BASE, "amount": "100"}, "amount"),
    ("amount true", {**_BASE, "amount": True}, "amount"),
    ("amount null", {**_BASE, "amount": None}, "amount"),
    ("missing currency", _without(_BASE, "currency"), "currency"),
    ("unknown currency", {**_BASE, "currency": "XYZ"}, "currency"),
    ("currency not a string", {**_BASE, "currency": 156}, "currency"),
    ("missing scene", _without(_BASE, "scene"), "scene"),
    ("unknown scene", {**_BASE, "scene": "telepathy"}, "scene"),
    ("quickpay without auth_code", {**_BASE, "payer": {"openid": "o1"}}, "payer.auth_code"),
    ("quickpay without payer", _without(_BASE, "payer"), "payer.auth_code"),
    ("unknown method", {**_BASE, "method": "carrier_pigeon"}, "method"),
    ("unknown field", {**_BASE, "colour": "red"}, "colour"),
    ("missing out_trade_no", _without(_BASE, "out_trade_no"), "out_trade_no"),
]


async def test_invalid_payment_is_validation_error(gateway: Gateway, bank_sim: BankSim) -> None:
    client, _ = await gateway.merchant()
    for case, body, param in VALIDATION_CASES:
        reply = await client.post("/v1/payments", body)
        assert reply.status == 422, (case, reply.body)
        assert_error(reply, 422, "validation_error", param)
    assert (await client.get("/v1/payments?out_trade_no=val-1")).status == 404
    assert (await bank_sim.ledger())["totals"]["orders"] == 0


REFUND_CASES: list[tuple[dict[str, Any], str]] = [
    ({"out_refund_no": "r1"}, "amount"),
    ({"amount": 0, "out_refund_no": "r1"}, "amount"),
    ({"amount": -5, "out_refund_no": "r1"}, "amount"),
    ({"amount": "10", "out_refund_no": "r1"}, "amount"),
    ({"amount": 10}, "out_refund_no"),
    ({"amount": 10, "out_refund_no": "r1", "extra": 1}, "extra"),
]


async def test_invalid_refund_is_validation_error(gateway: Gateway) -> None:
    client, _ = await gateway.merchant()
    payment = await paid(client, "val-refund-1")
    for body, param in REFUND_CASES:
        reply = await client.post(f"/v1/payments/{payment['id']}/refunds", body)
        assert_error(reply, 422, "validation_error", param)
    assert (await client.get(f"/v1/payments/{payment['id']}/refunds")).body["data"] == []


async def test_same_key_other_body_is_key_reused(gateway: Gateway, bank_sim: BankSim) -> None:
    client, _ = await gateway.merchant()
    headers = {"Idempotency-Key": "reuse-1"}
    first = await client.post("/v1/payments", payment_body("reuse-1"), headers=headers)
    assert first.status == 201, first.body
    other = await client.post("/v1/payments", payment_body("reuse-2"), headers=headers)
    assert_error(other, 422, "idempotency_key_reused")
    assert (await client.get("/v1/payments?out_trade_no=reuse-2")).status == 404
    assert (await bank_sim.ledger())["totals"]["orders"] == 1


async def test_refund_above_paid_amount_is_refused(gateway: Gateway, bank_sim: BankSim) -> None:
    client, _ = await gateway.merchant()
    payment = await paid(client, "exceeds-1")
    path = f"/v1/payments/{payment['id']}/refunds"
    assert_error(await client.post(path, {"amount": 1001, "out_refund_no": "r1"}),
                 422, "refund_exceeds_amount")
    assert (await client.post(path, {"amount": 600, "out_refund_no": "r2"})).status == 201
    assert_error(await client.post(path, {"amount": 401, "out_refund_no": "r3"}),
                 422, "refund_exceeds_amount")
    listed = await client.get(path)
    assert [r["amount"] for r in listed.body["data"]] == [600]


# --------------------------------------------------------------------------- 429
async def test_rate_limited_has_retry_after_and_ratelimit_headers(gateway: Gateway) -> None:
    client, created = await gateway.merchant(rate_limit={"rps": 1, "burst": 2})
    statuses = [(await client.get("/v1/payments?out_trade_no=none")).status for _ in range(2)]
    assert statuses == [404, 404]
    reply = await client.get("/v1/payments?out_trade_no=none")
    assert_error(reply, 429, "rate_limited")
    assert_no_leak(reply, created["api_key"], SECRET)
    retry_after = int(reply.headers["Retry-After"])
    assert 1 <= retry_after <= 2
    assert int(reply.headers["RateLimit-Limit"]) == 2
    assert int(reply.headers["RateLimit-Remaining"]) == 0
    assert 0 <= int(reply.headers["RateLimit-Reset"]) <= 2


# --------------------------------------------------------------------------- 502/504
async def test_rail_timeout_is_504_and_payment_settles(
    gateway: Gateway, bank_sim: BankSim
) -> None:
    client, created = await gateway.merchant()
    reply = await client.post("/v1/payments",
                              payment_body("timeout-1", auth_code="134567890123456789"))
    assert_error(reply, 504, "adapter_timeout")
    assert_no_leak(reply, created["api_key"], SECRET)
    pid = reply.body["error"]["payment_id"]
    fetched = await client.get(f"/v1/payments/{pid}")
    assert fetched.status == 200, fetched.body
    # The sweeper may already have asked the bank during the 1 s wait.
    assert fetched.body["status"] in ("processing", "succeeded"), fetched.body
    assert fetched.body["out_trade_no"] == "timeout-1"

    async def succeeded() -> bool:
        return (await client.get(f"/v1/payments/{pid}")).body["status"] == "succeeded"

    await eventually(succeeded)
    order = await ledger_order(bank_sim, fetched.body)
    assert order is not None and order["charges"] == 1 and order["charged"] == 1000


async def test_rail_error_is_502_and_payment_stays_processing(
    gateway: Gateway, bank_sim: BankSim
) -> None:
    client, created = await gateway.merchant()
    await bank_sim.faults(error_rate=1.0)
    reply = await client.post("/v1/payments", payment_body("error-1"))
    assert_error(reply, 502, "adapter_error")
    assert_no_leak(reply, created["api_key"], SECRET)
    pid = reply.body["error"]["payment_id"]
    fetched = await client.get(f"/v1/payments/{pid}")
    assert fetched.status == 200 and fetched.body["status"] == "processing", fetched.body
    assert "failure" not in fetched.body
    assert (await client.get("/v1/payments?out_trade_no=error-1")).body["id"] == pid
    assert (await bank_sim.ledger())["totals"]["charges"] == 0
    # The rail comes back: the charge it never applied is reversed, never failed or charged.
    await bank_sim.faults()

    async def settled() -> bool:
        status = (await client.get(f"/v1/payments/{pid}")).body["status"]
        assert status in ("processing", "closed"), status
        return bool(status == "closed")

    await eventually(settled)
    assert (await bank_sim.ledger())["totals"]["charges"] == 0


# --------------------------------------------------------------------------- leaks
async def test_errors_never_echo_secrets(gateway: Gateway) -> None:
    client, created = await gateway.merchant()
    key = created["api_key"]
    wrong = Client(gateway.session, gateway.base, key + "x")
    replies = [
        await wrong.get("/v1/payments/pay_nope"),
        await client.post("/v1/payments", {**payment_body("leak-1"), "api_key": key}),
        await client.post("/v1/payments", {**payment_body("leak-2"), "currency": key[:60]}),
        await client.post("/v1/payments", raw=key.encode()),
        await client.post("/v1/payments/pay_nope/refunds", {"amount": 1, "out_refund_no": "r"}),
    ]
    for reply in replies:
        assert reply.status >= 400
        assert_no_leak(reply, key, SECRET, ADMIN_TOKEN)
