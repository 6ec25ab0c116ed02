"""Service providers and sub-merchants in Redis. Both are merchant records (the key of a
provider is kept like a merchant's, by MerchantStore); this module adds what partner
mode needs: the extra fields of those records, a sub-merchant's creation (one script, so
two providers onboarding the same merchant cannot both create it), and each provider's
links to the sub-merchants it serves."""

from __future__ import annotations

from collections.abc import Mapping
from typing import final

from router.store import keys
from router.store.outcomes import RecordOutcome, record_outcome
from router.store.runner import Runner


@final
class ProviderStore:
    __slots__ = ("_run",)

    def __init__(self, runner: Runner) -> None:
        self._run = runner

    async def add_sub_merchant(self, merchant_id: str, fields: list[str]) -> RecordOutcome:
        """Write the record unless the id already names one (Existing: link to it)."""
        run = self._run
        reply = await run.script(run.scripts.sub_merchant_create, [keys.merchant(merchant_id)],
                                 fields)
        return record_outcome(reply)

    async def set_fields(self, record_id: str, fields: Mapping[str, str]) -> None:
        record = keys.merchant(record_id)
        await self._run.write(record, "HSET", record,
                              *(item for pair in fields.items() for item in pair))

    async def fields(self, record_id: str, *names: str) -> list[str | None]:
        """The named fields of a merchant record (None for a missing one)."""
        raw = await self._run.read("HMGET", keys.merchant(record_id), *names)
        return [bytes(v).decode() if v is not None else None for v in raw]

    async def link(self, provider_id: str, merchant_id: str, partner_ids: bytes) -> None:
        """The provider serves the merchant with these partner ids (JSON)."""
        key = keys.provider_subs(provider_id)
        await self._run.write(key, "HSET", key, merchant_id, partner_ids)

    async def partner_ids(self, provider_id: str, merchant_id: str) -> bytes | None:
        """The provider's partner ids for the merchant; None when it does not serve it."""
        raw = await self._run.read("HGET", keys.provider_subs(provider_id), merchant_id)
        return bytes(raw) if raw is not None else None
