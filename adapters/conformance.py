"""One conformance suite that every adapter passes, run through the core's own I/O path.

A rail provides a `RailKit`: how to start its simulator and build its adapter against
it, which payer fields each scene needs, how the simulated payer pays or fails an
order, and what the rail can do at all (`capabilities`). A `Check` is an async function
of a running `RailEnv`; it performs every adapter operation with
`router.railclient.RailClient`, exactly as the core does, against the simulator on a
real loopback port. A check that needs a capability the kit lacks is *skipped with a
reason* (`Check.skip_reason`), never silently passed: `plan(kit)` lists what runs.

The kits for the built-in rails (`bank`, `wechatpay`, `alipay`, `instant`) are at the
end of this module. `tests/test_conformance.py` runs every check against every kit.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, final

import aiohttp
from aiohttp import web

from adapters.base import (
    Adapter,
    AdapterConfig,
    Charge,
    Close,
    Notification,
    Operation,
    Query,
    RailError,
    RailResult,
    RailStatus,
    Refund,
    RefundQuery,
    Reverse,
)
from router.metrics import Metrics
from router.railclient import RailClient

__all__ = [
    "ACTION_TYPES",
    "CAPABILITIES",
    "CHECKS",
    "KITS",
    "Check",
    "ConformanceError",
    "EnvSettings",
    "RailEnv",
    "RailKit",
    "SimSpec",
    "plan",
    "running",
]

ACTION_TYPES: Final = frozenset({"qr_code", "redirect", "sdk_params"})
PAYER_CODE_SCENE: Final = "quickpay"

# Capability -> why a check that needs it is skipped on a kit without it.
CAPABILITIES: Final[Mapping[str, str]] = {
    "simulator": "no simulator: in-process results only (no ledger, payer controls or faults)",
    "actions": "in-process rail: wallet scenes settle at once, no payer action is asked for",
    "timed_codes": "payer codes 5/6/9 (confirming, never confirms, answer withheld) "
    "are not modelled",
    "stateful": "stateless rail: it cannot tell which orders or refunds exist",
    "reverse": "the rail offers no reverse",
    "refunds": "the rail offers no refunds",
    "notifications": "the rail sends no notifications",
}


class ConformanceError(AssertionError):
    """An adapter broke the contract of `adapters.base`."""


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise ConformanceError(message)


# --------------------------------------------------------------------------- kits
@final
@dataclass(frozen=True)
class EnvSettings:
    time_scale: float = 0.05
    hang_seconds: float = 3.0
    rail_timeout: float = 1.0  # RailClient's timeout for the rail: below hang_seconds
    wait_timeout: float = 5.0  # upper bound for waiting on a notification or a settle


@final
@dataclass(frozen=True)
class SimSpec:
    """How to run a rail's simulator."""

    # Writes (when absent) and loads the credential bundle: slow for RSA, share it.
    create_bundle: Callable[[Path], object]
    # (bundle, settings) -> the simulator's aiohttp application.
    create_app: Callable[[object, EnvSettings], web.Application]
    # Waits until every notification delivery of the app is done.
    settled: Callable[[web.Application], Awaitable[None]]


@final
@dataclass(frozen=True)
class RailKit:
    """Everything the suite needs to know about one rail."""

    name: str
    # AdapterConfig -> Adapter (the rail's entry-point factory).
    create_adapter: Callable[[AdapterConfig], Adapter]
    capabilities: frozenset[str]
    sim: SimSpec | None = None
    # Payer fields each scene needs (payer codes are added by the checks).
    scene_payers: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    # Scenes whose orders exist at the rail only once the payer's app or browser opens
    # them; `present` does that with the charge's action.
    presented_scenes: frozenset[str] = frozenset()
    present: Callable[[aiohttp.ClientSession, str, RailResult], Awaitable[None]] | None = None
    # A wallet scene whose open order a Query sees (REQUIRES_ACTION) before it is paid.
    waiting_scene: str = "native"
    # Every order status of the rail (as the simulator's ledger names it) ->
    # the RailStatus a Query must give for it (from the adapter's README).
    status_table: Mapping[str, RailStatus] = field(default_factory=dict)
    # Rail statuses the simulator never produces, with why.
    unreachable_statuses: Mapping[str, str] = field(default_factory=dict)

    def has(self, capability: str) -> bool:
        return capability in self.capabilities

    def payer(self, scene: str, **extra: str) -> dict[str, str]:
        return {**self.scene_payers.get(scene, {}), **extra}


