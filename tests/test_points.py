"""Merchant points (API.md, "Merchant points"): one point per distinct payer per merchant
per Asia/Shanghai day for qualifying payments, a ledger, per-merchant balances, and
redemptions that never take the balance below zero, even all at once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, final
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from aiohttp import web

from router.app import create_app
from router.sandbox.embedded import free_port
from router.security import random_token
from tests.asserts import assert_error
from tests.helpers import Client, Gateway, eventually, fast_settings, start_gateway
from tests.social import INSTANT_WALLETS

pytestmark = pytest.mark.both_topologies

SHANGHAI = ZoneInfo("Asia/Shanghai")


@final
class MovableClock:
    """Real time shifted by an offset the test moves (a day boundary on demand)."""

    def __init__(self) -> None:
        self.offset_ms = 0

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000 + self.offset_ms

    def token(self, length: int) -> str:
        return random_token(length)

    def set(self, at: datetime) -> None:
        self.offset_ms = int(at.timestamp() * 1000) - time.time_ns() // 1_000_000


def nearest_midnight() -> datetime:
    """The Asia/Shanghai midnight nearest to now (the clock moves less than 12 h)."""
    now = datetime.now(SHANGHAI)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight + timedelta(days=1) if now.hour >= 12 else midnight


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock()


@pytest.fixture
async def points_gateway(redis_url: str, tmp_path: Path, http: aiohttp.ClientSession,
                         clock: MovableClock) -> AsyncIterator[Gateway]:
    settings = fast_settings(redis_url, INSTANT_WALLETS, free_port(), str(tmp_path / "data"))
    runner = web.AppRunner(create_app(settings, clock=clock), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, settings.server.host, settings.server.port).start()
    gw = Gateway(runner, settings, f"http://{settings.server.host}:{settings.server.port}", http)
    yield gw
    await gw.close()


async def pay(client: Client, otn: str, payer: dict[str, str], *, amount: int = 100,
              scene: str = "native", currency: str = "CNY") -> dict[str, Any]:
    body = {"amount": amount, "currency": currency, "out_trade_no": otn, "scene": scene,
            "method": "instant", "description": "Tea", "payer": payer}
    paid = await client.post("/v1/payments", body)
    assert paid.status == 201 and paid.body["status"] == "succeeded", paid.body
    result: dict[str, Any] = paid.body
    return result


async def points_when(client: Client, balance: int) -> dict[str, Any]:
    """The merchant's points once the balance is `balance` (earned in the background)."""
    seen: dict[str, Any] = {}

    async def reached() -> bool:
        got = await client.get("/v1/points?limit=100")
        assert got.status == 200, got.body
        seen.update(got.body)
        return bool(got.body["balance"] == balance)

    await eventually(reached)
    return seen


async def test_one_point_per_payer_per_day(points_gateway: Gateway) -> None:
    client, _ = await points_gateway.merchant()
    empty = await client.get("/v1/points")
    assert empty.body == {"object": "points", "balance": 0, "earned_today": 0,
                          "value_per_point": 100, "currency": "CNY", "entries": []}
    first = await pay(client, "p-1", {"openid": "o-alice"})
    await pay(client, "p-2", {"openid": "o-alice", "auth_code": "134567890123456781"},
              amount=5000, scene="quickpay")  # a member's code: the openid says who
    await pay(client, "p-3", {"openid": "o-carol"}, amount=99)  # under 1.00 CNY
    await pay(client, "p-4", {"openid": "o-dave"}, amount=500, scene="jsapi")
    await pay(client, "p-5", {"openid": "o-erin"}, amount=500, currency="USD")
    last = await pay(client, "p-6", {"openid": "o-bob"})  # journaled after all the above
    shown = await points_when(client, 2)
    assert shown["earned_today"] == 2
    entries = shown["entries"]
    assert [(e["kind"], e["points"]) for e in entries] == [("earn", 1), ("earn", 1)]
    assert {e["payment_id"] for e in entries} == {first["id"], last["id"]}
    assert all(e["at"].endswith("Z") for e in entries)
    # A payer code counts as a payer of its own (the rail does not say whose it is).
    await pay(client, "p-7", {"auth_code": "134567890123456781"}, scene="quickpay")
    await points_when(client, 3)


