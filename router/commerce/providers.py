"""Service providers (服务商) and their sub-merchants: one level, no exclusive agency.

A provider is stored like a merchant (`merchant:sp_...`, its API key hashed with the same
pepper), so its key authenticates through `MerchantDirectory` and its webhooks are
signed like a merchant's. What makes it a provider is its id: a provider's key never
acts as a merchant itself, only for one of its sub-merchants, named in the
`Payrouter-Account` header. Its `rails` map a method to its own rail table (its own
credentials), which runs in partner mode for the sub-merchant (rails/instances.py).

A sub-merchant is a merchant record no API key reaches. With a WeChat `sub_mchid` its id
is derived from it, so a second provider naming the same `sub_mchid` links the same
merchant: the id is the index, and its creation is one script. Each provider keeps its
own partner ids for each merchant it serves (an Alipay `app_auth_token` is issued to one
provider's app), in `spsub:<provider>`.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Final, TypeVar, cast, final

import orjson

from router.errors import RouterError, not_found, validation_error
from router.merchants import Merchant, MerchantDirectory, keyless_record
from router.payments.replies import Reply
from router.security import Secret, random_token
from router.store import keys
from router.store.outcomes import Recorded
from router.store.providers import ProviderStore

PROVIDER_PREFIX: Final = "sp_"
ACCOUNT_HEADER: Final = "Payrouter-Account"
PARTNER_METHODS: Final = ("wechatpay", "alipay")
_CACHE_S: Final = 5.0
_CACHE_SIZE: Final = 100_000
T = TypeVar("T")


def sub_merchant_id(sub_mchid: str) -> str:
    """The merchant id of a WeChat sub-merchant: derived, so every provider that names
    the same sub_mchid reaches the same merchant."""
    digest = hashlib.blake2b(sub_mchid.encode(), digest_size=8, person=b"payrouter.submch")
    return "mch_" + digest.hexdigest()


def is_provider(merchant: Merchant) -> bool:
    return merchant.id.startswith(PROVIDER_PREFIX)


@final
@dataclass(frozen=True, slots=True)
class PartnerIds:
    """A provider's ids for one sub-merchant: what its rail tables add in partner mode."""

    sub_mchid: str | None = None
    app_auth_token: str | None = field(default=None, repr=False)

    def methods(self) -> tuple[str, ...]:
        return tuple(m for m in PARTNER_METHODS if self.options(m))

    def options(self, method: str) -> dict[str, str] | None:
        """The adapter options that turn partner mode on for `method` (None: not served)."""
        if method == "wechatpay" and self.sub_mchid:
            return {"sub_mchid": self.sub_mchid}
        if method == "alipay" and self.app_auth_token:
            return {"app_auth_token": self.app_auth_token}
        return None

    def pack(self) -> bytes:
        return orjson.dumps({"w": self.sub_mchid, "a": self.app_auth_token})

    @classmethod
    def unpack(cls, raw: bytes) -> PartnerIds:
        d = orjson.loads(raw)
        return cls(d["w"], d["a"])


@final
@dataclass(frozen=True, slots=True)
class SubMerchant:
    """What a sub-merchant is to every provider that serves it."""

    sub_mchid: str | None
    alipay_user_id: str | None
    max_split_bp: int

    def account(self, method: str) -> str | None:
        """Its account at a rail, as a split receiver."""
        return {"wechatpay": self.sub_mchid, "alipay": self.alipay_user_id}.get(method)


_SUB_FIELDS: Final = ("sub", "sub_mchid", "alipay_user_id", "max_split_bp")


