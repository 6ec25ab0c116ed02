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
from router.store.link import RedisLink


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

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"id": self.id, "object": "merchant", "name": self.name}
        body["webhook_url"] = self.webhook_url
        body["rate_limit"] = _rate_json(self.rate_limit)
        body["payer_rate_limit"] = _rate_json(self.payer_limit)
        body["rails"] = dict(self.rails)
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
    }
    for prefix, rate in (("rl", m.rate_limit), ("pl", m.payer_limit)):
        fields[f"{prefix}_rps"] = "" if rate is None else repr(rate.rps)
        fields[f"{prefix}_burst"] = "" if rate is None else str(rate.burst)
    return [item for pair in fields.items() for item in pair]


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
    )


@final
class MerchantDirectory:
    """Create, change and authenticate merchants."""

    __slots__ = ("_by_id", "_by_key", "_pepper", "link", "shards", "ttl_s")

    def __init__(self, link: RedisLink, pepper: bytes, shards: int, ttl_s: float = 5.0) -> None:
        self.link = link
        self._pepper = pepper
        self.shards = shards
        self.ttl_s = ttl_s
        self._by_key: dict[str, tuple[float, Merchant]] = {}
        self._by_id: dict[str, tuple[float, Merchant]] = {}

    async def create(
        self, name: str, webhook_secret: str | None = None, api_key: str | None = None
    ) -> tuple[Merchant, str]:
        """A new merchant and its API key (returned once, stored only hashed)."""
        mid = "mch_" + random_token(16)
        merchant = Merchant(
            id=mid,
            name=name,
            shard=keys.shard_for(mid, self.shards),
            webhook_secret=Secret(webhook_secret or "whsec_" + random_token(32)),
        )
        api_key = api_key or new_api_key()
        key_hash = hash_api_key(api_key, self._pepper)
        # Two keys in different slots, so two commands: the record first, then the key
        # that finds it. A crash in between leaves a merchant no key can reach yet.
        await self.link.call("HSET", keys.merchant(mid), *_encode(merchant, key_hash))
        await self.link.call("SET", keys.api_key(key_hash), mid)
        return merchant, api_key

    async def update(self, merchant: Merchant) -> None:
        raw = await self.link.call("HGET", keys.merchant(merchant.id), "key_hash")
        if raw is None:
            raise KeyError(merchant.id)
        await self.link.call("HSET", keys.merchant(merchant.id),
                             *_encode(merchant, bytes(raw).decode()))
        self._remember(merchant)
        for key, (expiry, cached) in list(self._by_key.items()):
            if cached.id == merchant.id:
                self._by_key[key] = (expiry, merchant)

    async def get(self, mid: str) -> Merchant | None:
        hit = self._by_id.get(mid)
        if hit and hit[0] > time.monotonic():
            return hit[1]
        flat = await self.link.call("HGETALL", keys.merchant(mid))
        if not flat:
            return None
        merchant = _decode(mid, dict(zip(flat[::2], flat[1::2], strict=True)))
        self._remember(merchant)
        return merchant

    async def authenticate(self, api_key: str) -> Merchant | None:
        key_hash = hash_api_key(api_key, self._pepper)
        hit = self._by_key.get(key_hash)
        now = time.monotonic()
        if hit and hit[0] > now:
            return hit[1]
        mid = await self.link.call("GET", keys.api_key(key_hash))
        merchant = await self.get(bytes(mid).decode()) if mid else None
        if merchant is not None:
            if len(self._by_key) > 100_000:  # bound memory against key-spraying callers
                self._by_key.clear()
            self._by_key[key_hash] = (now + self.ttl_s, merchant)
        return merchant

    def _remember(self, merchant: Merchant) -> None:
        self._by_id[merchant.id] = (time.monotonic() + self.ttl_s, merchant)


async def load_pepper(link: RedisLink, configured: Secret | None) -> bytes:
    """The API-key hash pepper: configured, or one generated once and kept in Redis."""
    if configured is not None:
        return configured.reveal().encode()[:64]
    await link.call("SET", keys.PEPPER, random_token(48), "NX")
    value = await link.call("GET", keys.PEPPER)
    assert value is not None
    return bytes(value)[:64]