# --------------------------------------------------------------------------- environment
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
    ) -> None:
        self.kit = kit
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

    async def ledger(self) -> dict[str, dict[str, Any]]:
        async with self.session.get(self._sim() + "/sim/ledger") as resp:
            body: dict[str, Any] = await resp.json()
        orders: dict[str, dict[str, Any]] = body["orders"]
        return orders

    async def ledger_order(self, order_no: str) -> dict[str, Any] | None:
        return (await self.ledger()).get(order_no)

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
    settings: EnvSettings = EnvSettings(),
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
                            Metrics())
        yield RailEnv(kit, settings, session, adapter, client, receiver, sim_url, sim_app)


def payer_code(last: str) -> str:
    """An 18-digit payer code ending in `last` (SANDBOX.md: the last digit decides)."""
    return "134" + "0" * 14 + last


# --------------------------------------------------------------------------- checks
CheckFn = Callable[[RailEnv], Awaitable[None]]


@final
@dataclass(frozen=True)
class Check:
    name: str
    run: CheckFn
    requires: frozenset[str]
    doc: str

    def skip_reason(self, kit: RailKit) -> str | None:
        missing = sorted(self.requires - kit.capabilities)
        if not missing:
            return None
        return f"{kit.name} skips {self.name}: " + "; ".join(CAPABILITIES[m] for m in missing)


CHECKS: list[Check] = []


def check(*requires: str) -> Callable[[CheckFn], CheckFn]:
    unknown = set(requires) - CAPABILITIES.keys()
    if unknown:
        raise ValueError(f"unknown capabilities {sorted(unknown)}")

    def register(fn: CheckFn) -> CheckFn:
        CHECKS.append(Check(fn.__name__.removeprefix("check_"), fn, frozenset(requires),
                            (fn.__doc__ or "").strip()))
        return fn

    return register


def plan(kit: RailKit) -> list[tuple[str, str | None]]:
    """Every check by name, with the reason it is skipped for `kit` (None: it runs)."""
    return [(c.name, c.skip_reason(kit)) for c in CHECKS]


def _is_definitive_refusal(outcome: RailResult | RailError) -> bool:
    if isinstance(outcome, RailError):
        return outcome.definitive
    return outcome.status is RailStatus.FAILED


def _describe(outcome: RailResult | RailError) -> str:
    if isinstance(outcome, RailError):
        return f"RailError({outcome.code}, definitive={outcome.definitive})"
    return f"RailResult({outcome.status.value}, failure_code={outcome.failure_code})"


def _check_shape(op: Operation, result: RailResult) -> None:
    """What every RailResult must look like, whatever the rail."""
    where = f"{type(op).__name__} {getattr(op, 'rail_order_no', '')}"
    expect(isinstance(result.status, RailStatus), f"{where}: status {result.status!r} is not "
                                                 "an adapters.base.RailStatus")
    if result.action is not None:
        expect(result.status is RailStatus.REQUIRES_ACTION,
               f"{where}: an action with status {result.status.value}")
        expect(result.action.type in ACTION_TYPES,
               f"{where}: action type {result.action.type!r} not in {sorted(ACTION_TYPES)}")
        expect(bool(result.action.data), f"{where}: an action without data")
    if result.status is RailStatus.FAILED:
        expect(bool(result.failure_code), f"{where}: FAILED without a failure_code")
    for name in ("amount", "refunded_amount"):
        value = getattr(result, name)
        expect(value is None or (type(value) is int and value >= 0),
               f"{where}: {name} {value!r} is not a non-negative int")


def _unsettled(result: RailResult) -> bool:
    # A payer-code order still being decided: PROCESSING, or (Alipay: a Query has no
    # scene) REQUIRES_ACTION, which the core reads as "the payer is confirming".
    return result.status in (RailStatus.PROCESSING, RailStatus.REQUIRES_ACTION)


