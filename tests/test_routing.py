"""Routing through the HTTP API: weighted splits, the circuit breaker draining and
restoring a failing rail, failover on definitive refusals only, rule matching, the cost
strategy, and rules reloaded from their file — checked against the simulators' ledgers
(no order charged twice, nothing charged on a rail the payment did not end on)."""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from msgspec.structs import replace

from router.settings import (
    BreakerSettings,
    RailSettings,
    RoutingSettings,
    RuleSettings,
    Settings,
)
from tests.conftest import Sim, _start_sim, gateway_settings
from tests.helpers import Client, Gateway, eventually, payment_body, start_gateway

_codes = itertools.count(1)


def code(last: str = "1", *, head: str = "13") -> str:
    """A fresh 18-digit payer code (one payer each: the per-payer rate limit stays out of
    the way). The bank simulator reads the last digit: 2 declines, 9 withholds the answer."""
    return f"{head}{next(_codes):015d}{last}"


def instant(name: str) -> RailSettings:
    return RailSettings(name=name, options={"adapter": "instant"})


def bank(name: str, sim: Sim, timeout_s: float = 1.0, **options: Any) -> RailSettings:
    return RailSettings(name=name, base_url=sim.base_url, keys_dir=sim.keys_dir,
                        timeout_s=timeout_s, options={"adapter": "bank", **options})


@dataclass
class Banks:
    """Two bank simulators, for the rails `bank-a` and `bank-b`."""

    a: Sim
    b: Sim
    runners: dict[str, web.AppRunner]

    async def stop_a(self) -> None:
        await self.runners.pop("a").cleanup()


@pytest.fixture
async def banks(tmp_path: Path, http: aiohttp.ClientSession) -> AsyncIterator[Banks]:
    a, runner_a = await _start_sim("bank", tmp_path / "bank-a-keys", http)
    b, runner_b = await _start_sim("bank", tmp_path / "bank-b-keys", http)
    both = Banks(a, b, {"a": runner_a, "b": runner_b})
    yield both
    for runner in both.runners.values():
        await runner.cleanup()


@pytest.fixture
async def gateways(http: aiohttp.ClientSession) -> AsyncIterator[list[Gateway]]:
    """Gateways a test starts, closed after it."""
    started: list[Gateway] = []
    yield started
    for gw in started:
        await gw.close()


async def start(gateways: list[Gateway], settings: Settings,
                http: aiohttp.ClientSession) -> Gateway:
    gw = await start_gateway(settings, http)
    gateways.append(gw)
    return gw


def settings_for(redis_url: str, sim: Sim, tmp_path: Path, rails: tuple[RailSettings, ...],
                 routing: RoutingSettings) -> Settings:
    return replace(gateway_settings(redis_url, sim, tmp_path), rails=rails, routing=routing)


async def charged_orders(sim: Sim) -> dict[str, dict[str, Any]]:
    orders: dict[str, dict[str, Any]] = (await sim.ledger())["orders"]
    assert all(o["charges"] <= 1 for o in orders.values()), orders  # never twice
    return {no: o for no, o in orders.items() if o["charges"]}


