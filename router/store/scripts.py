"""Loads the Lua scripts, each prefixed with the shared library, for EVALSHA use."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from typing import Any, final

from redis.asyncio import Redis
from redis.commands.core import AsyncScript

_NAMES = (
    "create_payment",
    "transition",
    "create_refund",
    "refund_transition",
    "idem_claim",
    "idem_settle",
    "rate_limit",
    "claim_due",
)


def script_source(name: str) -> str:
    folder = resources.files("router.store").joinpath("scripts")
    lib = folder.joinpath("lib.lua").read_text()
    return lib + "\n" + folder.joinpath(f"{name}.lua").read_text()


@final
@dataclass(frozen=True, slots=True)
class Scripts:
    """Registered scripts: each call is EVALSHA, re-loading the script on NOSCRIPT."""

    create_payment: AsyncScript
    transition: AsyncScript
    create_refund: AsyncScript
    refund_transition: AsyncScript
    idem_claim: AsyncScript
    idem_settle: AsyncScript
    rate_limit: AsyncScript
    claim_due: AsyncScript

    @classmethod
    def register(cls, redis: Redis) -> Scripts:
        loaded: dict[str, Any] = {
            name: redis.register_script(script_source(name)) for name in _NAMES
        }
        return cls(**loaded)