async def _ledger_charges(env: RailEnv, order_no: str) -> int:
    entry = await env.ledger_order(order_no)
    return 0 if entry is None else int(entry["charges"])


@check()
async def check_scenes_charge(env: RailEnv) -> None:
    """Every scene in `adapter.scenes` charges and gives the right shape."""
    expect(bool(env.adapter.scenes), "the adapter offers no scene")
    for scene in sorted(env.adapter.scenes):
        op = env.charge(scene, code="1" if scene == PAYER_CODE_SCENE else None)
        result = await env.call(op)
        _check_shape(op, result)
        if scene == PAYER_CODE_SCENE:
            expect(result.status is RailStatus.SUCCEEDED,
                   f"{scene} with a paying code gave {result.status.value}")
        elif env.kit.has("actions"):
            expect(result.status is RailStatus.REQUIRES_ACTION and result.action is not None,
                   f"{scene} gave {result.status.value} with action {result.action}: "
                   "a wallet scene must ask the payer to act")
        else:
            expect(result.status is RailStatus.SUCCEEDED,
                   f"{scene} on an in-process rail gave {result.status.value}")


@check("simulator", "actions")
async def check_scenes_pay(env: RailEnv) -> None:
    """Every wallet scene: the payer pays at the rail, then Query gives SUCCEEDED."""
    for scene in sorted(env.adapter.scenes - {PAYER_CODE_SCENE}):
        op = env.charge(scene)
        result = await env.call(op)
        await env.present(scene, result)
        await env.payer_pays(op.rail_order_no)
        paid = await env.call(Query(op.rail_order_no))
        _check_shape(Query(op.rail_order_no), paid)
        expect(paid.status is RailStatus.SUCCEEDED,
               f"{scene}: query after payment gave {paid.status.value}")
        expect(paid.amount in (None, op.amount), f"{scene}: amount {paid.amount} != {op.amount}")
        expect(await _ledger_charges(env, op.rail_order_no) == 1,
               f"{scene}: the ledger does not show exactly one charge")
        # Closing a paid order must never read as "closed, nothing kept".
        close = await env.outcome(Close(op.rail_order_no))
        expect(isinstance(close, RailError) or close.status is RailStatus.SUCCEEDED,
               f"{scene}: close of a paid order gave {_describe(close)}")
        expect(await _ledger_charges(env, op.rail_order_no) == 1, f"{scene}: charge undone")


@check("simulator", "actions")
async def check_scenes_fail_and_close(env: RailEnv) -> None:
    """A wallet order the payer fails is never SUCCEEDED; an open one closes (CLOSED)."""
    for scene in sorted(env.adapter.scenes - {PAYER_CODE_SCENE}):
        op = env.charge(scene)
        await env.present(scene, await env.call(op))
        await env.payer_fails(op.rail_order_no)
        failed = await env.call(Query(op.rail_order_no))
        expect(failed.status in (RailStatus.FAILED, RailStatus.CLOSED),
               f"{scene}: query after the payer failed gave {failed.status.value}")
        again = await env.outcome(Close(op.rail_order_no))
        expect(not isinstance(again, RailResult) or again.status is not RailStatus.SUCCEEDED,
               f"{scene}: close of a failed order gave succeeded")
        # An order left open: Close gives CLOSED and a Query agrees (or no longer sees it).
        op = env.charge(scene)
        await env.present(scene, await env.call(op))
        closed = await env.call(Close(op.rail_order_no))
        expect(closed.status is RailStatus.CLOSED, f"{scene}: close gave {closed.status.value}")
        seen = await env.call(Query(op.rail_order_no))
        expect(seen.status in (RailStatus.CLOSED, RailStatus.NOT_FOUND),
               f"{scene}: query after close gave {seen.status.value}")
        expect(await _ledger_charges(env, op.rail_order_no) == 0, f"{scene}: closed but charged")


