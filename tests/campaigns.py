"""What the campaign tests share: a gateway with the bank simulator, the in-process
`instant` rail (also standing in for the wallets' payout rails) and a clock the test can
move; campaigns and payments made through the public API."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any, final

import aiohttp
import pytest
from aiohttp import web

from router.app import create_app
from router.sandbox.embedded import free_port
from router.security import random_token
from router.settings import RailSettings
from tests.conftest import Sim, rail_settings
from tests.helpers import Client, Gateway, eventually, fast_settings

WALLETS = (RailSettings(name="wechatpay", options={"adapter": "instant"}),
           RailSettings(name="alipay", options={"adapter": "instant"}))


@final
class MovableClock:
    """Real time shifted by an offset the test sets, or stopped (a window's edge)."""

    def __init__(self) -> None:
        self.offset_ms = 0
        self.frozen_ms: int | None = None

    def now_ms(self) -> int:
        if self.frozen_ms is not None:
            return self.frozen_ms
        return time.time_ns() // 1_000_000 + self.offset_ms

    def freeze(self, at: datetime) -> None:
        """Stop the clock at `at` (to the millisecond), for a window's very edge."""
        self.frozen_ms = round(at.timestamp() * 1000)

    def token(self, length: int) -> str:
        return random_token(length)

    def set(self, at: datetime) -> None:
        self.offset_ms = int(at.timestamp() * 1000) - time.time_ns() // 1_000_000

    def forward(self, ms: int) -> None:
        self.offset_ms += ms


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock()


async def start(redis_url: str, bank_sim: Sim, tmp_path: Path, http: aiohttp.ClientSession,
                clock: MovableClock, *, background: bool = True) -> Gateway:
    rails = (*rail_settings(bank_sim), *WALLETS)
    settings = fast_settings(redis_url, rails, free_port(), str(tmp_path / "data"))
    runner = web.AppRunner(create_app(settings, background=background, clock=clock),
                           access_log=None)
    await runner.setup()
    await web.TCPSite(runner, settings.server.host, settings.server.port).start()
    return Gateway(runner, settings, f"http://{settings.server.host}:{settings.server.port}",
                   http)


@pytest.fixture
async def campaign_gateway(redis_url: str, bank_sim: Sim, tmp_path: Path,
                           http: aiohttp.ClientSession,
                           clock: MovableClock) -> AsyncIterator[Gateway]:
    gw = await start(redis_url, bank_sim, tmp_path, http, clock)
    yield gw
    await gw.close()


def campaign_body(kind: str = "discount", *, reward: dict[str, Any] | None = None,
                  conditions: dict[str, Any] | None = None,
                  limits: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    return {"name": f"{kind} campaign", "kind": kind,
            "reward": reward or {"type": "fixed", "amount": 100, "max": 100},
            "conditions": conditions or {}, "limits": limits or {}, **extra}


async def new_campaign(client: Client, kind: str = "discount", **kw: Any) -> dict[str, Any]:
    made = await client.post("/v1/campaigns", campaign_body(kind, **kw))
    assert made.status == 201, made.body
    body: dict[str, Any] = made.body
    return body


async def pay(client: Client, otn: str, payer: dict[str, str], *, amount: int = 1000,
              method: str = "instant", scene: str = "native", status: int = 201,
              **extra: Any) -> dict[str, Any]:
    body = {"amount": amount, "currency": "CNY", "out_trade_no": otn, "scene": scene,
            "method": method, "description": "Tea", "payer": payer, **extra}
    made = await client.post("/v1/payments", body)
    assert made.status == status, made.body
    result: dict[str, Any] = made.body
    return result


async def campaign_when(client: Client, campaign_id: str, **wanted: Any) -> dict[str, Any]:
    """The campaign once every field in `wanted` has that value (settled off the request's
    path, by a listener or the sweeper)."""
    seen: dict[str, Any] = {}

    async def reached() -> bool:
        got = await client.get(f"/v1/campaigns/{campaign_id}")
        assert got.status == 200, got.body
        seen.update(got.body)
        return all(seen.get(k) == v for k, v in wanted.items())

    try:
        await eventually(reached)
    except AssertionError:
        raise AssertionError(f"campaign never reached {wanted}: {seen}") from None
    return seen


def reward_of(payment: dict[str, Any]) -> dict[str, Any] | None:
    promotions = payment.get("promotions") or []
    assert len(promotions) <= 1, promotions
    return promotions[0] if promotions else None