# --------------------------------------------------------------------------- weighted split
async def test_weighted_split_follows_the_weights(
    redis_url: str, bank_sim: Sim, tmp_path: Path, http: aiohttp.ClientSession,
    gateways: list[Gateway],
) -> None:
    base = gateway_settings(redis_url, bank_sim, tmp_path)
    rule = RuleSettings(name="split", candidates=("instant-a", "instant-b"),
                        strategy="weighted", weights={"instant-a": 70, "instant-b": 30})
    gw = await start(gateways, replace(
        base, rails=(*base.rails, instant("instant-a"), instant("instant-b")),
        routing=RoutingSettings(rules=(rule,), breaker=BreakerSettings(window_s=120),
                                sync_interval_s=0.2)), http)
    client, _ = await gw.merchant()
    gate = asyncio.Semaphore(20)

    async def pay(i: int) -> dict[str, Any]:
        async with gate:
            reply = await client.post("/v1/payments", payment_body(
                f"split-{i}", method=None, auth_code=code()))
        assert reply.status == 201, reply.body
        body: dict[str, Any] = reply.body
        return body

    payments = await asyncio.gather(*(pay(i) for i in range(2000)))
    counts = Counter(p["adapter"] for p in payments)
    assert set(counts) == {"instant-a", "instant-b"}, counts
    assert abs(counts["instant-a"] / 2000 - 0.70) <= 0.05, counts
    assert abs(counts["instant-b"] / 2000 - 0.30) <= 0.05, counts
    assert all(p["status"] == "succeeded" and len(p["attempts"]) == 1 for p in payments)

    routing = payments[0]["routing"]
    assert routing["rule"] == "split" and routing["strategy"] == "weighted"
    assert routing["chosen"] == payments[0]["adapter"] == routing["candidates"][0]
    assert sorted(routing["candidates"]) == ["instant-a", "instant-b"]
    assert "split" in routing["reason"] and "weighted" in routing["reason"]
    assert {c["rail"]: (c["weight"], c["share"], c["breaker"])
            for c in routing["considered"]} == {
        "instant-a": (70.0, 0.7, "closed"), "instant-b": (30.0, 0.3, "closed")}
    stored = await client.get(f"/v1/payments/{payments[0]['id']}")
    assert stored.body["routing"] == routing

    async def health_counted_all() -> bool:
        rails = (await client.get("/v1/routing/health")).body["rails"]
        return bool(rails["instant-a"]["calls"] + rails["instant-b"]["calls"] == 2000)

    await eventually(health_counted_all, timeout=5)
    health = (await client.get("/v1/routing/health")).body
    assert health["object"] == "routing_health"
    a = health["rails"]["instant-a"]
    assert a["calls"] == counts["instant-a"] and a["success_rate"] == 1.0
    assert a["breaker"] == "closed"
    assert abs(a["traffic_share"] - counts["instant-a"] / 2000) < 0.001
    assert health["rails"]["bank"]["traffic_share"] == 0.0


# --------------------------------------------------------------------------- breaker
@dataclass
class Sent:
    sent: float  # time.monotonic() when the request went out
    status: int  # HTTP status of the answer
    payment_id: str
    adapter: str


class Traffic:
    """Payments sent continuously by a few workers, answers kept in completion order."""

    def __init__(self, client: Client, prefix: str, workers: int = 3) -> None:
        self.client = client
        self.prefix = prefix
        self.results: list[Sent] = []
        self._stop = asyncio.Event()
        self._tasks = [asyncio.create_task(self._run(w)) for w in range(workers)]

    async def _run(self, worker: int) -> None:
        for n in itertools.count():
            if self._stop.is_set():
                return
            sent = time.monotonic()
            reply = await self.client.post("/v1/payments", payment_body(
                f"{self.prefix}-{worker}-{n}", auth_code=code()))
            if reply.status == 201:
                pid, adapter = reply.body["id"], reply.body["adapter"]
            else:  # an unknown outcome: 502 naming the payment, left processing
                assert reply.status == 502, reply.body
                assert reply.body["error"]["payment_status"] == "processing"
                pid = reply.body["error"]["payment_id"]
                adapter = (await self.client.get(f"/v1/payments/{pid}")).body["adapter"]
            self.results.append(Sent(sent, reply.status, pid, adapter))
            await asyncio.sleep(0.01)  # pacing, about 3 × 60 payments a second

    def last(self, n: int) -> list[Sent]:
        return self.results[-n:] if len(self.results) >= n else []

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)


