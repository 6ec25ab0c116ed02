"""Which rate limits apply to a call (their 429 is in payments/replies.py)."""

from __future__ import annotations

from router.merchants import Merchant
from router.settings import RateLimit, Settings
from router.store import keys
from router.store.limits import LimitSpec
from router.validation import digest

_NO_LIMIT = LimitSpec("", 0.0, 0)
LIMIT_NAMES = ("merchant", "payer")


def payer_identity(payer: dict[str, str]) -> str | None:
    """The strongest payer identifier present, hashed to bound key size."""
    for field in ("auth_code", "openid", "buyer_id", "client_ip"):
        if value := payer.get(field):
            return digest(field.encode(), value.encode())[:16]
    return None


def merchant_spec(settings: Settings, merchant: Merchant) -> LimitSpec:
    rate = merchant.rate_limit or settings.limits.merchant
    return _spec(keys.merchant_limit(merchant.shard, merchant.id), rate)


def payment_specs(settings: Settings, merchant: Merchant, payer: dict[str, str]) -> list[LimitSpec]:
    """merchant, payer — in the order of LIMIT_NAMES; both in the merchant's slot."""
    specs = [merchant_spec(settings, merchant)]
    identity = payer_identity(payer)
    if identity is None:
        specs.append(_NO_LIMIT)
    else:
        rate = merchant.payer_limit or settings.limits.payer
        specs.append(_spec(keys.payer_limit(merchant.shard, merchant.id, identity), rate))
    return specs


def rail_spec(settings: Settings, rail: str) -> LimitSpec | None:
    """The rail's outbound quota, if it has one. Its key is global (one quota across all
    merchants), so it is checked by a call of its own before the payment is created."""
    rail_settings = settings.rail(rail)
    if rail_settings is None or rail_settings.rate_limit is None:
        return None
    return _spec(keys.rail_limit(rail), rail_settings.rate_limit)


def _spec(key: str, rate: RateLimit) -> LimitSpec:
    # A GCRA state only means something under the rate that wrote it: a changed limit
    # starts a fresh bucket instead of inheriting a backlog counted in the old interval
    # (which would keep a merchant refused for seconds after its limit was raised).
    return LimitSpec(f"{key}:{rate.rps!r}/{rate.burst}", rate.interval_ms(), rate.burst)



def grab_spec(settings: Settings, merchant: Merchant, shard: int) -> LimitSpec:
    """The merchant's bucket for grabs on one shard: a grab is one script in its packet's
    slot, so it cannot take the merchant's own bucket (in the merchant's slot)."""
    return _spec(keys.grab_limit(shard, merchant.id), settings.social.grab_rate)