@final
class Providers:
    """Create providers, onboard their sub-merchants, and resolve who a call acts for."""

    __slots__ = ("_cache", "merchants", "store")

    def __init__(self, store: ProviderStore, merchants: MerchantDirectory) -> None:
        self.store = store
        self.merchants = merchants
        self._cache: dict[tuple[str, str, str], tuple[float, Any]] = {}

    # ----------------------------------------------------------------- providers
    async def create(self, name: str, rails: Mapping[str, str], accounts: Mapping[str, str],
                     webhook_secret: str | None, webhook_url: str | None,
                     ) -> tuple[Merchant, str]:
        """A new provider and its API key (shown once, stored only hashed)."""
        provider, api_key = await self.merchants.create(name, webhook_secret, prefix="sp",
                                                        rails=rails)
        if webhook_url is not None:
            provider = replace(provider, webhook_url=webhook_url)
            await self.merchants.update(provider)
        await self.store.set_fields(provider.id, {
            "provider": "1", "accounts": orjson.dumps(dict(accounts)).decode()})
        return provider, api_key

    async def accounts(self, provider_id: str) -> dict[str, str]:
        """The provider's own merchant accounts by method (where its shares are paid)."""
        async def load() -> dict[str, str]:
            raw, = await self.store.fields(provider_id, "accounts")
            found: dict[str, str] = orjson.loads(raw) if raw else {}
            return found
        return await self._cached(("acc", provider_id, ""), load)

    # ----------------------------------------------------------------- sub-merchants
    async def onboard(self, provider: Merchant, name: str, ids: PartnerIds,
                      alipay_user_id: str | None, max_split_bp: int) -> Reply:
        """Create the sub-merchant (201) or link the one its sub_mchid names (200)."""
        if not ids.methods():
            raise validation_error("wechatpay", "Give the sub-merchant's wechatpay.sub_mchid "
                                                "or alipay.app_auth_token.")
        for method in ids.methods():
            if method not in provider.rails:
                raise validation_error(method, f"This service provider has no {method} rail "
                                               "to act for a sub-merchant in.")
        mid = (sub_merchant_id(ids.sub_mchid) if ids.sub_mchid
               else "mch_" + random_token(16))
        merchant = Merchant(id=mid, name=name, shard=keys.shard_for(mid, self.merchants.shards),
                            webhook_secret=Secret("whsec_" + random_token(32)))
        extra = {"sub": "1", "sub_mchid": ids.sub_mchid or "",
                 "alipay_user_id": alipay_user_id or "", "max_split_bp": str(max_split_bp)}
        created = await self.store.add_sub_merchant(
            mid, [*keyless_record(merchant), *(i for pair in extra.items() for i in pair)])
        if not isinstance(created, Recorded):
            found = await self.merchants.get(mid)
            if found is None:
                raise RuntimeError(f"sub-merchant {mid} vanished while being linked")
            merchant = found
            if alipay_user_id and (await self.sub_merchant(mid, fresh=True) or _NONE
                                   ).alipay_user_id is None:
                await self.store.set_fields(mid, {"alipay_user_id": alipay_user_id})
        await self.store.link(provider.id, mid, ids.pack())
        self._forget(provider.id, mid)
        info = await self.sub_merchant(mid, fresh=True) or _NONE
        return Reply.json(201 if isinstance(created, Recorded) else 200,
                          sub_merchant_json(merchant, provider, ids, info))

    async def sub_merchant(self, merchant_id: str, *, fresh: bool = False
                           ) -> SubMerchant | None:
        """The sub-merchant's own ids and ratio cap (None: not a sub-merchant)."""
        async def load() -> SubMerchant | None:
            sub, sub_mchid, alipay, bp = await self.store.fields(merchant_id, *_SUB_FIELDS)
            if sub != "1":
                return None
            return SubMerchant(sub_mchid or None, alipay or None, int(bp or 0))
        if fresh:
            self._cache.pop(("sub", merchant_id, ""), None)
        return await self._cached(("sub", merchant_id, ""), load)

    async def partner_ids(self, provider_id: str, merchant_id: str) -> PartnerIds | None:
        """The provider's partner ids for a merchant; None when it does not serve it."""
        async def load() -> PartnerIds | None:
            raw = await self.store.partner_ids(provider_id, merchant_id)
            return PartnerIds.unpack(raw) if raw is not None else None
        return await self._cached(("ids", provider_id, merchant_id), load)

    # ----------------------------------------------------------------- calls
    async def acting(self, principal: Merchant, account: str | None) -> Merchant:
        """Who a call acts for: a merchant for itself, a provider for the sub-merchant it
        names (`Payrouter-Account`). A merchant a provider does not serve is missing."""
        if not is_provider(principal):
            if account is None or account == principal.id:
                return principal
            raise not_found("account")
        if account is None:
            raise RouterError(400, "invalid_request", "A service provider's key acts for one "
                              f"of its sub-merchants: name it in the {ACCOUNT_HEADER} header.",
                              param=ACCOUNT_HEADER)

        async def load() -> Merchant | None:
            ids = await self.partner_ids(principal.id, account)
            merchant = await self.merchants.get(account) if ids is not None else None
            if ids is None or merchant is None:
                return None
            rails = {m: principal.rails[m] for m in ids.methods() if m in principal.rails}
            return replace(merchant, acting_provider=principal.id, rails=rails)

        view = await self._cached(("view", principal.id, account), load) if (
            len(account) <= 64) else None
        if view is None:
            raise not_found("account")
        return view

    async def _cached(self, key: tuple[str, str, str], load: Callable[[], Awaitable[T]]) -> T:
        """What `load` gives, read at most `_CACHE_S` ago: authentication stays off Redis
        on the hot path, like the merchants' own cache."""
        hit = self._cache.get(key)
        now = time.monotonic()
        if hit is not None and hit[0] > now:
            return cast(T, hit[1])
        value = await load()
        if len(self._cache) >= _CACHE_SIZE:
            self._cache.clear()
        self._cache[key] = (now + _CACHE_S, value)
        return value

    def _forget(self, provider_id: str, merchant_id: str) -> None:
        for kind in ("ids", "view"):
            self._cache.pop((kind, provider_id, merchant_id), None)


_NONE: Final = SubMerchant(None, None, 0)


def sub_merchant_json(merchant: Merchant, provider: Merchant, ids: PartnerIds,
                      info: SubMerchant) -> dict[str, Any]:
    """A sub-merchant as its provider sees it: the partner ids this provider gave (the
    Alipay token masked: it is a credential), never other providers'."""
    body: dict[str, Any] = {"id": merchant.id, "object": "merchant", "name": merchant.name,
                            "sub_merchant": True, "service_provider": provider.id,
                            "max_split_bp": info.max_split_bp}
    if ids.sub_mchid:
        body["wechatpay"] = {"sub_mchid": ids.sub_mchid}
    if ids.app_auth_token:
        alipay: dict[str, str] = {"app_auth_token": "****" + ids.app_auth_token[-4:]}
        if info.alipay_user_id:
            alipay["user_id"] = info.alipay_user_id
        body["alipay"] = alipay
    body["rails"] = {m: provider.rails[m] for m in ids.methods() if m in provider.rails}
    return body