async def test_breaker_drains_a_failing_rail_and_restores_it(
    redis_url: str, banks: Banks, tmp_path: Path, http: aiohttp.ClientSession,
    gateways: list[Gateway],
) -> None:
    breaker = BreakerSettings(window_s=2, min_calls=5, error_rate=0.5, cool_down_s=1.5,
                              probes=2)
    rule = RuleSettings(name="primary", candidates=("bank-a", "bank-b"))
    gw = await start(gateways, settings_for(
        redis_url, banks.a, tmp_path, (bank("bank-a", banks.a), bank("bank-b", banks.b)),
        RoutingSettings(rules=(rule,), breaker=breaker, sync_interval_s=0.2)), http)
    client, _ = await gw.merchant()
    traffic = Traffic(client, "brk")

    async def rail_state(rail: str) -> str:
        state: str = (await client.get("/v1/routing/health")).body["rails"][rail]["breaker"]
        return state

    try:
        # Healthy: everything goes to the first candidate.
        async def warmed_up() -> bool:
            return len(traffic.results) >= 30

        await eventually(warmed_up)
        assert {s.adapter for s in traffic.results} == {"bank-a"}
        assert {s.status for s in traffic.results} == {201}

        # bank-a answers SYSTEM_ERROR to everything: unknown outcomes.
        await banks.a.faults(error_rate=1.0)

        async def erroring() -> bool:
            return any(s.status == 502 for s in traffic.results)

        await eventually(erroring)
        first_error = min(s.sent for s in traffic.results if s.status == 502)

        async def drained() -> bool:
            recent = traffic.last(10)
            return (bool(recent) and all(s.adapter == "bank-b" for s in recent)
                    and await rail_state("bank-a") == "open")

        await eventually(drained, timeout=first_error + 5.0 - time.monotonic())
        drained_after = time.monotonic() - first_error
        assert drained_after <= 5.0

        detour = (await client.get(f"/v1/payments/{traffic.last(1)[0].payment_id}")).body
        assert detour["status"] == "succeeded" and detour["adapter"] == "bank-b"
        assert len(detour["attempts"]) == 1  # a detour, not a failover
        assert detour["routing"]["rule"] == "primary"
        assert detour["routing"]["candidates"] == ["bank-b"]
        assert "bank-a passed over (breaker)" in detour["routing"]["reason"]
        assert {c["rail"]: c["breaker"] for c in detour["routing"]["considered"]} == {
            "bank-a": "open", "bank-b": "closed"}
        async def health_shows_it() -> bool:
            rails = (await client.get("/v1/routing/health")).body["rails"]
            a, b = rails["bank-a"], rails["bank-b"]
            return bool(a["breaker"] == "open" and a["success_rate"] <= 0.5
                        and b["breaker"] == "closed" and b["success_rate"] == 1.0
                        and b["latency_ms"]["p99"] >= b["latency_ms"]["p50"] > 0
                        and a["traffic_share"] + b["traffic_share"] == pytest.approx(1.0)
                        and b["traffic_share"] > 0)

        await eventually(health_shows_it, timeout=3)

        # While bank-a keeps failing it stays drained: only the half-open probes reach it.
        drained_at = len(traffic.results)

        async def more() -> bool:
            return len(traffic.results) >= drained_at + 100

        await eventually(more)
        meanwhile = Counter((s.adapter, s.status) for s in traffic.results[drained_at:])
        assert set(meanwhile) <= {("bank-b", 201), ("bank-a", 502)}, meanwhile
        assert meanwhile["bank-a", 502] <= 2 * breaker.probes, meanwhile

        # Recovery: the half-open probes succeed and the traffic comes back.
        await banks.a.faults(error_rate=0.0)
        cleared = time.monotonic()

        async def restored() -> bool:
            recent = traffic.last(10)
            return (bool(recent) and min(s.sent for s in recent) > cleared
                    and all(s.adapter == "bank-a" for s in recent)
                    and await rail_state("bank-a") == "closed")

        await eventually(restored, timeout=10)
    finally:
        await traffic.stop()

    results = traffic.results
    assert any(s.status == 502 and s.adapter == "bank-a" for s in results)

    # Every unknown outcome is settled by the sweeper (bank-a is back: reversed).
    unknown = [s.payment_id for s in results if s.status != 201]

    async def settled() -> bool:
        for pid in unknown:
            if (await client.get(f"/v1/payments/{pid}")).body["status"] == "processing":
                return False
        return True

    await eventually(settled, timeout=10)

    charged_a, charged_b = await charged_orders(banks.a), await charged_orders(banks.b)
    ledger_a, ledger_b = (await banks.a.ledger())["orders"], (await banks.b.ledger())["orders"]
    succeeded_amount = 0
    for s in results:
        payment = (await client.get(f"/v1/payments/{s.payment_id}")).body
        attempts = payment["attempts"]
        assert len(attempts) == 1, payment  # SYSTEM_ERROR never fails over
        order = attempts[0]["rail_order_no"]
        charged, other = ((charged_a, ledger_b) if payment["adapter"] == "bank-a"
                          else (charged_b, ledger_a))
        assert order not in other
        if payment["status"] == "succeeded":
            assert order in charged and charged[order]["charged"] == payment["amount"]
            succeeded_amount += payment["amount"]
        else:
            assert s.status == 502 and payment["adapter"] == "bank-a", payment
            assert payment["status"] == "closed", payment
            assert ledger_a[order]["status"] == "REVERSED" and ledger_a[order]["charged"] == 0
            assert not any(no.startswith(order.rsplit("_", 1)[0]) for no in ledger_b)
    assert (sum(o["charged"] for o in charged_a.values())
            + sum(o["charged"] for o in charged_b.values())) == succeeded_amount
    assert len(charged_a) + len(charged_b) == sum(
        1 for s in results if s.status == 201)


