"""A running rail for the checks: its simulator, the adapter, a RailClient and a receiver."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, final

import aiohttp
from aiohttp import web

from adapters.base import (
    Adapter,
    AdapterConfig,
    Charge,
    Notification,
    Operation,
    Payout,
    RailError,
    RailResult,
    Refund,
)
from adapters.conformance.kit import ConformanceError, EnvSettings, RailKit, expect
from router.ops.metrics import Metrics
from router.rails.client import RailClient
from router.routing.health import HealthBook
from router.settings import BreakerSettings


class _Receiver:
    """A local notification endpoint: every POST goes to a queue, acknowledged as the
    rail expects (`adapter.notification_reply(True)`)."""

    def __init__(self, adapter: Adapter) -> None:
        self.queue: asyncio.Queue[tuple[dict[str, str], bytes]] = asyncio.Queue()
        self._adapter = adapter
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.queue.put_nowait((dict(request.headers), body))
        reply = self._adapter.notification_reply(True)
        return web.Response(status=reply.status, headers=dict(reply.headers), body=reply.body)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/notify/{rail}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{_port(self._runner)}/notify/{self._adapter.name}"

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


def _port(runner: web.AppRunner) -> int:
    address = runner.addresses[0]
    return int(address[1])


@final
class RailEnv:
    """A running rail: its simulator (if any), the adapter, a RailClient and a receiver."""

    def __init__(
        self,
        kit: RailKit,
        settings: EnvSettings,
        session: aiohttp.ClientSession,
        adapter: Adapter,
        client: RailClient,
        receiver: _Receiver,
        sim_url: str | None,
        sim_app: web.Application | None,
        keys_dir: Path | None = None,
    ) -> None:
        self.kit = kit
        self.keys_dir = keys_dir
        self.settings = settings
        self.session = session
        self.adapter = adapter
        self.client = client
        self.receiver = receiver
        self.sim_url = sim_url
        self.sim_app = sim_app
        # Every result the adapter produced in this environment, with its operation.
        self.results: list[tuple[Operation, RailResult]] = []

    # ------------------------------------------------------------------ operations
    async def call(self, op: Operation) -> RailResult:
        """The adapter's answer through the core's I/O path."""
        result = await self.client.call(self.kit.name, op)
        self.results.append((op, result))
        return result

    async def outcome(self, op: Operation) -> RailResult | RailError:
        try:
            return await self.call(op)
        except RailError as exc:
            return exc

    def order_no(self) -> str:
        # 24 of [0-9a-z]: valid for every rail (WeChat 6-32, Alipay no `-`).
        return "cf" + uuid.uuid4().hex[:22]

    def charge(
        self,
        scene: str,
        order_no: str | None = None,
        *,
        amount: int = 1000,
        code: str | None = None,
    ) -> Charge:
        payer = self.kit.payer(scene)
        if code is not None:
            payer["auth_code"] = payer_code(code)
        return Charge(
            rail_order_no=order_no or self.order_no(),
            amount=amount,
            currency="CNY",
            scene=scene,
            description="conformance",
            payer=payer,
            notify_url=self.receiver.url,
        )

    def refund(
        self, order_no: str, amount: int, total: int, refund_no: str | None = None
    ) -> Refund:
        return Refund(
            rail_order_no=order_no,
            rail_refund_no=refund_no or "rf" + uuid.uuid4().hex[:22],
            amount=amount,
            total=total,
            currency="CNY",
            reason="conformance",
            notify_url=self.receiver.url,
        )

    def payout_no(self) -> str:
        # 24 letters and digits: valid for every rail (WeChat takes nothing else).
        return "po" + uuid.uuid4().hex[:22]

    def payout(self, last: str, *, amount: int = 1000, name: str | None = None,
               payee: str | None = None) -> Payout:
        """A payout to a fresh payee whose identity ends in `last` (or to `payee`)."""
        if payee is None:
            if self.kit.payee is None:
                raise ConformanceError(f"rail {self.kit.name} names no payees (RailKit.payee)")
            payee = self.kit.payee(last)
        return Payout(
            rail_payout_no=self.payout_no(),
            amount=amount,
            currency="CNY",
            payee=payee,
            remark="conformance",
            notify_url=self.receiver.url,
            name=name,
        )

    async def until(
        self, op: Operation, done: Callable[[RailResult], bool], what: str
    ) -> RailResult:
        """Repeat `op` (a query) until `done`; bounded by `wait_timeout`."""
        deadline = time.monotonic() + self.settings.wait_timeout
        interval = max(0.01, self.settings.time_scale)
        while True:
            result = await self.call(op)
            if done(result):
                return result
            if time.monotonic() > deadline:
                raise ConformanceError(f"{what}: still {result.status.value} after "
                                       f"{self.settings.wait_timeout} s")
            await asyncio.sleep(interval)

    # ------------------------------------------------------------------ simulator controls
    async def settled(self) -> None:
        """Wait (bounded) until the simulator has no notification delivery in flight."""
        if self.kit.sim is not None and self.sim_app is not None:
            await asyncio.wait_for(self.kit.sim.settled(self.sim_app), self.settings.wait_timeout)

    def _sim(self) -> str:
        if self.sim_url is None:
            raise ConformanceError(f"rail {self.kit.name} has no simulator")
        return self.sim_url

    async def present(self, scene: str, result: RailResult) -> None:
        """Open the order as the payer's app or browser would, where the rail needs it."""
        if scene in self.kit.presented_scenes and self.kit.present is not None:
            await self.kit.present(self.session, self._sim(), result)

    async def payer_pays(self, order_no: str) -> None:
        await self._control(f"/sim/orders/{order_no}/pay")

    async def payer_fails(self, order_no: str) -> None:
        await self._control(f"/sim/orders/{order_no}/fail")

    async def _control(self, path: str) -> None:
        async with self.session.post(self._sim() + path) as resp:
            text = await resp.text()
            expect(resp.status == 200, f"simulator control {path}: HTTP {resp.status} {text}")

    async def set_faults(self, **faults: float) -> None:
        async with self.session.post(self._sim() + "/sim/faults", json=faults) as resp:
            expect(resp.status == 200, f"setting faults: HTTP {resp.status}")

    async def set_payee_name(self, identity: str, name: str) -> None:
        """The real name behind a payee identity (`POST /sim/payees`)."""
        payee = {"id": identity, "name": name}
        async with self.session.post(self._sim() + "/sim/payees", json=payee) as resp:
            expect(resp.status == 200, f"setting a payee's name: HTTP {resp.status}")

    async def _ledger_body(self) -> dict[str, Any]:
        async with self.session.get(self._sim() + "/sim/ledger") as resp:
            body: dict[str, Any] = await resp.json()
        return body

    async def ledger(self) -> dict[str, dict[str, Any]]:
        orders: dict[str, dict[str, Any]] = (await self._ledger_body())["orders"]
        return orders

    async def ledger_order(self, order_no: str) -> dict[str, Any] | None:
        return (await self.ledger()).get(order_no)

    async def ledger_payout(self, payout_no: str) -> dict[str, Any] | None:
        """The simulator's row of a payout (`payouts` of `GET /sim/ledger`), if any."""
        payouts: dict[str, dict[str, Any]] = (await self._ledger_body()).get("payouts", {})
        return payouts.get(payout_no)

    async def notification(
        self, matches: Callable[[Notification], bool], what: str
    ) -> tuple[dict[str, str], bytes, Notification]:
        """The next received notification that verifies and `matches` (others are skipped)."""
        deadline = time.monotonic() + self.settings.wait_timeout
        while True:
            remaining = deadline - time.monotonic()
            try:
                headers, body = await asyncio.wait_for(self.receiver.queue.get(), remaining)
            except TimeoutError:
                raise ConformanceError(f"no {what} notification arrived") from None
            note = self.adapter.verify_notification(headers, body)
            if matches(note):
                return headers, body, note


