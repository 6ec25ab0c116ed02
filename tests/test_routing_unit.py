"""Routing without a gateway: settings parsing, wallet detection, rule matching, the
strategies' orderings, and the circuit breaker's state machine over a real Redis."""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from adapters import registry
from adapters.base import AdapterConfig
from router.api.schemas import PaymentCreate, convert
from router.config_file import parse_rules, settings_from_toml
from router.errors import RouterError
from router.merchants import Merchant
from router.routing import HealthBook, Router, strategies
from router.routing.health import BreakerState
from router.routing.rules import check_rule, matches
from router.routing.wallet import wallet_of_payer
from router.security import Secret
from router.settings import (
    BreakerSettings,
    RailSettings,
    RoutingSettings,
    RuleSettings,
    SettingsError,
)
from router.store.health import HealthStore
from router.store.link import open_link
from router.store.store import Store
from router.validation import PaymentRequest, payment_request
from tests.helpers import eventually

MERCHANT = Merchant(id="mch_1", name="Shop", shard=0, webhook_secret=Secret("whsec"))
FAST_BREAKER = BreakerSettings(window_s=2, min_calls=5, error_rate=0.5, cool_down_s=1.5,
                               probes=2)


def req(amount: int = 1000, *, scene: str = "quickpay", method: str | None = None,
        currency: str = "CNY", payer: dict[str, str] | None = None,
        metadata: dict[str, str] | None = None) -> PaymentRequest:
    body: dict[str, Any] = {"amount": amount, "currency": currency, "out_trade_no": "o1",
                            "scene": scene, "description": "Coffee",
                            "payer": payer or {"auth_code": "134567890123456781"}}
    if method:
        body["method"] = method
    if metadata:
        body["metadata"] = metadata
    return payment_request(convert(body, PaymentCreate))


@pytest.fixture
async def fast(redis_url: str) -> AsyncIterator[HealthStore]:
    store = Store(open_link(redis_url), shards=1, idem_ttl_s=60)
    yield store.health
    await store.aclose()


# --------------------------------------------------------------------------- wallets
@pytest.mark.parametrize(("payer", "wallet"), [
    ({"openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"}, "wechat"),
    ({"sub_openid": "o1"}, "wechat"),
    ({"buyer_id": "2088102146225135"}, "alipay"),
    ({"auth_code": "134567890123456781"}, "wechat"),  # 18 digits, 13…
    ({"auth_code": "104567890123456781"}, "wechat"),  # 10…
    ({"auth_code": "154567890123456781"}, "wechat"),  # 15…
    ({"auth_code": "164567890123456781"}, None),  # 16… is nobody's
    ({"auth_code": "13456789012345678"}, None),  # 17 digits, 13…: not WeChat's shape
    ({"auth_code": "2845678901234567"}, "alipay"),  # 16 digits, 28…
    ({"auth_code": "284567890123456789012345"}, "alipay"),  # 24 digits
    ({"auth_code": "2845678901234567890123456"}, None),  # 25 digits: too long
    ({"auth_code": "284567890123456"}, None),  # 15 digits: too short
    ({"auth_code": "254567890123456781"}, "alipay"),
    ({"auth_code": "314567890123456781"}, None),  # 31…
    ({"auth_code": "fp1234567890"}, "alipay"),  # face pay
    ({"auth_code": "6245678901234567890"}, "unionpay"),  # 19 digits, 62…
    ({"auth_code": "62456789012345678"}, None),
    ({"auth_code": "13a567890123456781"}, None),
    ({"wallet": "alipay", "auth_code": "134567890123456781"}, "alipay"),  # explicit wins
    ({"wallet": "bogus", "openid": "o1"}, "wechat"),  # unknown explicit is ignored
    ({}, None),
])
def test_wallet_of_payer(payer: dict[str, str], wallet: str | None) -> None:
    assert wallet_of_payer(payer) == wallet