async def test_points_across_a_day_boundary(points_gateway: Gateway,
                                            clock: MovableClock) -> None:
    client, _ = await points_gateway.merchant()
    midnight = nearest_midnight()
    clock.set(midnight - timedelta(seconds=30))
    await pay(client, "d-1", {"openid": "o-alice"})
    await pay(client, "d-2", {"openid": "o-alice"})
    before = await points_when(client, 1)
    assert before["earned_today"] == 1

    clock.set(midnight + timedelta(seconds=5))  # a new day in Shanghai
    after = (await client.get("/v1/points")).body
    assert after["balance"] == 1 and after["earned_today"] == 0
    await pay(client, "d-3", {"openid": "o-alice"})
    again = await points_when(client, 2)
    assert again["earned_today"] == 1
    days = [datetime.fromisoformat(e["at"]).astimezone(SHANGHAI).date()
            for e in again["entries"]]
    assert days == [midnight.date(), (midnight - timedelta(days=1)).date()]


async def test_redemptions_never_overdraw(points_gateway: Gateway) -> None:
    client, _ = await points_gateway.merchant()
    other, _ = await points_gateway.merchant("Other")
    await asyncio.gather(*(pay(client, f"r-{i}", {"user": f"u{i}"}) for i in range(5)))
    await points_when(client, 5)

    answers = await asyncio.gather(*(
        client.post("/v1/points/redemptions", {"points": 1, "reward": f"Cup {i}"})
        for i in range(20)))
    won = [a for a in answers if a.status == 201]
    assert len(won) == 5
    for refused in (a for a in answers if a.status != 201):
        assert_error(refused, 409, "insufficient_points", param="points")
    assert sorted(a.body["balance"] for a in won) == [0, 1, 2, 3, 4]
    assert all(a.body["object"] == "points_redemption" and a.body["id"].startswith("ptr_")
               for a in won)
    shown = (await client.get("/v1/points?limit=100")).body
    assert shown["balance"] == 0
    kinds = [(e["kind"], e["points"]) for e in shown["entries"]]
    assert kinds == [("redemption", -1)] * 5 + [("earn", 1)] * 5
    # Points are the merchant's own: another merchant has none.
    assert (await other.get("/v1/points")).body["balance"] == 0
    assert_error(await other.post("/v1/points/redemptions", {"points": 1, "reward": "Cup"}),
                 409, "insufficient_points", param="points")


async def test_a_redemption_is_idempotent_and_bad_input_writes_nothing(
    points_gateway: Gateway
) -> None:
    client, _ = await points_gateway.merchant()
    await asyncio.gather(*(pay(client, f"i-{i}", {"buyer_id": f"2088{i}"}) for i in range(3)))
    await points_when(client, 3)
    key = {"Idempotency-Key": "redeem-1"}
    body = {"points": 2, "reward": "Free coffee"}
    first = await client.post("/v1/points/redemptions", body, headers=key)
    assert first.status == 201, first.body
    assert first.body == {"id": first.body["id"], "object": "points_redemption", "points": 2,
                          "reward": "Free coffee", "balance": 1,
                          "created_at": first.body["created_at"]}
    replay = await client.post("/v1/points/redemptions", body, headers=key)
    assert replay.status == 201 and replay.raw == first.raw
    assert replay.headers["Idempotent-Replayed"] == "true"

    for bad, param in (({"points": 0, "reward": "x"}, "points"),
                       ({"points": 1}, "reward"),
                       ({"points": 1, "reward": ""}, "reward"),
                       ({"points": "1", "reward": "x"}, "points"),
                       ({"points": 1, "reward": "x", "extra": 1}, "extra")):
        assert_error(await client.post("/v1/points/redemptions", bad), 422,
                     "validation_error", param=param)
    assert_error(await client.post("/v1/points/redemptions", {"points": 2, "reward": "Tea"}),
                 409, "insufficient_points", param="points")
    for limit in ("0", "101", "x"):
        assert_error(await client.get(f"/v1/points?limit={limit}"), 422,
                     "validation_error", param="limit")
    shown = (await client.get("/v1/points?limit=1")).body
    assert shown["balance"] == 1 and len(shown["entries"]) == 1
    assert shown["entries"][0]["redemption_id"] == first.body["id"]


async def test_a_payment_earns_even_if_its_gateway_stopped_before_looking(
    redis_url: str, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    """The point comes from the journal, written with the payment's success: a gateway
    that stops right after the payment (no background work at all) loses nothing."""
    settings = fast_settings(redis_url, INSTANT_WALLETS, free_port(), str(tmp_path / "data"))
    quiet = await start_gateway(settings, http, background=False)
    client, _ = await quiet.merchant()
    await pay(client, "c-1", {"openid": "o-alice"})
    await quiet.close()
    later = await start_gateway(settings, http)
    try:
        await points_when(Client(http, later.base, client.token), 1)
    finally:
        await later.close()