# --------------------------------------------------------------------------- failover
async def test_unreachable_rail_fails_over_to_the_next_candidate(
    redis_url: str, banks: Banks, tmp_path: Path, http: aiohttp.ClientSession,
    gateways: list[Gateway],
) -> None:
    rule = RuleSettings(name="primary", candidates=("bank-a", "bank-b"))
    gw = await start(gateways, settings_for(
        redis_url, banks.a, tmp_path, (bank("bank-a", banks.a), bank("bank-b", banks.b)),
        RoutingSettings(rules=(rule,))), http)
    client, _ = await gw.merchant()
    before = await client.post("/v1/payments", payment_body("fo-0", auth_code=code()))
    assert before.status == 201 and before.body["adapter"] == "bank-a"

    await banks.stop_a()  # connection refused: the request was never sent
    moved = await client.post("/v1/payments", payment_body("fo-1", auth_code=code()))
    assert moved.status == 201, moved.body
    assert moved.body["status"] == "succeeded" and moved.body["adapter"] == "bank-b"
    first, second = moved.body["attempts"]
    assert first["adapter"] == "bank-a" and first["failure_code"] == "RAIL_UNREACHABLE"
    assert second["adapter"] == "bank-b" and "failure_code" not in second
    assert [first["number"], second["number"]] == [1, 2]
    assert first["rail_order_no"] != second["rail_order_no"]
    stored = await client.get(f"/v1/payments/{moved.body['id']}")
    assert stored.body["attempts"] == moved.body["attempts"]
    assert stored.body["status"] == "succeeded"
    charged_b = await charged_orders(banks.b)
    assert list(charged_b) == [second["rail_order_no"]]
    assert charged_b[second["rail_order_no"]]["charged"] == 1000


@pytest.mark.parametrize("max_attempts", [1, 2, 3])
async def test_decline_in_failover_codes_fails_over_up_to_max_attempts(
    redis_url: str, banks: Banks, tmp_path: Path, http: aiohttp.ClientSession,
    gateways: list[Gateway], max_attempts: int,
) -> None:
    codes = {"failover_codes": ["INSUFFICIENT_FUNDS"]}
    rails = (bank("bank-a", banks.a, **codes), bank("bank-b", banks.b, **codes),
             bank("bank-c", banks.b, **codes))
    rule = RuleSettings(name="all", candidates=("bank-a", "bank-b", "bank-c"))
    gw = await start(gateways, settings_for(
        redis_url, banks.a, tmp_path, rails,
        RoutingSettings(rules=(rule,), max_attempts=max_attempts)), http)
    client, _ = await gw.merchant()
    reply = await client.post("/v1/payments", payment_body("dec-1", auth_code=code("2")))
    assert reply.status == 201, reply.body
    payment = reply.body
    assert payment["status"] == "failed"
    assert payment["failure"]["code"] == "INSUFFICIENT_FUNDS"
    attempts = payment["attempts"]
    assert [a["adapter"] for a in attempts] == ["bank-a", "bank-b", "bank-c"][:max_attempts]
    assert [a.get("failure_code") for a in attempts[:-1]] == (
        ["INSUFFICIENT_FUNDS"] * (max_attempts - 1))
    assert len({a["rail_order_no"] for a in attempts}) == max_attempts
    stored = await client.get(f"/v1/payments/{payment['id']}")
    assert stored.body["attempts"] == attempts and stored.body["status"] == "failed"
    ledger = {**(await banks.a.ledger())["orders"], **(await banks.b.ledger())["orders"]}
    assert sorted(ledger) == sorted(a["rail_order_no"] for a in attempts)
    assert all(o["status"] == "FAILED" and o["charged"] == 0 for o in ledger.values())


