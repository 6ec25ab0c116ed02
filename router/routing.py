"""Choosing a rail for a payment.

For now: the payment's `method` when given, else the configured default, else the first
rail that takes the scene (built-ins in the order bank, wechatpay, alipay, then others;
`instant` last). A merchant may map a method to a rail of its own — a service provider's
sub-merchant rail, say — through its `rails` setting; a rail configured `dedicated` is
reachable only through such a mapping, so no other merchant can charge through it. The
routing engine of rules, weights, health and failover grows from here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final, final

from adapters.base import Adapter
from router.errors import validation_error
from router.merchants import Merchant
from router.settings import RailSettings
from router.validation import PaymentRequest

_PREFERENCE: Final = ("bank", "wechatpay", "alipay")


def adapter_kind(rail: RailSettings) -> str:
    """The adapter a configured rail runs (`adapter = "..."`, else the rail's own name)."""
    return str(rail.options.get("adapter", rail.name))


@final
class Router:
    __slots__ = ("_adapters", "_dedicated", "_default", "_kinds")

    def __init__(self, adapters: Mapping[str, Adapter], rails: Sequence[RailSettings],
                 default: str | None) -> None:
        self._adapters = adapters
        self._default = default
        self._kinds = {r.name: adapter_kind(r) for r in rails}
        self._dedicated = frozenset(r.name for r in rails if r.options.get("dedicated"))

    def check_mapping(self, method: str, rail: str) -> None:
        """A merchant may map `method` only onto a loaded rail running that adapter."""
        if rail not in self._adapters:
            raise validation_error(f"rails.{method}", f"No rail named {rail!r} is configured.")
        if self._kinds.get(rail, rail) != method:
            raise validation_error(
                f"rails.{method}",
                f"Rail {rail!r} runs the {self._kinds.get(rail, rail)} adapter, not {method}.")

    def candidates(self, merchant: Merchant, scene: str) -> list[str]:
        public = [n for n in self._adapters if n not in self._dedicated]
        mapped: dict[str, str] = {self._kind(n): n for n in merchant.rails.values()}
        names = [mapped.get(self._kind(n), n) for n in public]
        usable = [n for n in dict.fromkeys(names) if scene in self._adapters[n].scenes]
        return sorted(usable, key=lambda n: (n == "instant", _rank(self._kind(n)), n))

    def _kind(self, rail: str) -> str:
        return self._kinds.get(rail, rail)

    def choose(self, merchant: Merchant, req: PaymentRequest) -> tuple[str, dict[str, Any]]:
        if req.method is not None:
            rail = merchant.rails.get(req.method, req.method)
            adapter = self._adapters.get(rail)
            if adapter is None or (rail in self._dedicated and rail == req.method):
                installed = sorted({self._kinds.get(n, n) for n in self._adapters})
                raise validation_error(
                    "method", f"Unknown method {req.method!r}; installed: {', '.join(installed)}.")
            if req.scene not in adapter.scenes:
                raise validation_error(
                    "scene", f"The {req.method} rail does not take scene {req.scene!r}.")
            reason = ("method named by the request" if rail == req.method
                      else f"method named by the request, mapped to the merchant's rail {rail}")
            return rail, {"chosen": rail, "candidates": [rail], "reason": reason}
        candidates = self.candidates(merchant, req.scene)
        if not candidates:
            raise validation_error("scene", f"No installed rail takes scene {req.scene!r}.")
        default = merchant.rails.get(self._default or "", self._default)
        if default in candidates:
            chosen, reason = default, "configured default method"
        else:
            chosen, reason = candidates[0], "first rail that takes the scene"
        assert chosen is not None
        return chosen, {"chosen": chosen, "candidates": candidates, "reason": reason}


def _rank(kind: str) -> int:
    return _PREFERENCE.index(kind) if kind in _PREFERENCE else len(_PREFERENCE)