# --------------------------------------------------------------------------- settings
def test_routing_settings_parse_every_key(tmp_path: Path) -> None:
    settings = settings_from_toml({"routing": {
        "max_attempts": 3,
        "sync_interval_s": 0.25,
        "rules_file": "routing.toml",
        "fees": {"bank": {"percent": 0.6, "fixed": 10}, "instant": {"percent": 0}},
        "breaker": {"window_s": 5, "min_calls": 3, "error_rate": 0.25, "latency_ms": 800,
                    "cool_down_s": 2, "probes": 1},
        "rules": [
            {"name": "big", "candidates": ["bank", "instant"], "strategy": "weighted",
             "weights": {"bank": 3, "instant": 1.5},
             "match": {"amount_min": 100, "currency": ["CNY"], "metadata": {"k": "v"}}},
            {"candidates": ["instant"]},
        ],
    }}, tmp_path).routing
    assert settings.max_attempts == 3 and settings.sync_interval_s == 0.25
    assert settings.rules_file == tmp_path / "routing.toml"
    assert settings.fees == {"bank": (0.6, 10), "instant": (0.0, 0)}
    assert settings.breaker == BreakerSettings(window_s=5, min_calls=3, error_rate=0.25,
                                               latency_ms=800, cool_down_s=2, probes=1)
    big, unnamed = settings.rules
    assert big == RuleSettings(name="big", candidates=("bank", "instant"),
                               match={"amount_min": 100, "currency": ["CNY"],
                                      "metadata": {"k": "v"}},
                               strategy="weighted", weights={"bank": 3.0, "instant": 1.5})
    assert unnamed.name == "rule-2" and unnamed.strategy == "priority"
    defaults = settings_from_toml({"routing": {}}, tmp_path).routing
    assert defaults == RoutingSettings()


@pytest.mark.parametrize(("raw", "says"), [
    ({"rules": [{"name": "r"}]}, "rules[0].candidates: missing"),
    ({"rules": [{"name": "r", "candidates": []}]},
     "rules[0].candidates: Expected array of length >= 1"),
    ({"rules": [{"name": "r", "candidates": [1]}]},
     "rules[0].candidates[0]: Expected string, got integer"),
    ({"rules": [{"name": "r", "candidates": ["a"], "strategy": "random"}]},
     "rules[0].strategy: Invalid enum value 'random'"),
    ({"rules": [{"name": "r", "candidates": ["a"], "weights": {"a": -1}}]},
     "rules[0].weights[...]: Expected number >= 0.0"),
    ({"rules": [{"name": "r", "candidates": ["a"], "weights": {"a": "x"}}]},
     "rules[0].weights[...]: Expected number, got string"),
    ({"rules": [{"name": "r", "candidates": ["a"], "match": "all"}]},
     "rules[0].match: Expected table, got string"),
    ({"rules": [{"name": "r", "candidates": ["a"], "when": {}}]}, "rules[0].when: unknown key"),
    ({"rules": ["r"]}, "rules[0]: Expected table, got string"),
    ({"fees": {"bank": {"percent": "cheap"}}}, "fees.bank.percent: Expected number, got string"),
    ({"fees": {"bank": 3}}, "fees.bank: Expected table, got integer"),
    ({"breaker": {"window": 3}}, "breaker.window: unknown key"),
    ({"breaker": {"error_rate": 1.5}}, "breaker.error_rate: Expected number <= 1.0, got 1.5"),
    ({"attempts": 3}, "attempts: unknown key"),
])
def test_routing_settings_reject(raw: dict[str, Any], says: str) -> None:
    with pytest.raises(SettingsError) as caught:
        settings_from_toml({"routing": raw}, Path("."))
    assert str(caught.value) == f"settings: routing.{says}"