async def test_decline_without_failover_codes_does_not_fail_over(
    redis_url: str, banks: Banks, tmp_path: Path, http: aiohttp.ClientSession,
    gateways: list[Gateway],
) -> None:
    rule = RuleSettings(name="primary", candidates=("bank-a", "bank-b"))
    gw = await start(gateways, settings_for(
        redis_url, banks.a, tmp_path, (bank("bank-a", banks.a), bank("bank-b", banks.b)),
        RoutingSettings(rules=(rule,), max_attempts=3)), http)
    client, _ = await gw.merchant()
    reply = await client.post("/v1/payments", payment_body("nofo-1", auth_code=code("2")))
    assert reply.status == 201 and reply.body["status"] == "failed", reply.body
    assert [a["adapter"] for a in reply.body["attempts"]] == ["bank-a"]
    assert "failure_code" not in reply.body["attempts"][0]
    assert (await banks.b.ledger())["orders"] == {}


async def test_unknown_outcomes_never_fail_over(
    redis_url: str, banks: Banks, tmp_path: Path, http: aiohttp.ClientSession,
    gateways: list[Gateway],
) -> None:
    """Even with the unknown-outcome codes listed as failover codes: a timeout or a
    SYSTEM_ERROR may have charged the payer, so the payment waits for the sweeper."""
    codes = {"failover_codes": ["INSUFFICIENT_FUNDS", "RAIL_TIMEOUT", "SYSTEM_ERROR"]}
    rule = RuleSettings(name="primary", candidates=("bank-a", "bank-b"))
    gw = await start(gateways, settings_for(
        redis_url, banks.a, tmp_path,
        (bank("bank-a", banks.a, timeout_s=0.5, **codes), bank("bank-b", banks.b)),
        RoutingSettings(rules=(rule,), max_attempts=3)), http)
    client, _ = await gw.merchant()

    # The bank charges, then withholds its answer: the router times out.
    timed_out = await client.post("/v1/payments", payment_body("to-1", auth_code=code("9")))
    assert timed_out.status == 504, timed_out.body
    assert timed_out.body["error"]["code"] == "adapter_timeout"
    assert timed_out.body["error"]["payment_status"] == "processing"
    timeout_id = timed_out.body["error"]["payment_id"]

    # The bank fails internally: SYSTEM_ERROR, nothing charged, but the router cannot know.
    await banks.a.faults(error_rate=1.0)
    errored = await client.post("/v1/payments", payment_body("se-1", auth_code=code()))
    assert errored.status == 502, errored.body
    assert errored.body["error"]["payment_status"] == "processing"
    error_id = errored.body["error"]["payment_id"]
    processing = await client.get(f"/v1/payments/{error_id}")
    assert processing.body["status"] == "processing"
    assert [a["adapter"] for a in processing.body["attempts"]] == ["bank-a"]
    await banks.a.faults(error_rate=0.0)

    async def settled() -> bool:
        statuses = [(await client.get(f"/v1/payments/{pid}")).body["status"]
                    for pid in (timeout_id, error_id)]
        return "processing" not in statuses

    await eventually(settled, timeout=10)
    charged = (await client.get(f"/v1/payments/{timeout_id}")).body
    assert charged["status"] == "succeeded" and charged["adapter"] == "bank-a"
    assert len(charged["attempts"]) == 1 and "failure_code" not in charged["attempts"][0]
    reversed_ = (await client.get(f"/v1/payments/{error_id}")).body
    assert reversed_["status"] == "closed" and len(reversed_["attempts"]) == 1
    charged_a = await charged_orders(banks.a)
    assert list(charged_a) == [charged["attempts"][0]["rail_order_no"]]
    assert (await banks.b.ledger())["orders"] == {}  # bank-b never saw either payment


