"""Choosing the rails for a payment, in order, with the reasons.

1. The pool: every configured rail that takes the payment's scene. A rail configured
   `dedicated` is only in the pool of merchants whose `rails` setting maps a method to
   it, and a merchant's mapped rail stands in for the other rails of its adapter.
2. A `method` on the payment keeps the rails of that name or adapter.
3. The first routing rule that matches (rules.py) and names a rail of the pool keeps its
   candidates and orders them by its strategy (strategies.py). With no rule: the
   configured default method first, then bank, wechatpay, alipay, others, instant last.
4. Circuit breakers (health.py): an open rail is passed over while another remains; a
   half-open one receives its probe calls.

The first rail is tried; the others are the failover candidates, in order.

A decision that depends only on the merchant, scene, method, payer's wallet and breaker
states (no rule on amount, currency or metadata; a priority order; no half-open rail) is
the same for every such payment: it is kept, and dropped when a breaker or the rules
change.
"""

from __future__ import annotations

import logging
import random
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final, final

from adapters.base import Adapter
from router.config_file import parse_rules
from router.errors import validation_error
from router.merchants import Merchant
from router.routing import strategies
from router.routing.health import BreakerState, HealthBook
from router.routing.rules import check_rule, matches
from router.routing.wallet import WALLET_RAILS, wallet_of_payer
from router.settings import RailSettings, RoutingSettings, RuleSettings, SettingsError
from router.validation import PaymentRequest

log = logging.getLogger("payrouter.routing")

_PREFERENCE: Final = ("bank", "wechatpay", "alipay")
# The match keys a kept decision may depend on (its key holds them).
_KEYED_MATCH: Final = frozenset({"merchant", "scene", "method", "wallet"})
_DECISIONS_KEPT: Final = 4096

# merchant id, acting provider, its rails, scene, method, payer's wallet
DecisionKey = tuple[str, str | None, tuple[tuple[str, str], ...], str, str | None, str | None]


def adapter_kind(rail: RailSettings) -> str:
    """The adapter a configured rail runs (`adapter = "..."`, else the rail's own name)."""
    return str(rail.options.get("adapter", rail.name))