@check()
async def check_code_paid(env: RailEnv) -> None:
    """Payer code ...1: SUCCEEDED at once, for the amount charged."""
    op = env.charge(PAYER_CODE_SCENE, code="1", amount=1234)
    result = await env.call(op)
    _check_shape(op, result)
    expect(result.status is RailStatus.SUCCEEDED, f"code 1 gave {result.status.value}")
    expect(result.amount in (None, 1234), f"amount {result.amount} != 1234")
    if env.kit.has("simulator"):
        entry = await env.ledger_order(op.rail_order_no)
        expect(entry is not None and entry["charges"] == 1 and entry["charged"] == 1234,
               f"ledger after code 1: {entry}")


@check()
async def check_code_declined(env: RailEnv) -> None:
    """Payer code ...2: a definitive refusal (FAILED result or RailError(definitive=True))."""
    op = env.charge(PAYER_CODE_SCENE, code="2")
    outcome = await env.outcome(op)
    if isinstance(outcome, RailResult):
        _check_shape(op, outcome)
    expect(_is_definitive_refusal(outcome), f"code 2 gave {_describe(outcome)}")
    if env.kit.has("simulator"):
        expect(await _ledger_charges(env, op.rail_order_no) == 0, "code 2 was charged")


@check("simulator", "timed_codes")
async def check_code_confirming(env: RailEnv) -> None:
    """Payer code ...5: PROCESSING, then a Query gives SUCCEEDED (after ~3 s x time_scale)."""
    op = env.charge(PAYER_CODE_SCENE, code="5")
    result = await env.call(op)
    expect(result.status is RailStatus.PROCESSING, f"code 5 gave {result.status.value}")
    query = Query(op.rail_order_no)
    final_ = await env.until(query, lambda r: not _unsettled(r), "code 5")
    expect(final_.status is RailStatus.SUCCEEDED, f"code 5 settled as {final_.status.value}")
    expect(await _ledger_charges(env, op.rail_order_no) == 1, "code 5: not charged once")


@check("simulator", "timed_codes", "reverse")
async def check_code_never_confirms(env: RailEnv) -> None:
    """Payer code ...6: PROCESSING; Reverse gives CLOSED and nothing is kept."""
    op = env.charge(PAYER_CODE_SCENE, code="6")
    result = await env.call(op)
    expect(result.status is RailStatus.PROCESSING, f"code 6 gave {result.status.value}")
    still = await env.call(Query(op.rail_order_no))
    expect(_unsettled(still), f"code 6: query gave {still.status.value} before any reverse")
    reversed_ = await env.call(Reverse(op.rail_order_no))
    expect(reversed_.status is RailStatus.CLOSED, f"reverse gave {reversed_.status.value}")
    after = await env.call(Query(op.rail_order_no))
    expect(after.status is RailStatus.CLOSED, f"query after reverse gave {after.status.value}")
    entry = await env.ledger_order(op.rail_order_no)
    expect(entry is None or entry["charged"] == entry["refunded"],
           f"code 6 reversed but money kept: {entry}")


@check("simulator", "reverse")
async def check_reverse_paid(env: RailEnv) -> None:
    """Reverse of a paid payer-code charge: CLOSED, and all the money goes back."""
    op = env.charge(PAYER_CODE_SCENE, code="1")
    expect((await env.call(op)).status is RailStatus.SUCCEEDED, "the charge did not succeed")
    reversed_ = await env.call(Reverse(op.rail_order_no))
    expect(reversed_.status is RailStatus.CLOSED, f"reverse gave {reversed_.status.value}")
    again = await env.call(Reverse(op.rail_order_no))
    expect(again.status is RailStatus.CLOSED, f"a second reverse gave {again.status.value}")
    entry = await env.ledger_order(op.rail_order_no)
    expect(entry is not None and entry["charges"] == 1
           and entry["refunded"] == entry["charged"] == op.amount,
           f"ledger after reversing a paid charge: {entry}")


@check("simulator", "timed_codes")
async def check_code_withheld(env: RailEnv) -> None:
    """Payer code ...9: the answer is lost, so RailError(definitive=False); Query: SUCCEEDED."""
    op = env.charge(PAYER_CODE_SCENE, code="9")
    outcome = await env.outcome(op)
    expect(isinstance(outcome, RailError) and not outcome.definitive,
           f"code 9 (no answer) gave {_describe(outcome)}: an unknown outcome must stay unknown")
    settled = await env.call(Query(op.rail_order_no))
    expect(settled.status is RailStatus.SUCCEEDED, f"code 9: query gave {settled.status.value}")
    expect(await _ledger_charges(env, op.rail_order_no) == 1, "code 9: not charged once")