# --------------------------------------------------------------------------- rules
async def test_rules_match_and_the_first_match_wins(
    redis_url: str, bank_sim: Sim, tmp_path: Path, http: aiohttp.ClientSession,
    gateways: list[Gateway],
) -> None:
    base = gateway_settings(redis_url, bank_sim, tmp_path)
    # Merchants live in Redis: create them first, then configure a rule naming one.
    setup = await start(gateways, base, http)
    client, _ = await setup.merchant("Plain")
    vip_client, vip = await setup.merchant("Named")
    await setup.close()
    gateways.remove(setup)

    names = ("i-big", "i-usd", "i-native", "i-ali", "i-wx", "i-meta", "i-mch", "i-small",
             "i-cheap", "i-flat")
    rules = (
        RuleSettings(name="cost", candidates=("i-cheap", "i-flat"), strategy="cost",
                     match={"metadata": {"route": "cost"}}),
        RuleSettings(name="big", candidates=("i-big",), match={"amount_min": 100_000}),
        RuleSettings(name="usd", candidates=("i-usd",), match={"currency": ["USD", "EUR"]}),
        RuleSettings(name="native", candidates=("i-native",), match={"scene": "native"}),
        RuleSettings(name="alipay", candidates=("i-ali",), match={"wallet": "alipay"}),
        RuleSettings(name="wechat-small", candidates=("i-wx",),
                     match={"wallet": "wechat", "amount_max": 500}),
        RuleSettings(name="meta", candidates=("i-meta",),
                     match={"metadata": {"tier": "gold"}}),
        RuleSettings(name="merchant", candidates=("i-mch",), match={"merchant": vip["id"]}),
        RuleSettings(name="small", candidates=("i-small",), match={"amount_max": 500}),
    )
    gw = await start(gateways, replace(
        base, rails=(*base.rails, *(instant(n) for n in names)),
        routing=RoutingSettings(rules=rules,
                                fees={"i-cheap": (1.0, 0), "i-flat": (0.1, 200)})), http)
    setup_client = Client(http, gw.base, client.token)
    vip_client = Client(http, gw.base, vip_client.token)

    cases: list[tuple[str, dict[str, Any], str, str | None]] = [
        # (what, payment body changes, adapter, rule)
        ("amount ≥ min", {"amount": 100_000}, "i-big", "big"),
        ("amount below the range", {"amount": 99_999}, "bank", None),
        ("currency", {"currency": "USD"}, "i-usd", "usd"),
        ("scene", {"scene": "native"}, "i-native", "native"),
        ("alipay code, 16 digits", {"payer": {"auth_code": code(head="28")[:16]}},
         "i-ali", "alipay"),
        ("alipay code, 24 digits", {"payer": {"auth_code": "28" + "7" * 22}},
         "i-ali", "alipay"),
        ("wechat openid", {"scene": "jsapi", "amount": 300, "payer": {"openid": "oWx_1"}},
         "i-wx", "wechat-small"),
        ("wechat code", {"amount": 300}, "i-wx", "wechat-small"),
        ("wechat over the range: next rule", {"amount": 600}, "bank", None),
        ("unknown wallet, small", {"amount": 300, "payer": {"auth_code": "999999"}},
         "i-small", "small"),
        ("metadata", {"metadata": {"tier": "gold", "x": "1"}}, "i-meta", "meta"),
        ("metadata mismatch", {"metadata": {"tier": "silver"}}, "bank", None),
        ("first match wins", {"amount": 100_000, "currency": "USD"}, "i-big", "big"),
        ("method restricts the pool", {"amount": 100_000, "method": "bank"}, "bank", None),
        ("method keeps its adapter's rails", {"amount": 100_000, "method": "instant"},
         "i-big", "big"),
        ("cost, small amount: percentage is cheaper", {"metadata": {"route": "cost"}},
         "i-cheap", "cost"),
        ("cost, large amount: flat fee is cheaper",
         {"amount": 99_000, "metadata": {"route": "cost"}}, "i-flat", "cost"),
    ]
    for n, (what, changes, adapter, rule) in enumerate(cases):
        changes = dict(changes)
        body = payment_body(f"rule-{n}", method=None, auth_code=code(),
                            scene=changes.pop("scene", "quickpay"))
        body.update(changes)
        reply = await setup_client.post("/v1/payments", body)
        assert reply.status == 201, (what, reply.body)
        routing = reply.body["routing"]
        assert (reply.body["adapter"], routing.get("rule")) == (adapter, rule), (what, routing)
        assert routing["chosen"] == adapter
        if rule is None:
            assert routing["strategy"] == "priority"
            assert routing["reason"] in ("default order of rails taking the scene",
                                         "method named by the request")
            assert routing["candidates"][-1] == "instant" or body.get("method") == "bank"

    named = await vip_client.post("/v1/payments", payment_body(
        "rule-vip", method=None, auth_code=code()))
    assert named.body["adapter"] == "i-mch" and named.body["routing"]["rule"] == "merchant"

    cheap = await setup_client.post("/v1/payments", payment_body(
        "rule-cost", method=None, auth_code=code(), metadata={"route": "cost"}))
    assert cheap.body["routing"]["strategy"] == "cost"
    assert {c["rail"]: c["fee"] for c in cheap.body["routing"]["considered"]} == {
        "i-cheap": 10.0, "i-flat": 201.0}
    assert cheap.body["routing"]["candidates"] == ["i-cheap", "i-flat"]


