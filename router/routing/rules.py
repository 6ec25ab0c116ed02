"""Routing rules: the first rule whose `match` holds gives the candidate rails.

`match` keys, all optional (a list means "any of"): `merchant`, `scene`, `method`
(`"none"` for a payment that names none), `currency`, `amount_min`, `amount_max`
(minor units, inclusive), `wallet` (see wallet.py), `metadata` (a table of exact
values).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from router.routing.wallet import wallet_of_payer
from router.settings import RuleSettings, SettingsError
from router.validation import WALLETS, PaymentRequest

MATCH_KEYS = frozenset({"merchant", "scene", "method", "currency", "amount_min",
                        "amount_max", "wallet", "metadata"})


def check_rule(rule: RuleSettings) -> None:
    """Reject a rule that could not be matched, at load time rather than on payments."""
    unknown = set(rule.match) - MATCH_KEYS
    if unknown:
        raise SettingsError(f"routing rule {rule.name!r}: unknown match key(s) "
                            f"{sorted(unknown)}; known: {sorted(MATCH_KEYS)}")
    for key, value in rule.match.items():
        if key in ("amount_min", "amount_max"):
            ok = type(value) is int and value >= 0
            want = "an integer >= 0 (minor units)"
        elif key == "metadata":
            ok = isinstance(value, dict) and all(isinstance(v, str) for v in value.values())
            want = "a table of strings"
        else:
            values = value if isinstance(value, list) else [value]
            ok = bool(values) and all(isinstance(v, str) for v in values)
            want = "a string or a list of strings"
            if ok and key == "wallet" and not set(values) <= {*WALLETS, "unknown"}:
                ok, want = False, f"one or more of {[*WALLETS, 'unknown']}"
        if not ok:
            raise SettingsError(f"routing rule {rule.name!r}: match.{key} must be {want}")


def matches(rule: RuleSettings, merchant_id: str, req: PaymentRequest) -> bool:
    m = rule.match
    wallet = wallet_of_payer(req.payer) if "wallet" in m else None
    return (
        _any(m.get("merchant"), merchant_id)
        and _any(m.get("scene"), req.scene)
        and _any(m.get("method"), req.method or "none")
        and _any(m.get("currency"), req.currency)
        and req.amount >= int(m.get("amount_min", 0))
        and req.amount <= int(m.get("amount_max", req.amount))
        and _any(m.get("wallet"), wallet or "unknown")
        and _metadata(m.get("metadata"), req.metadata)
    )


def _any(expected: Any, actual: str) -> bool:
    if expected is None:
        return True
    if isinstance(expected, list):
        return actual in expected
    return bool(actual == expected)


def _metadata(expected: Any, actual: Mapping[str, str]) -> bool:
    if not expected:
        return True
    return all(actual.get(k) == v for k, v in dict(expected).items())