@contextlib.asynccontextmanager
async def running(
    kit: RailKit,
    keys_dir: Path | None,
    bundle: object | None,
    settings: EnvSettings = EnvSettings(),  # noqa: B008 (a frozen dataclass)
) -> AsyncIterator[RailEnv]:
    """Start the kit's simulator (on 127.0.0.1) and build its adapter against it.

    `bundle` is what `kit.sim.create_bundle(keys_dir)` returned: pass it in so one
    (slow) RSA bundle serves many environments.
    """
    async with contextlib.AsyncExitStack() as stack:
        session = await stack.enter_async_context(aiohttp.ClientSession())
        sim_url: str | None = None
        sim_app: web.Application | None = None
        if kit.sim is not None:
            if keys_dir is None or bundle is None:
                raise ValueError(f"rail {kit.name}: the simulator needs keys_dir and bundle")
            sim_app = kit.sim.create_app(bundle, settings)
            runner = web.AppRunner(sim_app, access_log=None, handler_cancellation=True)
            await runner.setup()
            stack.push_async_callback(runner.cleanup)
            await web.TCPSite(runner, "127.0.0.1", 0).start()
            sim_url = f"http://127.0.0.1:{_port(runner)}"
        adapter = kit.create_adapter(
            AdapterConfig(name=kit.name, base_url=sim_url or "", keys_dir=keys_dir)
        )
        receiver = _Receiver(adapter)
        await receiver.start()
        stack.push_async_callback(receiver.close)
        client = RailClient(session, {kit.name: adapter}, {kit.name: settings.rail_timeout},
                            Metrics(), HealthBook([kit.name], BreakerSettings()))
        yield RailEnv(kit, settings, session, adapter, client, receiver, sim_url, sim_app,
                      keys_dir)


def payer_code(last: str) -> str:
    """An 18-digit payer code ending in `last` (SANDBOX.md: the last digit decides)."""
    return "134" + "0" * 14 + last
