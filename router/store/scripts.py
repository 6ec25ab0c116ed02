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

    @classmethod
    def load(cls) -> Scripts:
        return cls(**{name: Script(script_source(name)) for name in cls.__dataclass_fields__})
