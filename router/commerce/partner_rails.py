"""Builds the partner-mode adapter an instance name stands for (rails/instances.py): the
provider's rail table, with the partner ids of the sub-merchant added to its options.

A name is only built when it still stands for something: the rail table is configured,
the provider maps a method to it, and the provider serves the sub-merchant with ids for
that method. Anything else (a name posted to `/v1/notify/...` by anyone) builds nothing.
"""

from __future__ import annotations

import logging
from typing import final

from adapters import registry
from adapters.base import Adapter, AdapterConfig
from router.commerce.providers import Providers, is_provider
from router.merchants import MerchantDirectory
from router.rails.instances import parts
from router.routing.router import adapter_kind
from router.settings import RailSettings, Settings

log = logging.getLogger("payrouter.partners")


@final
class PartnerRails:
    __slots__ = ("_factories", "_tables", "merchants", "providers")

    def __init__(self, providers: Providers, merchants: MerchantDirectory,
                 settings: Settings) -> None:
        self.providers = providers
        self.merchants = merchants
        self._tables: dict[str, RailSettings] = {r.name: r for r in settings.rails}
        self._factories: dict[str, registry.AdapterFactory] | None = None

    async def build(self, name: str) -> Adapter | None:
        found = parts(name)
        table = self._tables.get(found[0]) if found else None
        if found is None or table is None:
            return None
        base, provider_id, merchant_id = found
        provider = await self.merchants.get(provider_id)
        if provider is None or not is_provider(provider):
            return None
        method = next((m for m, rail in provider.rails.items() if rail == base), None)
        ids = await self.providers.partner_ids(provider_id, merchant_id)
        options = ids.options(method) if ids is not None and method is not None else None
        if options is None:
            return None
        if self._factories is None:
            self._factories = registry.available()
        factory = self._factories.get(adapter_kind(table))
        if factory is None:
            return None
        config = AdapterConfig(name=name, base_url=table.base_url, keys_dir=table.keys_dir,
                               options={**table.options, **options})
        try:
            return factory(config)
        except (ValueError, OSError) as exc:
            # A table that cannot run in partner mode: a configuration error, not a
            # caller's (the factories' messages name options, never their values).
            log.error("rail %s cannot act for %s in partner mode: %s", base, merchant_id, exc)
            return None
