"""Fault injection (`POST /sim/faults`, SANDBOX.md "Breaking things"), tested once over the
three rail simulators: each runs as a real HTTP server and is driven through its adapter.

The simulators share this code (`adapters/simkit/`); what differs per rail is only how it
acknowledges a notification, how it words a system error and where a notification's id is.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from adapters.base import AdapterConfig, Charge, HttpRequest, Query, RailStatus
from adapters.conformance import KITS, EnvSettings, RailKit
from tests.simharness import Receiver, SimHarness

pytestmark = pytest.mark.asyncio

WAIT = 5.0  # upper bound for anything awaited; runs take a fraction of it
PAID_CODE = "134567890123456781"  # a payer code every rail accepts; "...1": paid at once


@dataclass(frozen=True)
class RailTraits:
    """What the fault tests must know of a rail beyond its kit."""

    acknowledgement: Callable[[], web.Response]  # a merchant's "received"
    system_errors: frozenset[str]  # the codes of a failed-on-purpose call
    notification_id: Callable[[bytes], str]  # the id every send of one event keeps


def _json_id(body: bytes) -> str:
    return str(json.loads(body)["id"])


def _form_notify_id(body: bytes) -> str:
    return dict(parse_qsl(body.decode()))["notify_id"]


TRAITS = {
    "bank": RailTraits(lambda: web.Response(status=200), frozenset({"SYSTEM_ERROR"}), _json_id),
    "wechatpay": RailTraits(
        lambda: web.Response(status=204), frozenset({"SYSTEM_ERROR"}), _json_id
    ),
    "alipay": RailTraits(
        lambda: web.Response(body=b"success"),
        frozenset({"isp.unknow-error", "ACQ.SYSTEM_ERROR"}),
        _form_notify_id,
    ),
}
SIMULATED = {kit.name: kit for kit in KITS if kit.sim is not None}


class Rail(SimHarness):
    """One running simulator plus a client speaking to it through the rail's adapter."""

    def __init__(self, server: TestServer, session: aiohttp.ClientSession,
                 stack: AsyncExitStack, kit: RailKit, keys_dir: Path) -> None:
        super().__init__(server, session, stack, WAIT)
        self.kit = kit
        self.traits = TRAITS[kit.name]
        base_url = str(server.make_url("")).rstrip("/")
        self.adapter = kit.create_adapter(AdapterConfig(kit.name, base_url, keys_dir))

    async def receiver(self) -> Receiver:
        return await self.serve_receiver(Receiver([], self.traits.acknowledgement(), WAIT))

    async def settled(self) -> None:
        assert self.kit.sim is not None
        await asyncio.wait_for(self.kit.sim.settled(self.server.app), WAIT)


StartRail = Callable[[float], Awaitable[Rail]]  # time_scale -> a fresh simulator


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, object]]:
    """One credential bundle per rail for the module: RSA key generation is the slow part."""
    made = {}
    for name, kit in SIMULATED.items():
        assert kit.sim is not None
        keys_dir = tmp_path_factory.mktemp(f"{name}-keys")
        made[name] = (keys_dir, kit.sim.create_bundle(keys_dir))
    return made


@pytest.fixture(params=list(SIMULATED))
async def start_rail(request: pytest.FixtureRequest,
                     bundles: dict[str, tuple[Path, object]]) -> AsyncIterator[StartRail]:
    kit = SIMULATED[request.param]
    keys_dir, bundle = bundles[kit.name]
    assert kit.sim is not None
    create_app = kit.sim.create_app
    async with AsyncExitStack() as stack:

        async def start(time_scale: float) -> Rail:
            settings = EnvSettings(time_scale=time_scale, hang_seconds=0.3)
            server = TestServer(create_app(bundle, settings), host="127.0.0.1", port=0)
            await server.start_server()
            stack.push_async_callback(server.close)
            session = aiohttp.ClientSession()
            stack.push_async_callback(session.close)
            return Rail(server, session, stack, kit, keys_dir)

        yield start


