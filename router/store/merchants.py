"""Merchant records and API-key entries in Redis (hashes keyed by merchant id, strings
keyed by the key's hash), and the generated API-key pepper."""

from __future__ import annotations

from typing import final

from router.store import keys
from router.store.runner import Runner


@final
class MerchantStore:
    __slots__ = ("_run",)

    def __init__(self, runner: Runner) -> None:
        self._run = runner

    async def create(self, merchant_id: str, fields: list[str], key_hash: str) -> None:
        # Two keys in different slots, so two commands: the record first, then the key
        # that finds it. A crash in between leaves a merchant no key can reach yet.
        record = keys.merchant(merchant_id)
        await self._run.write(record, "HSET", record, *fields)
        entry = keys.api_key(key_hash)
        await self._run.write(entry, "SET", entry, merchant_id)

    async def update(self, merchant_id: str, fields: list[str]) -> None:
        record = keys.merchant(merchant_id)
        await self._run.write(record, "HSET", record, *fields)

    async def record(self, merchant_id: str) -> dict[bytes, bytes]:
        """The stored fields ({} for an unknown merchant)."""
        return await self._run.hash(keys.merchant(merchant_id))

    async def key_hash(self, merchant_id: str) -> str | None:
        raw = await self._run.read("HGET", keys.merchant(merchant_id), "key_hash")
        return bytes(raw).decode() if raw is not None else None

    async def merchant_of(self, key_hash: str) -> str | None:
        raw = await self._run.read("GET", keys.api_key(key_hash))
        return bytes(raw).decode() if raw is not None else None

    async def pepper(self, candidate: str) -> bytes:
        """The pepper kept in Redis: `candidate` if none was kept yet (first start)."""
        await self._run.write(keys.PEPPER, "SET", keys.PEPPER, candidate, "NX")
        value = await self._run.read("GET", keys.PEPPER)
        assert value is not None
        return bytes(value)
