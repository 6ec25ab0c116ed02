"""The Lua scripts, each prefixed with the shared library, called by SHA (EVALSHA)."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from typing import final

from router.store.resp import Script


def script_source(name: str) -> str:
    folder = resources.files("router.store").joinpath("scripts")
    lib = folder.joinpath("lib.lua").read_text()
    return lib + "\n" + folder.joinpath(f"{name}.lua").read_text()


@final
@dataclass(frozen=True, slots=True)
class Scripts:
    create_payment: Script
    transition: Script
    create_refund: Script
    refund_transition: Script
    idem_claim: Script
    idem_settle: Script
    rate_limit: Script
    rate_return: Script
    claim_due: Script
    outbox_settle: Script
    event_retried: Script
    event_redeliver: Script
    health_add: Script
    payout_create: Script
    rp_create: Script
    rp_settle_funding: Script
    rp_grab: Script
    rp_expire: Script
    rp_event: Script
    auth_create: Script
    auth_capture: Script
    journal_chain: Script
    sub_merchant_create: Script
    split_create: Script
    split_transition: Script
    split_return_settle: Script
    invoice_create: Script
    invoice_transition: Script
    policy_quota: Script
    policy_quota_return: Script
    points_earn: Script
    points_redeem: Script
    campaign_reserve: Script
    campaign_settle: Script
    campaign_end: Script
    coupon_reserve: Script

    @classmethod
    def load(cls) -> Scripts:
        return cls(**{name: Script(script_source(name)) for name in cls.__dataclass_fields__})