@check("simulator")
async def check_unknown_stays_unknown(env: RailEnv) -> None:
    """With `error_rate: 1.0` every operation is RailError(definitive=False)."""
    await env.set_faults(error_rate=1.0)
    paid = env.charge(PAYER_CODE_SCENE, code="1")
    ops: list[Operation] = [paid, Query(paid.rail_order_no)]
    if env.kit.has("actions"):
        ops.append(env.charge(env.kit.waiting_scene))
    if env.kit.has("reverse"):
        ops.append(Reverse(paid.rail_order_no))
    ops.append(env.refund(paid.rail_order_no, 100, paid.amount))
    try:
        for op in ops:
            outcome = await env.outcome(op)
            expect(isinstance(outcome, RailError) and not outcome.definitive,
                   f"{type(op).__name__} under a rail system error gave {_describe(outcome)}")
    finally:
        await env.set_faults()
    expect(await _ledger_charges(env, paid.rail_order_no) == 0,
           "a charge answered with a system error was applied")


@check("stateful")
async def check_query_unknown_order(env: RailEnv) -> None:
    """A Query for an order never created gives NOT_FOUND (no proof of anything)."""
    result = await env.call(Query(env.order_no()))
    expect(result.status is RailStatus.NOT_FOUND, f"query of no order gave {result.status.value}")


@check("simulator")
async def check_idempotent_charge(env: RailEnv) -> None:
    """The same Charge repeated (in turn and concurrently) never charges twice."""
    op = env.charge(PAYER_CODE_SCENE, code="1")
    first = await env.call(op)
    expect(first.status is RailStatus.SUCCEEDED, f"code 1 gave {first.status.value}")
    repeats = [await env.outcome(op)]
    repeats += await asyncio.gather(*(env.outcome(op) for _ in range(3)))
    for outcome in repeats:
        # Paid already: the repeat may be SUCCEEDED or unknown, never a refusal.
        ok = (isinstance(outcome, RailResult) and outcome.status is RailStatus.SUCCEEDED) or (
            isinstance(outcome, RailError) and not outcome.definitive)
        expect(ok, f"a repeated paid charge gave {_describe(outcome)}")
    expect(await _ledger_charges(env, op.rail_order_no) == 1, "charged more than once")
    if env.kit.has("actions"):
        wallet = env.charge(env.kit.waiting_scene)
        outcomes = await asyncio.gather(*(env.outcome(wallet) for _ in range(3)))
        for outcome in outcomes:
            expect(isinstance(outcome, RailResult)
                   and outcome.status is RailStatus.REQUIRES_ACTION,
                   f"a repeated {wallet.scene} charge gave {_describe(outcome)}")
        await env.payer_pays(wallet.rail_order_no)
        again = await env.outcome(wallet)
        # The order is paid: the repeat may say so or be unknown, never refuse or fail it.
        expect(not _is_definitive_refusal(again),
               f"a repeated {wallet.scene} charge after payment gave {_describe(again)}")
        expect(await _ledger_charges(env, wallet.rail_order_no) == 1,
               f"{wallet.scene}: charged more than once")


