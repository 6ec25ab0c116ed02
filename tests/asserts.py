"""Assertions shared by the HTTP contract tests (API.md, "Errors")."""

from __future__ import annotations

from typing import Any

from tests.conftest import BankSim
from tests.helpers import Client, Reply

_UNSET: Any = object()


def assert_error(reply: Reply, status: int, code: str, param: str | None = _UNSET) -> None:
    """`reply` is API.md's error envelope `{"error": {"code", "message", "param"?}}` with
    this status and code (and, when given, this `param`; None means no param)."""
    assert reply.status == status, (reply.status, reply.raw)
    assert reply.headers.get("Content-Type", "").startswith("application/json"), reply.headers
    assert isinstance(reply.body, dict), reply.raw
    assert set(reply.body) == {"error"}, reply.body
    error = reply.body["error"]
    assert isinstance(error, dict), reply.body
    assert error.get("code") == code, reply.body
    assert isinstance(error.get("message"), str) and error["message"], reply.body
    if "param" in error:
        assert isinstance(error["param"], str) and error["param"], reply.body
    if param is not _UNSET:
        assert error.get("param") == param, reply.body


def assert_no_leak(reply: Reply, *secrets: str) -> None:
    """No stack trace and none of `secrets` anywhere in the answer."""
    text = reply.raw.decode("utf-8", "replace")
    for marker in ("Traceback", 'File "', "/router/", ".py", "redis."):
        assert marker not in text, text
    for secret in secrets:
        assert secret not in text, text
        for value in reply.headers.values():
            assert secret not in value, reply.headers


async def payment_count(client: Client, out_trade_no: str) -> int:
    """1 if the merchant has a payment with this out_trade_no, else 0 (via the API)."""
    found = await client.get(f"/v1/payments?out_trade_no={out_trade_no}")
    assert found.status in (200, 404), found.body
    return 1 if found.status == 200 else 0


def rail_order(payment: dict[str, Any]) -> str:
    """The rail order number of a payment's first attempt (as the API shows it)."""
    no: str = payment["attempts"][0]["rail_order_no"]
    return no


async def ledger_order(bank_sim: BankSim, payment: dict[str, Any]) -> dict[str, Any] | None:
    ledger = await bank_sim.ledger()
    order: dict[str, Any] | None = ledger["orders"].get(rail_order(payment))
    return order