def test_unknown_match_key_is_rejected() -> None:
    [rule] = parse_rules([{"name": "r", "candidates": ["a"],
                           "match": {"amount_max": 5, "wallets": "x"}}])
    with pytest.raises(SettingsError, match="wallets"):
        check_rule(rule)
    rails = (RailSettings(name="instant"),)
    adapters = registry.load([AdapterConfig(name="instant", base_url="", keys_dir=None,
                                            options={})])
    with pytest.raises(SettingsError, match="wallets"):
        Router(adapters, rails, RoutingSettings(rules=(rule,)), None,
               HealthBook(adapters, BreakerSettings()))


@pytest.mark.parametrize("match", [
    {"amount_min": "1000"},  # would fail every payment it is tried on
    {"amount_max": -1},
    {"amount_max": 1.5},
    {"amount_min": True},
    {"currency": 156},
    {"currency": []},
    {"scene": ["native", 1]},
    {"metadata": "tier=gold"},
    {"metadata": {"tier": 1}},
    {"wallet": "wechatpay"},  # a typo would silently never match
    {"wallet": ["alipay", "weixin"]},
])
def test_match_values_are_checked_when_loaded(match: dict[str, Any]) -> None:
    [rule] = parse_rules([{"name": "r", "candidates": ["a"], "match": match}])
    with pytest.raises(SettingsError, match=f"match.{next(iter(match))} must be"):
        check_rule(rule)


# --------------------------------------------------------------------------- matching
@pytest.mark.parametrize(("match", "request_", "expected"), [
    ({}, req(), True),
    ({"amount_min": 1000, "amount_max": 1000}, req(1000), True),  # inclusive
    ({"amount_min": 1001}, req(1000), False),
    ({"amount_max": 999}, req(1000), False),
    ({"currency": "USD"}, req(currency="CNY"), False),
    ({"currency": ["USD", "CNY"]}, req(currency="CNY"), True),
    ({"scene": "native"}, req(), False),
    ({"scene": ["native", "quickpay"]}, req(), True),
    ({"method": "none"}, req(), True),
    ({"method": "none"}, req(method="bank"), False),
    ({"method": "bank"}, req(method="bank"), True),
    ({"wallet": "wechat"}, req(payer={"auth_code": "134567890123456781"}), True),
    ({"wallet": "alipay"}, req(payer={"auth_code": "134567890123456781"}), False),
    ({"wallet": "alipay"}, req(payer={"auth_code": "2845678901234567"}), True),
    ({"wallet": "unknown"}, req(payer={"auth_code": "999"}), True),
    ({"wallet": "wechat"}, req(scene="jsapi", payer={"openid": "o_1"}), True),
    ({"metadata": {"tier": "gold"}}, req(metadata={"tier": "gold", "x": "y"}), True),
    ({"metadata": {"tier": "gold"}}, req(metadata={"tier": "silver"}), False),
    ({"metadata": {"tier": "gold"}}, req(), False),
    ({"merchant": "mch_1"}, req(), True),
    ({"merchant": ["mch_2", "mch_3"]}, req(), False),
    ({"merchant": "mch_1", "amount_max": 10}, req(1000), False),  # every key must hold
])
def test_rule_matching(match: dict[str, Any], request_: PaymentRequest, expected: bool) -> None:
    rule = RuleSettings(name="r", candidates=("instant",), match=match)
    check_rule(rule)
    assert matches(rule, MERCHANT.id, request_) is expected


# --------------------------------------------------------------------------- strategies
def test_priority_keeps_the_rule_order(redis_url: str) -> None:
    rule = RuleSettings(name="p", candidates=("b", "a", "c"))
    ordered, detail = strategies.order(rule, ["b", "a", "c"], 1000,
                                       HealthBook(["a", "b", "c"], BreakerSettings()), {},
                                       random.Random(1))
    assert ordered == ["b", "a", "c"]
    assert [d["rank"] for d in detail] == [1, 2, 3]