@check("simulator", "refunds", "stateful")
async def check_refund_capped(env: RailEnv) -> None:
    """A partial refund succeeds; one above what remains is refused (definitive);
    the ledger's refunded never exceeds charged; a repeated refund is applied once."""
    total = 1000
    op = env.charge(PAYER_CODE_SCENE, code="1", amount=total)
    expect((await env.call(op)).status is RailStatus.SUCCEEDED, "the charge did not succeed")
    no = op.rail_order_no
    first = env.refund(no, 400, total)
    ok = await env.call(first)
    expect(ok.status in (RailStatus.SUCCEEDED, RailStatus.PROCESSING),
           f"partial refund gave {ok.status.value}")
    repeat = await env.outcome(first)
    expect(not _is_definitive_refusal(repeat), f"the same refund again gave {_describe(repeat)}")
    too_much = await env.outcome(env.refund(no, total - 400 + 1, total))
    expect(_is_definitive_refusal(too_much),
           f"a refund above the remaining {total - 400} gave {_describe(too_much)}")
    entry = await env.ledger_order(no)
    expect(entry is not None and entry["refunded"] <= entry["charged"] == total,
           f"ledger after refunds: {entry}")
    rest = env.refund(no, total - 400, total)
    rest_result = await env.call(rest)
    expect(rest_result.status in (RailStatus.SUCCEEDED, RailStatus.PROCESSING),
           f"refund of the rest gave {rest_result.status.value}")
    beyond = await env.outcome(env.refund(no, 1, total))
    expect(_is_definitive_refusal(beyond), f"a refund of a refunded order gave "
                                           f"{_describe(beyond)}")
    for refund in (first, rest):
        query = RefundQuery(no, refund.rail_refund_no)
        settled = await env.until(query, lambda r: r.status is not RailStatus.PROCESSING,
                                  "refund")
        expect(settled.status is RailStatus.SUCCEEDED, f"refund query: {settled.status.value}")
    entry = await env.ledger_order(no)
    expect(entry is not None and entry["refunded"] == entry["charged"] == total
           and entry["charges"] == 1, f"ledger after full refund: {entry}")
    missing = await env.call(RefundQuery(no, "rf" + uuid.uuid4().hex[:22]))
    expect(missing.status is RailStatus.NOT_FOUND,
           f"query of a refund never made gave {missing.status.value}")


