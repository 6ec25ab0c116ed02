"""Choosing a rail for a payment.

For now: the payment's `method` when given (it must name a loaded rail that takes the
scene), else the configured default, else the first loaded rail that takes the scene
(built-ins in the order bank, wechatpay, alipay, then others; `instant` last). The
routing engine of rules, weights, health and failover grows from here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, final

from adapters.base import Adapter
from router.errors import validation_error
from router.validation import PaymentRequest

_PREFERENCE: Final = ("bank", "wechatpay", "alipay")


@final
class Router:
    __slots__ = ("_adapters", "_default")

    def __init__(self, adapters: Mapping[str, Adapter], default: str | None) -> None:
        self._adapters = adapters
        self._default = default

    def candidates(self, scene: str) -> list[str]:
        names = [n for n in self._adapters if scene in self._adapters[n].scenes]
        return sorted(names, key=lambda n: (n == "instant", _rank(n), n))

    def choose(self, req: PaymentRequest) -> tuple[str, dict[str, Any]]:
        if req.method is not None:
            adapter = self._adapters.get(req.method)
            if adapter is None:
                raise validation_error(
                    "method", f"Unknown method {req.method!r}; installed: "
                    f"{', '.join(sorted(self._adapters))}.")
            if req.scene not in adapter.scenes:
                raise validation_error(
                    "scene", f"The {req.method} rail does not take scene {req.scene!r}.")
            return req.method, {"chosen": req.method, "candidates": [req.method],
                                "reason": "method named by the request"}
        candidates = self.candidates(req.scene)
        if not candidates:
            raise validation_error("scene", f"No installed rail takes scene {req.scene!r}.")
        if self._default in candidates:
            chosen, reason = self._default, "configured default method"
        else:
            chosen, reason = candidates[0], "first rail that takes the scene"
        assert chosen is not None
        return chosen, {"chosen": chosen, "candidates": candidates, "reason": reason}


def _rank(name: str) -> int:
    return _PREFERENCE.index(name) if name in _PREFERENCE else len(_PREFERENCE)