def test_weighted_draw_follows_the_weights() -> None:
    rule = RuleSettings(name="w", candidates=("a", "b", "c", "z"), strategy="weighted",
                        weights={"a": 6, "b": 3, "c": 1, "z": 0})
    rng = random.Random(42)
    health = HealthBook(["a", "b", "c", "z"], BreakerSettings())
    firsts: Counter[str] = Counter()
    for _ in range(10_000):
        ordered, detail = strategies.order(rule, ["a", "b", "c", "z"], 1, health, {}, rng)
        assert sorted(ordered) == ["a", "b", "c", "z"]  # everyone stays a candidate…
        assert ordered[-1] == "z"  # …a zero weight only as the last resort
        firsts[ordered[0]] += 1
    assert abs(firsts["a"] / 10_000 - 0.6) < 0.02
    assert abs(firsts["b"] / 10_000 - 0.3) < 0.02
    assert abs(firsts["c"] / 10_000 - 0.1) < 0.02
    assert {d["rail"]: d["share"] for d in detail} == {"a": 0.6, "b": 0.3, "c": 0.1, "z": 0.0}


def test_cost_orders_by_the_fee_for_the_amount() -> None:
    rule = RuleSettings(name="c", candidates=("pct", "flat", "free"), strategy="cost")
    fees = {"pct": (1.0, 0), "flat": (0.1, 200)}
    health = HealthBook(["pct", "flat", "free"], BreakerSettings())
    small, detail = strategies.order(rule, ["pct", "flat"], 1_000, health, fees,
                                     random.Random(0))
    assert small == ["pct", "flat"]  # 10 vs 201
    assert {d["rail"]: d["fee"] for d in detail} == {"pct": 10.0, "flat": 201.0}
    large, _ = strategies.order(rule, ["pct", "flat"], 100_000, health, fees, random.Random(0))
    assert large == ["flat", "pct"]  # 1000 vs 300
    unpriced, _ = strategies.order(rule, ["pct", "free"], 100, health, fees, random.Random(0))
    assert unpriced == ["free", "pct"]  # no fee entry: costs nothing


async def test_success_rate_prefers_the_better_window(fast: HealthStore) -> None:
    health = HealthBook(["a", "b", "c"], BreakerSettings(window_s=10, min_calls=1000))
    for _ in range(8):
        health.record("a", True, 0.01)
    for _ in range(2):
        health.record("a", False, 0.01)
    for _ in range(10):
        health.record("b", True, 0.01)
    await health.sync(fast)
    rule = RuleSettings(name="s", candidates=("a", "b", "c"), strategy="success_rate")
    ordered, detail = strategies.order(rule, ["a", "b", "c"], 1, health, {}, random.Random(0))
    # b 100 % measured, c unmeasured (counts as healthy, keeps its rule place), a 80 %.
    assert ordered == ["b", "c", "a"]
    assert {d["rail"]: d["success_rate"] for d in detail} == {"a": 0.8, "b": 1.0, "c": None}

    # Another process reading the same Redis reaches the same order.
    other = HealthBook(["a", "b", "c"], BreakerSettings(window_s=10, min_calls=1000))
    await other.sync(fast)
    assert strategies.order(rule, ["a", "b", "c"], 1, other, {}, random.Random(0))[0] == ordered


# --------------------------------------------------------------------------- breaker
def _fail(book: HealthBook, rail: str, n: int) -> None:
    for _ in range(n):
        book.record(rail, False, 0.01)


async def test_breaker_opens_on_error_rate_only_over_min_calls(fast: HealthStore) -> None:
    book = HealthBook(["a", "b"], FAST_BREAKER)
    t = 1_000.0
    _fail(book, "a", 4)
    await book.sync(fast, t)
    assert book.view("a").state == BreakerState.CLOSED  # 4 calls < min_calls
    book.record("a", True, 0.01)
    for _ in range(5):
        book.record("b", True, 0.01)
    _fail(book, "b", 4)
    await book.sync(fast, t + 0.2)
    assert book.view("a").state == BreakerState.OPEN  # 4 of 5 failed
    assert book.view("b").state == BreakerState.CLOSED  # 4 of 9: under 50 %
    assert not book.admits("a") and book.admits("b")


