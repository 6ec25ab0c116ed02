"""Kept routing decisions: the same answer, byte for byte, as a fresh one; never kept when
anything outside the key could change it; dropped when a breaker or the rules change."""

from __future__ import annotations

import os
import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from adapters import registry
from adapters.base import AdapterConfig
from router.api.schemas import PaymentCreate, convert
from router.merchants import Merchant
from router.routing import HealthBook, Router
from router.routing.health import BreakerState
from router.security import Secret
from router.settings import BreakerSettings, RailSettings, RoutingSettings, RuleSettings
from router.store.health import HealthStore
from router.store.link import open_link
from router.store.store import Store
from router.validation import PaymentRequest, payment_request

MERCHANT = Merchant(id="mch_1", name="Shop", shard=0, webhook_secret=Secret("whsec"))
RAILS = (RailSettings(name="instant"), RailSettings(name="spare", options={"adapter": "instant"}))
BREAKER = BreakerSettings(window_s=2, min_calls=5, error_rate=0.5, cool_down_s=1.5, probes=2)


def req(amount: int = 1000, *, method: str | None = "instant",
        payer: dict[str, str] | None = None) -> PaymentRequest:
    body: dict[str, Any] = {"amount": amount, "currency": "CNY", "out_trade_no": "o1",
                            "scene": "quickpay", "description": "Coffee",
                            "payer": payer or {"auth_code": "134567890123456781"}}
    if method:
        body["method"] = method
    return payment_request(convert(body, PaymentCreate))


def make(rules: tuple[RuleSettings, ...] = (), rules_file: Path | None = None,
         health: HealthBook | None = None) -> tuple[Router, Router]:
    """A router, and an identical one whose every decision is fresh (its kept ones are
    dropped before each use by `fresh`)."""
    adapters = registry.load(AdapterConfig(name=r.name, base_url="", keys_dir=None,
                                           options=r.options) for r in RAILS)
    settings = RoutingSettings(rules=rules, rules_file=rules_file)
    book = health or HealthBook(adapters, BreakerSettings())
    return (Router(adapters, RAILS, settings, None, book, random.Random(7)),
            Router(adapters, RAILS, settings, None, book, random.Random(7)))


def fresh(router: Router, merchant: Merchant, request_: PaymentRequest
          ) -> tuple[str, dict[str, Any]]:
    router._rules_changed()
    return router.choose(merchant, request_)


@pytest.fixture
async def health_store(redis_url: str) -> AsyncIterator[HealthStore]:
    store = Store(open_link(redis_url), shards=1, idem_ttl_s=60)
    yield store.health
    await store.aclose()


@pytest.mark.parametrize("request_", [req(), req(method=None), req(method="spare"),
                                      req(method=None, payer={"auth_code": "2845678901234567"})])
def test_a_kept_decision_is_the_fresh_one_byte_for_byte(request_: PaymentRequest) -> None:
    router, reference = make()
    first = router.choose(MERCHANT, request_)
    again = router.choose(MERCHANT, request_)
    assert len(router._decisions) == 1
    for answer in (first, again):
        assert orjson.dumps(answer) == orjson.dumps(fresh(reference, MERCHANT, request_))
    # Each caller gets its own copy: a payment that changed its routing changes no other.
    first[1]["considered"][0]["rank"] = 99
    first[1]["candidates"].append("x")
    assert orjson.dumps(router.choose(MERCHANT, request_)) == orjson.dumps(again)


def test_the_merchants_rails_are_part_of_the_key() -> None:
    router, reference = make()
    mapped = Merchant(id="mch_1", name="Shop", shard=0, webhook_secret=Secret("whsec"),
                      rails={"instant": "spare"})
    router.choose(MERCHANT, req())
    assert router.choose(mapped, req()) == fresh(reference, mapped, req())
    assert router.choose(mapped, req())[0] == "spare"


def test_a_rule_on_the_amount_is_never_answered_from_a_kept_decision() -> None:
    rule = RuleSettings(name="big", candidates=("instant",), match={"amount_min": 10_000})
    router, _ = make((rule,))
    for _ in range(2):
        assert router.choose(MERCHANT, req(100))[0] == "spare"  # instant goes last
        assert router.choose(MERCHANT, req(50_000))[0] == "instant"
    assert not router._decisions


def test_a_drawn_order_is_not_kept() -> None:
    rule = RuleSettings(name="split", candidates=("instant", "spare"), strategy="weighted",
                        weights={"instant": 1, "spare": 1})
    router, _ = make((rule,))
    firsts = {router.choose(MERCHANT, req())[0] for _ in range(50)}
    assert firsts == {"instant", "spare"}
    assert not router._decisions


def test_a_priority_rule_on_key_fields_is_kept() -> None:
    rule = RuleSettings(name="wechat", candidates=("spare", "instant"),
                        match={"merchant": "mch_1", "wallet": "wechat"})
    router, reference = make((rule,))
    wechat, other = req(), req(payer={"auth_code": "164567890123456781"})
    for _ in range(2):
        assert router.choose(MERCHANT, wechat) == fresh(reference, MERCHANT, wechat)
        assert router.choose(MERCHANT, other) == fresh(reference, MERCHANT, other)
    assert router.choose(MERCHANT, wechat)[1]["rule"] == "wechat"
    assert "rule" not in router.choose(MERCHANT, other)[1]
    assert len(router._decisions) == 2


async def test_a_breaker_change_drops_kept_decisions(health_store: HealthStore) -> None:
    book = HealthBook([r.name for r in RAILS], BREAKER)
    router, _ = make(health=book)
    assert router.choose(MERCHANT, req())[0] == "spare"
    for _ in range(5):
        book.record("spare", False, 0.01)
    await book.sync(health_store, 1_000.0)
    assert book.view("spare").state is BreakerState.OPEN
    chosen, routing = router.choose(MERCHANT, req())
    assert chosen == "instant" and "passed over" in routing["reason"]
    assert routing["considered"][0]["breaker"] == "open"
    # Half-open: each choice may spend a probe, so none is kept.
    await book.sync(health_store, 1_002.0)
    await book.sync(health_store, 1_003.0)
    assert book.view("spare").state is BreakerState.HALF_OPEN
    picks = [router.choose(MERCHANT, req())[0] for _ in range(4)]
    assert picks == ["spare", "spare", "instant", "instant"]  # two probes, then elsewhere
    assert not router._decisions


def test_a_rules_file_reload_drops_kept_decisions(tmp_path: Path) -> None:
    path = tmp_path / "routing.toml"
    path.write_text("")
    router, _ = make(rules_file=path)
    assert router.choose(MERCHANT, req(method=None))[0] == "spare"  # default order
    path.write_text('[[rules]]\nname = "first"\ncandidates = ["instant"]\n')
    stat = path.stat()
    os.utime(path, (stat.st_atime, stat.st_mtime + 5))
    assert router.reload_rules()
    chosen, routing = router.choose(MERCHANT, req(method=None))
    assert chosen == "instant" and routing["rule"] == "first"
