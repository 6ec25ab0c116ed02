"""Merchants: records in Redis, API keys stored hashed, and a short in-process cache.

The cache keeps authentication off Redis on the hot path: a key's merchant is looked up
once and trusted for `ttl_s` seconds (changes made through this process apply at once;
other processes see them within `ttl_s`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, final

from router.security import Secret, hash_api_key, new_api_key, random_token
from router.settings import RateLimit
from router.store import keys
from router.store.merchants import MerchantStore


@final
@dataclass(frozen=True, slots=True)
class Merchant:
    id: str
    name: str
    shard: int
    webhook_secret: Secret
    webhook_url: str | None = None
    rate_limit: RateLimit | None = None  # None: the configured default
    payer_limit: RateLimit | None = None
    # method → the rail that serves it for this merchant (e.g. a sub-merchant rail)
    rails: Mapping[str, str] = field(default_factory=dict)
    # Cross-border: the currency the merchant prices in and is settled in (payers still
    # pay CNY through their wallets); None: a domestic merchant.
    settlement_currency: str | None = None
    # Never stored: set on the view of a sub-merchant its service provider acts for in
    # one request (commerce/providers.py), whose `rails` are then the provider's.
    acting_provider: str | None = None

    @property
    def scope(self) -> str:
        """Whose natural keys and Idempotency-Keys a call uses: each service provider
        acting for a merchant has its own, apart from the merchant's."""
        if self.acting_provider is None:
            return self.id
        return f"{self.id}~{self.acting_provider}"

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"id": self.id, "object": "merchant", "name": self.name}
        body["webhook_url"] = self.webhook_url
        body["rate_limit"] = _rate_json(self.rate_limit)
        body["payer_rate_limit"] = _rate_json(self.payer_limit)
        body["rails"] = dict(self.rails)
        body["settlement_currency"] = self.settlement_currency
        return body


def _rate_json(rate: RateLimit | None) -> dict[str, float | int] | None:
    return None if rate is None else {"rps": rate.rps, "burst": rate.burst}


def _encode(m: Merchant, key_hash: str) -> list[str]:
    """HSET arguments (field, value, ...) of a merchant record."""
    fields: dict[str, str] = {
        "name": m.name,
        "shard": str(m.shard),
        "webhook_secret": m.webhook_secret.reveal(),
        "webhook_url": m.webhook_url or "",
        "key_hash": key_hash,
        "rails": json.dumps(dict(m.rails), sort_keys=True),
        "settlement_currency": m.settlement_currency or "",
    }
    for prefix, rate in (("rl", m.rate_limit), ("pl", m.payer_limit)):
        fields[f"{prefix}_rps"] = "" if rate is None else repr(rate.rps)
        fields[f"{prefix}_burst"] = "" if rate is None else str(rate.burst)
    return [item for pair in fields.items() for item in pair]


def keyless_record(merchant: Merchant) -> list[str]:
    """HSET arguments of a merchant no API key reaches: a sub-merchant, for which only its
    service providers call."""
    return _encode(merchant, "")


def _decode(mid: str, raw: dict[bytes, bytes]) -> Merchant:
    f = {k.decode(): v.decode() for k, v in raw.items()}

    def rate(prefix: str) -> RateLimit | None:
        rps, burst = f.get(f"{prefix}_rps", ""), f.get(f"{prefix}_burst", "")
        return RateLimit(float(rps), int(burst)) if rps and burst else None

    return Merchant(
        id=mid,
        name=f["name"],
        shard=int(f["shard"]),
        webhook_secret=Secret(f["webhook_secret"]),
        webhook_url=f.get("webhook_url") or None,
        rate_limit=rate("rl"),
        payer_limit=rate("pl"),
        rails=json.loads(f.get("rails") or "{}"),
        settlement_currency=f.get("settlement_currency") or None,
    )


@final
class MerchantDirectory:
    """Create, change and authenticate merchants."""

    __slots__ = ("_by_id", "_by_key", "_pepper", "shards", "store", "ttl_s")

    def __init__(self, store: MerchantStore, pepper: bytes, shards: int,
                 ttl_s: float = 5.0) -> None:
        self.store = store
        self._pepper = pepper
        self.shards = shards
        self.ttl_s = ttl_s
        self._by_key: dict[str, tuple[float, Merchant]] = {}
        self._by_id: dict[str, tuple[float, Merchant]] = {}

    async def create(
        self, name: str, webhook_secret: str | None = None, api_key: str | None = None, *,
        prefix: str = "mch", rails: Mapping[str, str] | None = None,
    ) -> tuple[Merchant, str]:
        """A new merchant and its API key (returned once, stored only hashed). A service
        provider is stored the same way under the prefix `sp`."""
        mid = f"{prefix}_" + random_token(16)
        merchant = Merchant(
            id=mid,
            name=name,
            shard=keys.shard_for(mid, self.shards),
            webhook_secret=Secret(webhook_secret or "whsec_" + random_token(32)),
            rails=dict(rails or {}),
        )
        api_key = api_key or new_api_key()
        key_hash = hash_api_key(api_key, self._pepper)
        await self.store.create(mid, _encode(merchant, key_hash), key_hash)
        return merchant, api_key

    async def update(self, merchant: Merchant) -> None:
        key_hash = await self.store.key_hash(merchant.id)
        if key_hash is None:
            raise KeyError(merchant.id)
        await self.store.update(merchant.id, _encode(merchant, key_hash))
        self._remember(merchant)
        for key, (expiry, cached) in list(self._by_key.items()):
            if cached.id == merchant.id:
                self._by_key[key] = (expiry, merchant)

    async def get(self, mid: str) -> Merchant | None:
        hit = self._by_id.get(mid)
        if hit and hit[0] > time.monotonic():
            return hit[1]
        record = await self.store.record(mid)
        if not record:
            return None
        merchant = _decode(mid, record)
        self._remember(merchant)
        return merchant

    async def authenticate(self, api_key: str) -> Merchant | None:
        # Cached by the key as presented, so a hit costs no hashing.
        hit = self._by_key.get(api_key)
        now = time.monotonic()
        if hit and hit[0] > now:
            return hit[1]
        mid = await self.store.merchant_of(hash_api_key(api_key, self._pepper))
        merchant = await self.get(mid) if mid else None
        if merchant is not None:
            if len(self._by_key) > 100_000:  # bound memory against key-spraying callers
                self._by_key.clear()
            self._by_key[api_key] = (now + self.ttl_s, merchant)
        return merchant

    def _remember(self, merchant: Merchant) -> None:
        self._by_id[merchant.id] = (time.monotonic() + self.ttl_s, merchant)


async def load_pepper(store: MerchantStore, configured: Secret | None) -> bytes:
    """The API-key hash pepper: configured, or one generated once and kept in Redis."""
    if configured is not None:
        return configured.reveal().encode()[:64]
    return (await store.pepper(random_token(48)))[:64]