async def test_breaker_state_is_shared_between_processes(fast: HealthStore) -> None:
    one, two = HealthBook(["a"], FAST_BREAKER), HealthBook(["a"], FAST_BREAKER)
    _fail(one, "a", 3)
    _fail(two, "a", 3)
    await one.sync(fast, 1_000.0)
    assert one.view("a").state == BreakerState.CLOSED  # its own 3 failures are not enough…
    await two.sync(fast, 1_000.1)
    assert two.view("a").state == BreakerState.OPEN  # …the 6 of both processes are
    await one.sync(fast, 1_000.2)
    assert one.view("a").state == BreakerState.OPEN and one.view("a").calls == 6


async def test_half_open_probes_close_the_breaker(fast: HealthStore) -> None:
    """Each step is one sync interval: the breaker opens, cools down, lets exactly
    `probes` calls through, and closes when they succeed. (A probe answered in the
    second the breaker went half-open used to be ignored, and with its probes spent the
    rail stayed half-open for good.)"""
    book = HealthBook(["a"], FAST_BREAKER)
    t = 1_000.5
    _fail(book, "a", 5)
    await book.sync(fast, t)
    assert book.view("a").state == BreakerState.OPEN
    states, admitted = [], 0
    for _ in range(30):  # 6 s of 0.2 s steps
        for _ in range(3):  # three payments per step would like to use the rail
            if book.view("a").state != BreakerState.CLOSED and book.admits("a"):
                admitted += 1
                book.record("a", True, 0.01)
        t += 0.2
        await book.sync(fast, t)
        states.append(book.view("a").state)
        if states[-1] == BreakerState.CLOSED:
            break
    assert states[-1] == BreakerState.CLOSED, states
    assert BreakerState.HALF_OPEN in states
    assert states.index(BreakerState.HALF_OPEN) * 0.2 >= FAST_BREAKER.cool_down_s - 0.2
    assert admitted == FAST_BREAKER.probes
    # Closed, it judges afresh: the failures that opened it do not reopen it.
    book.record("a", False, 0.01)
    await book.sync(fast, t + 0.2)
    assert book.view("a").state == BreakerState.CLOSED


async def test_failed_probe_reopens(fast: HealthStore) -> None:
    book = HealthBook(["a"], FAST_BREAKER)
    t = 1_000.0
    _fail(book, "a", 5)
    await book.sync(fast, t)
    while not book.admits("a"):
        t += 0.2
        await book.sync(fast, t)
        assert t < 1_005
    assert book.view("a").state == BreakerState.HALF_OPEN
    book.record("a", False, 0.01)
    await book.sync(fast, t + 0.2)
    assert book.view("a").state == BreakerState.OPEN and not book.admits("a")


async def test_failures_while_open_do_not_reopen_after_recovery(fast: HealthStore) -> None:
    """Calls the router still makes to an open rail (the sweeper's queries) keep failing
    until it recovers; once the probes close the breaker those are history."""
    book = HealthBook(["a"], FAST_BREAKER)
    t = 1_000.0
    _fail(book, "a", 5)
    await book.sync(fast, t)
    while book.view("a").state == BreakerState.OPEN:
        _fail(book, "a", 3)  # the sweeper, still failing
        t += 0.2
        await book.sync(fast, t)
    for _ in range(15):
        if book.admits("a"):
            book.record("a", True, 0.01)
        t += 0.2
        await book.sync(fast, t)
        if book.view("a").state == BreakerState.CLOSED:
            break
    assert book.view("a").state == BreakerState.CLOSED
    for _ in range(5):  # it stays closed while it works
        book.record("a", True, 0.01)
        t += 0.2
        await book.sync(fast, t)
        assert book.view("a").state == BreakerState.CLOSED