@final
class Router:
    __slots__ = ("_adapters", "_decisions", "_dedicated", "_default", "_epoch", "_file_rules",
                 "_keyed", "_kinds", "_rng", "_rules_mtime", "_wallet_rules", "health",
                 "settings")

    def __init__(self, adapters: Mapping[str, Adapter], rails: Sequence[RailSettings],
                 settings: RoutingSettings, default: str | None, health: HealthBook,
                 rng: random.Random | None = None) -> None:
        self._adapters = adapters
        self._default = default
        self._kinds = {r.name: adapter_kind(r) for r in rails}
        self._dedicated = frozenset(r.name for r in rails if r.options.get("dedicated"))
        self.settings = settings
        self.health = health
        self._rng = rng or random.Random()
        self._file_rules: tuple[RuleSettings, ...] = ()
        self._rules_mtime: float | None = None
        self._decisions: dict[DecisionKey, tuple[str, dict[str, Any]]] = {}
        self._epoch = health.epoch
        for rule in settings.rules:
            check_rule(rule)
            self._check_candidates(rule)
        self._rules_changed()
        self.reload_rules()

    # ----------------------------------------------------------------- rules
    @property
    def rules(self) -> tuple[RuleSettings, ...]:
        return self.settings.rules + self._file_rules

    def reload_rules(self) -> bool:
        """Re-read the rules file when it changed; a broken file keeps the rules in force."""
        path = self.settings.rules_file
        if path is None:
            return False
        try:
            mtime = path.stat().st_mtime
        except OSError:
            log.error("routing rules file %s cannot be read; keeping current rules", path)
            return False
        if mtime == self._rules_mtime:
            return False
        try:
            rules = _load_rules(path)
            for rule in rules:
                self._check_candidates(rule)
        except SettingsError as exc:
            log.error("routing rules file %s rejected (%s); keeping current rules", path, exc)
            self._rules_mtime = mtime
            return False
        self._file_rules, self._rules_mtime = rules, mtime
        self._rules_changed()
        log.info("routing rules loaded from %s: %d rule(s)", path, len(rules))
        return True

    def _rules_changed(self) -> None:
        """Decisions kept under other rules no longer hold."""
        self._decisions.clear()
        self._keyed = all(set(r.match) <= _KEYED_MATCH for r in self.rules)
        self._wallet_rules = any("wallet" in r.match for r in self.rules)

    def _check_candidates(self, rule: RuleSettings) -> None:
        """A rule may only name configured rails: a typo would silently never route."""
        unknown = [c for c in rule.candidates if c not in self._adapters]
        if unknown:
            raise SettingsError(f"routing rule {rule.name!r} names rails that are not "
                                f"configured: {', '.join(unknown)}")

    def rail_for(self, merchant: Merchant, kind: str, scene: str) -> str | None:
        """The merchant's rail of adapter `kind` that takes `scene`, breaker permitting."""
        rails = [r for r in self._pool(merchant, scene) if self._kind(r) == kind]
        return next((r for r in rails if self.health.view(r).state is not BreakerState.OPEN),
                    rails[0] if rails else None)

    def kind(self, rail: str) -> str:
        """The adapter a rail runs: what a payment's `method` says when it named none."""
        return self._kind(rail)

    # ----------------------------------------------------------------- merchants
    def check_mapping(self, method: str, rail: str) -> None:
        """A merchant may map `method` only onto a loaded rail running that adapter."""
        if rail not in self._adapters:
            raise validation_error(f"rails.{method}", f"No rail named {rail!r} is configured.")
        if self._kind(rail) != method:
            raise validation_error(
                f"rails.{method}",
                f"Rail {rail!r} runs the {self._kind(rail)} adapter, not {method}.")

    # ----------------------------------------------------------------- choosing
    def choose(self, merchant: Merchant, req: PaymentRequest) -> tuple[str, dict[str, Any]]:
        """The rail to try and the routing explanation; a kept decision when one holds
        (module docstring), so most payments skip the pool, rules and sorting."""
        if not self._keyed:
            return self._choose(merchant, req)
        if self.health.epoch != self._epoch:
            self._decisions.clear()
            self._epoch = self.health.epoch
        wallet = (wallet_of_payer(req.payer) if req.method is None or self._wallet_rules
                  else None)
        key = (merchant.id, merchant.acting_provider, tuple(merchant.rails.items()),
               req.scene, req.method, wallet)
        kept = self._decisions.get(key)
        if kept is None:
            chosen, routing = self._choose(merchant, req)
            if routing["strategy"] != "priority" or any(
                    item["breaker"] is BreakerState.HALF_OPEN for item in routing["considered"]):
                return chosen, routing  # drawn, scored, or spending a probe: not kept
            if len(self._decisions) >= _DECISIONS_KEPT:
                self._decisions.clear()
            kept = self._decisions[key] = (chosen, routing)
        return kept[0], _copy(kept[1])

    def _choose(self, merchant: Merchant, req: PaymentRequest) -> tuple[str, dict[str, Any]]:
        pool = self._pool(merchant, req.scene)
        if req.method is not None:
            pool = self._for_method(merchant, req, pool)
        if not pool:
            raise validation_error("scene", f"No installed rail takes scene {req.scene!r}.")
        rule = next((r for r in self.rules
                     if matches(r, merchant.id, req) and self._in_pool(r, merchant, pool)), None)
        if rule is not None:
            rails = [self._resolve(c, merchant) for c in rule.candidates]
            rails = list(dict.fromkeys(r for r in rails if r in pool))
            ordered, detail = strategies.order(rule, rails, req.amount, self.health,
                                               self.settings.fees, self._rng)
            reason = f"rule {rule.name!r}, strategy {rule.strategy}"
        else:
            wallet = wallet_of_payer(req.payer) if req.method is None else None
            ordered = self._default_order(merchant, pool, wallet)
            detail = [{"rail": r, "rank": i + 1} for i, r in enumerate(ordered)]
            if req.method is not None:
                reason = "method named by the request"
            elif wallet is not None and self._kind(ordered[0]) == WALLET_RAILS.get(wallet):
                reason = f"the payer's wallet ({wallet}) first"
            else:
                reason = "default order of rails taking the scene"
        chosen, order, breaker_note = self._admit(ordered)
        for item in detail:
            item["breaker"] = self.health.view(item["rail"]).state
        routing: dict[str, Any] = {
            "chosen": chosen,
            "candidates": order,
            "reason": reason + breaker_note,
            "strategy": rule.strategy if rule else "priority",
            "considered": detail,
        }
        if rule is not None:
            routing["rule"] = rule.name
        return chosen, routing

    def _admit(self, ordered: list[str]) -> tuple[str, list[str], str]:
        """The first rail its breaker admits; failover candidates skip open rails."""
        chosen = next((r for r in ordered if self.health.admits(r)), None)
        note = ""
        if chosen is None:
            chosen, note = ordered[0], "; every candidate's breaker is open, trying anyway"
        elif chosen != ordered[0]:
            note = f"; {', '.join(ordered[:ordered.index(chosen)])} passed over (breaker)"
        rest = [r for r in ordered
                if r != chosen and self.health.view(r).state is not BreakerState.OPEN]
        return chosen, [chosen, *rest], note

    def _pool(self, merchant: Merchant, scene: str) -> list[str]:
        mapped = {self._kind(rail): rail for rail in merchant.rails.values()
                  if rail in self._adapters}
        names = [mapped.get(self._kind(n), n) for n in self._adapters
                 if n not in self._dedicated]
        names += mapped.values()
        if merchant.acting_provider is not None:
            # A service provider acting for a sub-merchant pays only through its own rails.
            names = [r for r in merchant.rails.values() if r in self._adapters]
        return [n for n in dict.fromkeys(names) if scene in self._adapters[n].scenes]

    def _for_method(self, merchant: Merchant, req: PaymentRequest, pool: list[str]) -> list[str]:
        method = req.method or ""
        target = merchant.rails.get(method, method)
        kept = [r for r in pool if r == target or self._kind(r) == method]
        if kept:
            return kept
        if merchant.acting_provider is not None and method not in merchant.rails:
            raise validation_error("method", "A service provider pays only by the methods of "
                                             f"its rails: {', '.join(sorted(merchant.rails))}.")
        if target in self._adapters and (target not in self._dedicated
                                         or target in merchant.rails.values()):
            raise validation_error(
                "scene", f"The {method} rail does not take scene {req.scene!r}.")
        installed = sorted({self._kind(n) for n in self._adapters})
        raise validation_error(
            "method", f"Unknown method {method!r}; installed: {', '.join(installed)}.")

    def _default_order(self, merchant: Merchant, pool: list[str],
                       wallet: str | None) -> list[str]:
        """The payer's own wallet's rail first (a WeChat payer code, an openid, a mini
        program inside Alipay...), then the configured default, then the usual order."""
        default = merchant.rails.get(self._default or "", self._default)
        home = WALLET_RAILS.get(wallet or "")
        return sorted(pool, key=lambda n: (
            self._kind(n) != home, n != default, n == "instant", _rank(self._kind(n)), n))

    def _in_pool(self, rule: RuleSettings, merchant: Merchant, pool: list[str]) -> bool:
        return any(self._resolve(c, merchant) in pool for c in rule.candidates)

    def _resolve(self, rail: str, merchant: Merchant) -> str:
        """A rule names rails; the merchant's own rail stands in for its adapter's rails."""
        return merchant.rails.get(self._kind(rail), rail)

    def _kind(self, rail: str) -> str:
        return self._kinds.get(rail, rail)


def _copy(routing: dict[str, Any]) -> dict[str, Any]:
    """The caller's own copy of a kept decision: a payment keeps its routing."""
    return {**routing, "candidates": list(routing["candidates"]),
            "considered": [dict(item) for item in routing["considered"]]}


def _rank(kind: str) -> int:
    return _PREFERENCE.index(kind) if kind in _PREFERENCE else len(_PREFERENCE)


def _load_rules(path: Path) -> tuple[RuleSettings, ...]:
    try:
        raw = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SettingsError(str(exc)) from exc
    rules = parse_rules(raw.get("rules", []))
    for rule in rules:
        check_rule(rule)
    return rules
