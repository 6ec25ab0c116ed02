"""A WeChat Pay simulator on loopback driven through the core's `RailClient`, for the
merchant-services tests (cross-border, fapiao, bills): one adapter of each dialect
(`wechatpay`, domestic; `wechatpay_hk`, the Global API) against the same simulator, and a
merchant endpoint that records what the simulator notifies."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import datetime
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

from adapters.base import (
    Adapter,
    Charge,
    Notification,
    Operation,
    RailError,
    RailResult,
    RailStatus,
)
from adapters.simkit.runtime import SimulatorOptions
from adapters.wechatpay.adapter import WeChatPayAdapter
from adapters.wechatpay.global_pay import global_mcc
from adapters.wechatpay.protocol import WeChatPayCredentials
from adapters.wechatpay.simulator.app import SIM_KEY, create_app
from adapters.wechatpay.simulator.records import CN
from adapters.wechatpay.simulator.runtime import Runtime
from router.ops.metrics import Metrics
from router.rails.client import RailClient
from router.routing.health import HealthBook
from router.settings import BreakerSettings
from tests.simharness import Receiver

FAST = SimulatorOptions(time_scale=0.02, hang_seconds=0.5, seed=7)
WAIT = 5.0
DOMESTIC, GLOBAL = "wechatpay", "wechatpay_hk"
CODE_PAID = "134000000000000001"  # payer codes: the last digit decides (SANDBOX.md)


def today_cn() -> str:
    return datetime.now(CN).date().isoformat()


class WeChatRail:
    """The simulator, a RailClient with both adapters, and a notification receiver."""

    def __init__(self, server: TestServer, session: aiohttp.ClientSession,
                 client: RailClient, receiver: Receiver) -> None:
        self.server = server
        self.session = session
        self.client = client
        self.receiver = receiver

    @property
    def sim(self) -> Runtime:
        return self.server.app[SIM_KEY]

    def adapter(self, rail: str = DOMESTIC) -> WeChatPayAdapter:
        adapter = self.client.adapter(rail)
        assert isinstance(adapter, WeChatPayAdapter)
        return adapter

    async def call(self, op: Operation, rail: str = DOMESTIC) -> RailResult:
        return await self.client.call(rail, op)

    async def refused(self, op: Operation, rail: str = DOMESTIC) -> RailError:
        try:
            result = await self.call(op, rail)
        except RailError as exc:
            return exc
        raise AssertionError(f"{type(op).__name__} was not refused: {result}")

    async def until(self, op: Operation, status: RailStatus, rail: str = DOMESTIC) -> RailResult:
        """Repeat a query until it gives `status` (bounded)."""
        deadline = asyncio.get_running_loop().time() + WAIT
        while True:
            result = await self.call(op, rail)
            if result.status is status:
                return result
            assert asyncio.get_running_loop().time() < deadline, result
            await asyncio.sleep(0.02)

    async def control(self, method: str, path: str, payload: object = None) -> tuple[int, Any]:
        async with self.session.request(method, self.server.make_url(path),
                                        json=payload) as resp:
            return resp.status, await resp.json(content_type=None)

    async def ledger(self) -> dict[str, Any]:
        status, body = await self.control("GET", "/sim/ledger")
        assert status == 200
        result: dict[str, Any] = body
        return result

    async def pay(self, no: str) -> None:
        status, body = await self.control("POST", f"/sim/orders/{no}/pay")
        assert status == 200, body

    async def paid_by_code(self, no: str, amount: int = 1000, currency: str = "CNY",
                           rail: str = DOMESTIC) -> RailResult:
        """A quick-pay charge paid at once; its result carries the transaction id."""
        charge = Charge(no, amount, currency, "quickpay", "沙箱商品", {"auth_code": CODE_PAID},
                        self.receiver.url)
        result = await self.call(charge, rail)
        assert result.status is RailStatus.SUCCEEDED, result
        return result

    async def notification(self, rail: str = DOMESTIC) -> Notification:
        headers, body = await self.receiver.next()
        return self.adapter(rail).verify_notification(headers, body)


@asynccontextmanager
async def running(creds: WeChatPayCredentials, options: SimulatorOptions = FAST,
                  **global_options: object) -> AsyncIterator[WeChatRail]:
    """The simulator on 127.0.0.1 and both adapters against it (built as `create_adapter`
    builds them, from one loaded bundle: loading RSA keys is slow)."""
    async with AsyncExitStack() as stack:
        server = TestServer(create_app(creds, options), host="127.0.0.1", port=0)
        await server.start_server()
        stack.push_async_callback(server.close)
        session = await stack.enter_async_context(aiohttp.ClientSession())
        base_url = str(server.make_url("")).rstrip("/")
        mcc = global_mcc({"global": True, **global_options}, GLOBAL)
        adapters: dict[str, Adapter] = {
            DOMESTIC: WeChatPayAdapter(DOMESTIC, base_url, creds),
            GLOBAL: WeChatPayAdapter(GLOBAL, base_url, creds, global_mcc=mcc),
        }
        client = RailClient(session, adapters, {DOMESTIC: WAIT, GLOBAL: WAIT},
                            Metrics(), HealthBook(list(adapters), BreakerSettings()))
        receiver = Receiver([], web.Response(status=204), WAIT)
        app = web.Application()
        app.router.add_post("/notify", receiver.handle)
        notify_server = TestServer(app, host="127.0.0.1", port=0)
        await notify_server.start_server()
        stack.push_async_callback(notify_server.close)
        receiver.url = str(notify_server.make_url("/notify"))
        yield WeChatRail(server, session, client, receiver)