async def test_rules_file_is_reloaded_and_a_broken_one_is_ignored(
    redis_url: str, bank_sim: Sim, tmp_path: Path, http: aiohttp.ClientSession,
    gateways: list[Gateway], caplog: pytest.LogCaptureFixture,
) -> None:
    path = tmp_path / "routing.toml"

    def write(text: str) -> None:
        before = path.stat().st_mtime_ns if path.exists() else 0
        path.write_text(text)
        if path.stat().st_mtime_ns <= before:  # coarse clocks: make the change visible
            os.utime(path, ns=(before + 1_000_000, before + 1_000_000))

    def rule_file(name: str, rail: str) -> str:
        return f'[[rules]]\nname = "{name}"\ncandidates = ["{rail}"]\n'

    write(rule_file("file-1", "instant-a"))
    base = gateway_settings(redis_url, bank_sim, tmp_path)
    gw = await start(gateways, replace(
        base, rails=(*base.rails, instant("instant-a"), instant("instant-b")),
        routing=RoutingSettings(rules_file=path)), http)
    client, _ = await gw.merchant()
    otn = itertools.count()

    async def routed() -> tuple[str, str | None]:
        reply = await client.post("/v1/payments", payment_body(
            f"file-{next(otn)}", method=None, auth_code=code()))
        assert reply.status == 201, reply.body
        return reply.body["adapter"], reply.body["routing"].get("rule")

    assert await routed() == ("instant-a", "file-1")

    write(rule_file("file-2", "instant-b"))

    async def follows(expected: tuple[str, str | None]) -> bool:
        return await routed() == expected

    await eventually(lambda: follows(("instant-b", "file-2")), timeout=6, interval=0.2)

    for broken, says in (("[[rules]\nname = ", "rejected"),
                         (rule_file("file-x", "instant-a") + 'strategy = "random"\n',
                          "rejected"),
                         (rule_file("file-y", "instant-a") + '[rules.match]\namount_min = "1000"\n',
                          "rejected")):
        caplog.clear()
        write(broken)

        async def logged(says: str = says) -> bool:
            return any(says in r.getMessage() and r.levelname == "ERROR"
                       for r in caplog.records)

        await eventually(logged, timeout=6, interval=0.2)
        for _ in range(3):  # the old rules stay in force
            assert await routed() == ("instant-b", "file-2")

    path.unlink()
    write(rule_file("file-3", "instant-a"))
    await eventually(lambda: follows(("instant-a", "file-3")), timeout=6, interval=0.2)


async def test_routing_health_needs_a_token(
    redis_url: str, bank_sim: Sim, tmp_path: Path, http: aiohttp.ClientSession,
    gateways: list[Gateway],
) -> None:
    gw = await start(gateways, gateway_settings(redis_url, bank_sim, tmp_path), http)
    anonymous = await http.get(f"{gw.base}/v1/routing/health")
    assert anonymous.status == 401
    wrong = Client(http, gw.base, "sk_wrong")
    assert (await wrong.get("/v1/routing/health")).status in (401, 403)
    admin = await gw.admin().get("/v1/routing/health")
    assert admin.status == 200
    assert set(admin.body["rails"]) == {"bank", "instant"}
    assert admin.body["rails"]["bank"] == {
        "breaker": "closed", "success_rate": None, "calls": 0, "failed": 0,
        "latency_ms": {"p50": None, "p99": None}, "traffic_share": None}
