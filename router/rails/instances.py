"""Adapter instances made at run time: a service provider's rail in partner mode for one
of its sub-merchants.

A provider's rail table (e.g. `[rails.wechatpay_sp]`, the provider's own credentials) is
loaded like any rail, in direct mode. A payment a provider makes for a sub-merchant goes
through an instance of that rail built with the sub-merchant's partner ids added to the
table's options (`sub_mchid` for WeChat Pay, `app_auth_token` for Alipay), named

    <rail>~<provider id>~<sub-merchant id>      e.g. wechatpay_sp~sp_0a...~mch_...

The payment's attempt records that name as its rail, so every later call (query, close,
reversal, refund, split) and the rail's notifications (`/v1/notify/<name>`) reach the
same instance without anything else to look up; `RailClient` builds an instance the
first time a process meets its name and keeps it a minute (then rebuilds it, so a
provider's refreshed partner ids apply).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Final

from adapters.base import Adapter

SEP: Final = "~"

# Builds the adapter of an instance name, or None when the name stands for nothing (an
# unknown provider, a sub-merchant it does not serve).
InstanceSource = Callable[[str], Awaitable[Adapter | None]]


def partner_rail(rail: str, provider_id: str, merchant_id: str) -> str:
    return f"{rail}{SEP}{provider_id}{SEP}{merchant_id}"


def parts(rail: str) -> tuple[str, str, str] | None:
    """(rail table, provider id, sub-merchant id) of an instance name, else None."""
    base, sep, rest = rail.partition(SEP)
    provider, sep2, merchant = rest.partition(SEP)
    if not (sep and sep2 and base and provider and merchant) or SEP in merchant:
        return None
    return base, provider, merchant


def base_rail(rail: str) -> str:
    """The configured rail behind a name (itself for a configured rail): what metrics,
    health, timeouts and quotas are kept under."""
    return rail.partition(SEP)[0]


def provider_of(rail: str) -> str | None:
    """The service provider an instance acts for, None for a configured rail."""
    found = parts(rail) if SEP in rail else None
    return found[1] if found else None
