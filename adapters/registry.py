"""Finds adapters through the `payrouter.adapters` entry-point group (built-ins too)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from importlib.metadata import entry_points
from typing import Final, cast

from adapters.base import Adapter, AdapterConfig

GROUP: Final = "payrouter.adapters"

AdapterFactory = Callable[[AdapterConfig], Adapter]


class AdapterNotFound(LookupError):
    pass


def available() -> dict[str, AdapterFactory]:
    """Every installed adapter factory by name."""
    return {ep.name: cast(AdapterFactory, ep.load()) for ep in entry_points(group=GROUP)}


def load(configs: Iterable[AdapterConfig]) -> dict[str, Adapter]:
    """One adapter per configured rail; a rail with no installed adapter is an error."""
    factories = available()
    adapters: dict[str, Adapter] = {}
    for config in configs:
        kind = str(config.options.get("adapter", config.name))
        factory = factories.get(kind)
        if factory is None:
            known = ", ".join(sorted(factories)) or "none"
            raise AdapterNotFound(f"no adapter {kind!r} installed (installed: {known})")
        adapters[config.name] = factory(config)
    return adapters
