"""Test helpers: a gateway on a real port, a JSON client, settings for fast tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
from aiohttp import web

from router.app import create_app
from router.sandbox.embedded import free_port
from router.security import Secret
from router.services import SERVICES, Services
from router.settings import (
    IdempotencySettings,
    RailSettings,
    RedisSettings,
    ServerSettings,
    Settings,
    SweeperSettings,
    WebhookSettings,
)

ADMIN_TOKEN = "test-admin-token"


def fast_settings(redis_url: str, rails: tuple[RailSettings, ...], port: int,
                  data_dir: str) -> Settings:
    """Production logic with compressed clocks, so tests settle in about a second."""
    from pathlib import Path

    return Settings(
        server=ServerSettings(host="127.0.0.1", port=port),
        redis=RedisSettings(url=redis_url),
        rails=rails,
        idempotency=IdempotencySettings(lease_s=2.0),
        sweeper=SweeperSettings(interval_s=0.05, first_check_s=2.0, query_every_s=0.25,
                                confirm_window_s=1.5, unknown_window_s=1.5, never_seen_s=3.0,
                                order_expiry_s=600.0, lease_s=2.0),
        webhooks=WebhookSettings(retry_schedule_s=(0.2, 0.3, 0.3), timeout_s=2.0,
                                 claim_idle_s=1.0),
        sandbox=True,
        data_dir=Path(data_dir),
        admin_token=Secret(ADMIN_TOKEN),
    )


@dataclass
class Reply:
    status: int
    body: Any
    raw: bytes
    headers: Any


@dataclass
class Client:
    """A merchant's (or the admin's) view of the gateway, through HTTP only."""

    session: aiohttp.ClientSession
    base: str
    token: str
    headers: dict[str, str] = field(default_factory=dict)

    async def request(self, method: str, path: str, body: Any = None, *,
                      raw: bytes | None = None, headers: dict[str, str] | None = None,
                      ) -> Reply:
        hdrs = {"Authorization": f"Bearer {self.token}", **self.headers, **(headers or {})}
        data = raw if raw is not None else (orjson.dumps(body) if body is not None else None)
        if data is not None:
            hdrs.setdefault("Content-Type", "application/json")
        async with self.session.request(method, self.base + path, data=data,
                                        headers=hdrs) as resp:
            payload = await resp.read()
            try:
                parsed = orjson.loads(payload) if payload else None
            except orjson.JSONDecodeError:
                parsed = None
            return Reply(resp.status, parsed, payload, resp.headers)

    async def post(self, path: str, body: Any = None, **kw: Any) -> Reply:
        return await self.request("POST", path, body, **kw)

    async def get(self, path: str, **kw: Any) -> Reply:
        return await self.request("GET", path, **kw)

    async def patch(self, path: str, body: Any = None, **kw: Any) -> Reply:
        return await self.request("PATCH", path, body, **kw)


@dataclass
class Gateway:
    runner: web.AppRunner
    settings: Settings
    base: str
    session: aiohttp.ClientSession

    @property
    def services(self) -> Services:
        return self.runner.app[SERVICES]

    def admin(self) -> Client:
        return Client(self.session, self.base, ADMIN_TOKEN)

    async def merchant(self, name: str = "Shop", **patch: Any) -> tuple[Client, dict[str, Any]]:
        """A new merchant (and its client); `patch` is applied through the admin API."""
        created = await self.admin().post("/v1/admin/merchants",
                                          {"name": name, "webhook_secret": "whsec_test_secret_1"})
        assert created.status == 201, created.body
        if patch:
            patched = await self.admin().patch(f"/v1/admin/merchants/{created.body['id']}",
                                               patch)
            assert patched.status == 200, patched.body
        return Client(self.session, self.base, created.body["api_key"]), created.body

    async def close(self) -> None:
        await self.runner.cleanup()


async def start_gateway(settings: Settings, session: aiohttp.ClientSession, *,
                        background: bool = True) -> Gateway:
    runner = web.AppRunner(create_app(settings, background=background), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, settings.server.host, settings.server.port).start()
    return Gateway(runner, settings, f"http://{settings.server.host}:{settings.server.port}",
                   session)


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 10.0,
                     interval: float = 0.05) -> None:
    """Await a condition that another process (rail, sweeper) makes true.

    The gateway has no event to subscribe to for "the sweeper settled this payment",
    so this polls its public API, bounded by `timeout`.
    """
    deadline = time.monotonic() + timeout
    while True:
        if await check():
            return
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(interval)


def payment_body(otn: str, *, amount: int = 1000, scene: str = "quickpay",
                 method: str | None = "bank", auth_code: str = "134567890123456781",
                 **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"amount": amount, "currency": "CNY", "out_trade_no": otn,
                            "scene": scene, "description": "Coffee", **extra}
    if method:
        body["method"] = method
    if scene == "quickpay":
        body.setdefault("payer", {"auth_code": auth_code})
    return body


__all__ = ["free_port"]