async def test_latency_breaker_opens_and_recovers(fast: HealthStore) -> None:
    """p99 above the limit opens (over min_calls only); once the rail is fast again the
    slow calls age out of the window and the breaker closes and stays closed. Real
    time: latencies age by the clock."""
    breaker = BreakerSettings(window_s=1, min_calls=5, error_rate=0.5, latency_ms=100,
                              cool_down_s=0.5, probes=2)
    book = HealthBook(["a"], breaker)
    for _ in range(4):
        book.record("a", True, 0.5)
    await book.sync(fast)
    assert book.view("a").state == BreakerState.CLOSED  # slow, but only 4 calls
    book.record("a", True, 0.5)
    await book.sync(fast)
    assert book.view("a").state == BreakerState.OPEN and book.view("a").p99_ms == 500.0

    async def closed_for_good() -> bool:
        if book.admits("a"):
            book.record("a", True, 0.005)
        await book.sync(fast)
        return book.view("a").state == BreakerState.CLOSED and (book.view("a").p99_ms or 0) < 100

    await eventually(closed_for_good, timeout=6, interval=0.1)
    for _ in range(8):
        book.record("a", True, 0.005)
        await book.sync(fast)
        assert book.view("a").state == BreakerState.CLOSED
        time.sleep(0.05)  # noqa: ASYNC251 - spreading calls over real seconds


# --------------------------------------------------------------------------- router
def test_a_rule_naming_an_unconfigured_rail_is_refused() -> None:
    with pytest.raises(SettingsError, match="nope"):
        _router("x", "y", rules=(RuleSettings(name="typo", candidates=("x", "nope")),))


def _router(*names: str, rules: tuple[RuleSettings, ...] = (),
            breaker: BreakerSettings = FAST_BREAKER) -> Router:
    rails = tuple(RailSettings(name=n, options={"adapter": "instant"}) for n in names)
    adapters = registry.load(AdapterConfig(name=r.name, base_url="", keys_dir=None,
                                           options=r.options) for r in rails)
    return Router(adapters, rails, RoutingSettings(rules=rules, breaker=breaker), None,
                  HealthBook(adapters, breaker), rng=random.Random(3))


async def test_open_rails_are_passed_over(fast: HealthStore) -> None:
    rule = RuleSettings(name="p", candidates=("x", "y", "z"))
    router = _router("x", "y", "z", rules=(rule,))
    chosen, routing = router.choose(MERCHANT, req())
    assert chosen == "x" and routing["candidates"] == ["x", "y", "z"]
    _fail(router.health, "x", 5)
    await router.health.sync(fast, 1_000.0)
    chosen, routing = router.choose(MERCHANT, req())
    assert chosen == "y" and routing["candidates"] == ["y", "z"]  # x not even for failover
    assert "x passed over (breaker)" in routing["reason"]
    assert {d["rail"]: d["breaker"] for d in routing["considered"]} == {
        "x": "open", "y": "closed", "z": "closed"}
    for rail in ("y", "z"):
        _fail(router.health, rail, 5)
    await router.health.sync(fast, 1_000.2)
    chosen, routing = router.choose(MERCHANT, req())
    assert chosen == "x" and "every candidate's breaker is open" in routing["reason"]


def test_no_matching_rule_or_no_rail_in_pool() -> None:
    rules = (RuleSettings(name="usd", candidates=("y",), match={"currency": "USD"}),
             RuleSettings(name="other-scene", candidates=("y",), match={"scene": "h5"}))
    router = _router("x", "y", rules=rules)
    chosen, routing = router.choose(MERCHANT, req())
    assert "rule" not in routing and routing["strategy"] == "priority"
    assert routing["reason"] == "default order of rails taking the scene"
    assert chosen == "x" and routing["candidates"] == ["x", "y"]
    with pytest.raises(RouterError) as raised:
        router.choose(MERCHANT, req(method="bank"))
    assert raised.value.param == "method"