@pytest.fixture
async def rail(start_rail: StartRail) -> Rail:
    return await start_rail(0.02)


def quickpay(no: str) -> Charge:
    return Charge(no, 1000, "CNY", "quickpay", "coffee", {"auth_code": PAID_CODE},
                  "http://127.0.0.1:9/unused")


def native(no: str, notify_url: str) -> Charge:
    return Charge(no, 1000, "CNY", "native", "tea", {}, notify_url)


# --------------------------------------------------------------------------- settings
async def test_fault_settings_are_validated(rail: Rail) -> None:
    for bad in (
        {"error_rate": 1.5},
        {"error_rate": "0.1"},
        {"timeout_rate": True},
        {"latency_ms": -1},
        {"explode": 1},
        [1],
    ):
        status, payload = await rail.sim("POST", "/sim/faults", bad)
        assert (status, payload["code"]) == (400, "INVALID_REQUEST"), bad
    status, payload = await rail.sim("POST", "/sim/faults", {"error_rate": 0.2, "latency_ms": 5})
    assert status == 200 and payload["error_rate"] == 0.2 and payload["timeout_rate"] == 0
    assert (await rail.sim("GET", "/sim/faults"))[1] == payload
    await rail.faults()
    assert set((await rail.sim("GET", "/sim/faults"))[1].values()) == {0}


# --------------------------------------------------------------------------- answers
async def test_error_rate_answers_a_signed_system_error_without_applying(rail: Rail) -> None:
    await rail.faults(error_rate=1.0)
    codes = set()
    for i in range(8):
        err = await rail.refused(quickpay(f"fault_e{i}"))
        assert not err.definitive and "unsigned" not in err.message
        codes.add(err.code)
    assert codes == rail.traits.system_errors
    assert (await rail.ledger())["totals"]["orders"] == 0  # /sim/* is never faulted
    await rail.faults()
    assert (await rail.call(quickpay("fault_e0"))).status is RailStatus.SUCCEEDED


async def test_timeout_rate_applies_then_withholds(rail: Rail) -> None:
    await rail.faults(timeout_rate=1.0)
    request = rail.adapter.build(quickpay("fault_t1"))
    assert isinstance(request, HttpRequest)
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await rail.exchange(request)
    await rail.faults()
    assert (await rail.ledger())["orders"]["fault_t1"]["charges"] == 1
    assert (await rail.call(Query("fault_t1"))).status is RailStatus.SUCCEEDED


async def test_latency_delays_answers(rail: Rail) -> None:
    await rail.faults(latency_ms=120)
    started = time.monotonic()
    assert (await rail.call(Query("fault_nothing"))).status is RailStatus.NOT_FOUND
    assert time.monotonic() - started >= 0.1


# --------------------------------------------------------------------------- notifications
async def test_duplicate_notifications_repeat_the_same_event(rail: Rail) -> None:
    receiver = await rail.receiver()
    await rail.call(native("fault_d1", receiver.url))
    await rail.faults(duplicate_notify_rate=1.0)
    await rail.sim("POST", "/sim/orders/fault_d1/pay")
    first, second = await receiver.next(), await receiver.next()
    assert rail.traits.notification_id(first[1]) == rail.traits.notification_id(second[1])
    notes: list[Any] = [rail.adapter.verify_notification(*sent) for sent in (first, second)]
    assert notes[0] == notes[1] and notes[0].result.status is RailStatus.SUCCEEDED


async def test_dropped_notifications_never_arrive(start_rail: StartRail) -> None:
    rail = await start_rail(1e-6)  # the whole resend schedule in a moment
    receiver = await rail.receiver()
    await rail.call(native("fault_g1", receiver.url))
    await rail.faults(drop_notify_rate=1.0)
    await rail.sim("POST", "/sim/orders/fault_g1/pay")
    await rail.settled()
    assert receiver.queue.empty()
    assert (await rail.ledger())["orders"]["fault_g1"]["charges"] == 1