def _tampered(body: bytes) -> list[bytes]:
    """Copies of `body` changed so slightly that only a signature can tell."""
    copies = [body[:-1], body + b" " if body.endswith(b"}") else body + b"&x=1"]
    for i in range(len(body) // 2, len(body)):
        if body[i : i + 1].isdigit():
            digit = b"1" if body[i : i + 1] != b"1" else b"2"
            copies.append(body[:i] + digit + body[i + 1 :])
            break
    return copies


@check("simulator", "notifications", "actions")
async def check_notifications(env: RailEnv) -> None:
    """A genuine notification verifies to the right Notification; tampered copies raise
    RailError; refund notifications name the refund."""
    scene = env.kit.waiting_scene
    op = env.charge(scene, amount=1500)
    await env.present(scene, await env.call(op))
    await env.payer_pays(op.rail_order_no)
    headers, body, note = await env.notification(
        lambda n: n.kind == "payment" and n.rail_order_no == op.rail_order_no, "payment")
    expect(note.result.status is RailStatus.SUCCEEDED,
           f"payment notification gave {note.result.status.value}")
    expect(note.result.amount in (None, 1500), f"notified amount {note.result.amount} != 1500")
    expect(note.rail_refund_no is None, "a payment notification names a refund")
    for copy in _tampered(body):
        try:
            forged = env.adapter.verify_notification(headers, copy)
        except RailError:
            continue
        raise ConformanceError(f"a tampered notification verified: {forged}")
    reply = env.adapter.notification_reply(True)
    expect(200 <= reply.status < 300, f"notification_reply(True) is HTTP {reply.status}")
    refund = env.refund(op.rail_order_no, 500, 1500)
    await env.call(refund)
    _, _, refund_note = await env.notification(
        lambda n: n.kind == "refund" and n.rail_order_no == op.rail_order_no, "refund")
    expect(refund_note.rail_refund_no == refund.rail_refund_no,
           f"refund notification names {refund_note.rail_refund_no}")
    expect(refund_note.result.status is RailStatus.SUCCEEDED,
           f"refund notification gave {refund_note.result.status.value}")
    # Every other genuine delivery (resends, duplicates) verifies too.
    await env.settled()
    while not env.receiver.queue.empty():
        env.adapter.verify_notification(*env.receiver.queue.get_nowait())


@check()
async def check_status_values(env: RailEnv) -> None:
    """Every result of a tour of the flows is a base.RailStatus with a consistent shape."""
    paid = env.charge(PAYER_CODE_SCENE, code="1")
    ops: list[Operation] = [paid, env.charge(PAYER_CODE_SCENE, code="2"), Query(paid.rail_order_no)]
    ops += [env.charge(s) for s in sorted(env.adapter.scenes - {PAYER_CODE_SCENE})]
    ops.append(env.refund(paid.rail_order_no, 100, paid.amount))
    if env.kit.has("reverse"):
        ops.append(Reverse(paid.rail_order_no))
    for op in ops:
        await env.outcome(op)
    expect(bool(env.results), "no operation gave a result")
    for op, result in env.results:
        _check_shape(op, result)


@check("simulator", "stateful")
async def check_status_mapping(env: RailEnv) -> None:
    """Every order status the rail has maps (on Query) to the RailStatus its README gives."""
    kit = env.kit
    observed: dict[str, RailStatus] = {}

    async def observe(no: str) -> None:
        result = await env.call(Query(no))
        _check_shape(Query(no), result)
        entry = await env.ledger_order(no)
        expect(entry is not None, f"the ledger has no order {no}")
        assert entry is not None
        rail_status = str(entry["status"])
        expected = kit.status_table.get(rail_status)
        expect(expected is not None, f"rail status {rail_status!r} is not in the kit's table")
        expect(result.status is expected, f"rail status {rail_status} gave "
                                          f"{result.status.value}, expected {expected}")
        observed[rail_status] = result.status

    waiting = env.charge(kit.waiting_scene)
    await env.present(kit.waiting_scene, await env.call(waiting))
    await observe(waiting.rail_order_no)  # open, the payer must act
    await env.call(Close(waiting.rail_order_no))
    await observe(waiting.rail_order_no)  # closed unpaid
    failing = env.charge(kit.waiting_scene)
    await env.present(kit.waiting_scene, await env.call(failing))
    await env.payer_fails(failing.rail_order_no)
    await observe(failing.rail_order_no)  # the payer's payment failed
    paid = env.charge(PAYER_CODE_SCENE, code="1")
    await env.call(paid)
    await observe(paid.rail_order_no)  # paid
    refund = env.refund(paid.rail_order_no, 100, paid.amount)
    await env.call(refund)
    await env.until(RefundQuery(paid.rail_order_no, refund.rail_refund_no),
                    lambda r: r.status is not RailStatus.PROCESSING, "refund")
    await observe(paid.rail_order_no)  # paid, partly refunded
    declined = env.charge(PAYER_CODE_SCENE, code="2")
    await env.outcome(declined)
    await observe(declined.rail_order_no)  # declined
    if kit.has("timed_codes"):
        confirming = env.charge(PAYER_CODE_SCENE, code="6")
        await env.call(confirming)
        await observe(confirming.rail_order_no)  # the payer is confirming
        if kit.has("reverse"):
            await env.call(Reverse(confirming.rail_order_no))
            await observe(confirming.rail_order_no)  # reversed
    missing = set(kit.status_table) - set(observed) - set(kit.unreachable_statuses)
    expect(not missing, f"rail statuses never reached by the flows: {sorted(missing)}")


# --------------------------------------------------------------------------- built-in kits
def _bank_kit() -> RailKit:
    from adapters.bank import adapter, protocol, simulator

    def create_app(bundle: object, s: EnvSettings) -> web.Application:
        if not isinstance(bundle, protocol.BankCredentials):
            raise TypeError("a bank bundle is needed")
        options = simulator.SimulatorOptions(time_scale=s.time_scale,
                                             hang_seconds=s.hang_seconds, seed=7)
        return simulator.create_app(bundle, options)

    async def settled(app: web.Application) -> None:
        await app[simulator.SIM_KEY].notifications_settled()

    S = protocol.OrderStatus
    return RailKit(
        name="bank",
        create_adapter=adapter.create_adapter,
        capabilities=frozenset(CAPABILITIES),
        sim=SimSpec(protocol.load_or_create_bundle, create_app, settled),
        status_table={
            S.WAITING.value: RailStatus.REQUIRES_ACTION,
            S.PAYING.value: RailStatus.PROCESSING,
            S.SUCCESS.value: RailStatus.SUCCEEDED,
            S.FAILED.value: RailStatus.FAILED,
            S.CLOSED.value: RailStatus.CLOSED,
            S.REVERSED.value: RailStatus.CLOSED,
        },
    )


def _wechatpay_kit() -> RailKit:
    from adapters.wechatpay import adapter, protocol, simulator

    def create_app(bundle: object, s: EnvSettings) -> web.Application:
        if not isinstance(bundle, protocol.WeChatPayCredentials):
            raise TypeError("a wechatpay bundle is needed")
        options = simulator.SimulatorOptions(time_scale=s.time_scale,
                                             hang_seconds=s.hang_seconds, seed=7)
        return simulator.create_app(bundle, options)

    async def settled(app: web.Application) -> None:
        await app[simulator.SIM_KEY].notifications_settled()

    T = protocol.TradeState
    openid = {"openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"}
    return RailKit(
        name="wechatpay",
        create_adapter=adapter.create_adapter,
        capabilities=frozenset(CAPABILITIES),
        sim=SimSpec(protocol.load_or_create_bundle, create_app, settled),
        scene_payers={"jsapi": openid, "mini_program": openid,
                      "h5": {"client_ip": "127.0.0.1"}},
        status_table={
            T.NOTPAY.value: RailStatus.REQUIRES_ACTION,
            T.USERPAYING.value: RailStatus.PROCESSING,
            T.SUCCESS.value: RailStatus.SUCCEEDED,
            T.REFUND.value: RailStatus.SUCCEEDED,
            T.PAYERROR.value: RailStatus.FAILED,
            T.CLOSED.value: RailStatus.CLOSED,
            T.REVOKED.value: RailStatus.CLOSED,
        },
    )


async def _alipay_present(session: aiohttp.ClientSession, sim_url: str,
                          result: RailResult) -> None:
    """Open an app order string or an h5 URL as Alipay's wallet or browser would."""
    data = result.action.data if result.action is not None else {}
    text = data.get("order_string") or data.get("url")
    expect(isinstance(text, str), f"nothing to present in {result.action}")
    async with session.post(sim_url + "/sim/present", data=str(text).encode()) as resp:
        body = await resp.text()
        expect(resp.status == 200 and '"10000"' in body, f"present: HTTP {resp.status} {body}")


def _alipay_kit() -> RailKit:
    from adapters.alipay import adapter, protocol, simulator

    def create_app(bundle: object, s: EnvSettings) -> web.Application:
        if not isinstance(bundle, protocol.AlipayCredentials):
            raise TypeError("an alipay bundle is needed")
        options = simulator.SimulatorOptions(time_scale=s.time_scale,
                                             hang_seconds=s.hang_seconds, seed=7)
        return simulator.create_app(bundle, options)

    async def settled(app: web.Application) -> None:
        await app[simulator.SIM_KEY].notifications_settled()

    T = protocol.TradeStatus
    buyer = {"buyer_id": "2088102177846880"}
    return RailKit(
        name="alipay",
        create_adapter=adapter.create_adapter,
        capabilities=frozenset(CAPABILITIES),
        sim=SimSpec(protocol.load_or_create_bundle, create_app, settled),
        scene_payers={"jsapi": buyer, "mini_program": buyer},
        presented_scenes=frozenset({"app", "h5"}),
        present=_alipay_present,
        # An unscanned precreate QR is invisible to trade.query; a created one is not.
        waiting_scene="jsapi",
        status_table={
            T.WAIT_BUYER_PAY.value: RailStatus.REQUIRES_ACTION,
            T.TRADE_SUCCESS.value: RailStatus.SUCCEEDED,
            T.TRADE_FINISHED.value: RailStatus.SUCCEEDED,
            T.TRADE_CLOSED.value: RailStatus.CLOSED,
        },
        unreachable_statuses={
            T.TRADE_FINISHED.value: "the simulator does not model the end of the refund window",
        },
    )


def _instant_kit() -> RailKit:
    from adapters.instant import adapter

    return RailKit(
        name="instant",
        create_adapter=adapter.create_adapter,
        capabilities=frozenset({"reverse", "refunds"}),
    )


KITS: Final[list[RailKit]] = [_bank_kit(), _wechatpay_kit(), _alipay_kit(), _instant_kit()]
