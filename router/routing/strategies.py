"""Ordering a rule's candidate rails: priority, weighted split, success rate, cost."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from typing import Any

from router.routing.health import HealthBook
from router.settings import RuleSettings

Ordered = tuple[list[str], list[dict[str, Any]]]  # rails in order, and why (per rail)


def order(rule: RuleSettings, rails: list[str], amount: int, health: HealthBook,
          fees: Mapping[str, tuple[float, int]], rng: random.Random) -> Ordered:
    strategy = _STRATEGIES[rule.strategy]
    return strategy(rule, rails, amount, health, fees, rng)


def _priority(rule: RuleSettings, rails: list[str], amount: int, health: HealthBook,
              fees: Mapping[str, tuple[float, int]], rng: random.Random) -> Ordered:
    return rails, [{"rail": r, "rank": i + 1} for i, r in enumerate(rails)]


def _weighted(rule: RuleSettings, rails: list[str], amount: int, health: HealthBook,
              fees: Mapping[str, tuple[float, int]], rng: random.Random) -> Ordered:
    """A weighted draw without replacement: the first rail gets each share of traffic in
    proportion to its weight; the rest follow as failover candidates."""
    weights = {r: rule.weights.get(r, 1.0) for r in rails}
    remaining = [r for r in rails if weights[r] > 0]
    ordered: list[str] = []
    while remaining:
        pick = rng.choices(remaining, weights=[weights[r] for r in remaining])[0]
        ordered.append(pick)
        remaining.remove(pick)
    ordered += [r for r in rails if r not in ordered]  # weight 0: only as a last resort
    total = sum(weights.values()) or 1.0
    return ordered, [{"rail": r, "weight": weights[r], "share": round(weights[r] / total, 4)}
                     for r in rails]


def _success_rate(rule: RuleSettings, rails: list[str], amount: int, health: HealthBook,
                  fees: Mapping[str, tuple[float, int]], rng: random.Random) -> Ordered:
    """Best measured success rate first; a rail with no calls in the window counts as
    healthy (so it gets traffic and a measurement)."""
    def score(rail: str) -> float:
        rate = health.view(rail).success_rate
        return 1.0 if rate is None else rate

    ordered = sorted(rails, key=lambda r: -score(r))  # stable: ties keep rule order
    return ordered, [{"rail": r, "success_rate": health.view(r).success_rate, "score": score(r)}
                     for r in rails]


def _cost(rule: RuleSettings, rails: list[str], amount: int, health: HealthBook,
          fees: Mapping[str, tuple[float, int]], rng: random.Random) -> Ordered:
    """Cheapest fee for this amount first (fee = amount × percent / 100 + fixed)."""
    def fee(rail: str) -> float:
        percent, fixed = fees.get(rail, (0.0, 0))
        return amount * percent / 100 + fixed

    ordered = sorted(rails, key=fee)
    return ordered, [{"rail": r, "fee": round(fee(r), 2)} for r in rails]


_STRATEGIES: dict[str, Callable[..., Ordered]] = {
    "priority": _priority,
    "weighted": _weighted,
    "success_rate": _success_rate,
    "cost": _cost,
}
