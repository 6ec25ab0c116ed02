"""Cross-platform objects in Redis: checkout codes, pay-for-me links and the claim a
payer holds on a shared payment. Each write carries its expiry in the same command."""

from __future__ import annotations

from typing import final

from router.store import keys
from router.store.runner import Runner


@final
class InteropStore:
    __slots__ = ("_run",)

    def __init__(self, runner: Runner) -> None:
        self._run = runner

    # ----------------------------------------------------------------- checkout codes
    async def put_code(self, shard: int, code_id: str, stored: bytes) -> None:
        key = keys.checkout_code(shard, code_id)
        await self._run.write(key, "SET", key, stored)

    async def code(self, code_id: str) -> bytes | None:
        shard = keys.shard_of(code_id)
        if shard is None:
            return None
        raw = await self._run.read("GET", keys.checkout_code(shard, code_id))
        return bytes(raw) if raw is not None else None

    # ----------------------------------------------------------------- share links
    async def put_link(self, shard: int, link_id: str, payment_id: str, ttl_s: int) -> None:
        key = keys.share_link(shard, link_id)
        await self._run.write(key, "SET", key, payment_id, "EX", ttl_s)

    async def link_payment(self, link_id: str) -> str | None:
        """The payment a live link shares; None once it expired (or never existed)."""
        shard = keys.shard_of(link_id)
        if shard is None:
            return None
        raw = await self._run.read("GET", keys.share_link(shard, link_id))
        return bytes(raw).decode() if raw is not None else None

    async def claim_payment(self, payment_id: str, token: str, ttl_s: int) -> str:
        """Claim `payment_id` for the opener holding `token`, unless someone holds it:
        returns the token that holds the claim now (`token` when it was free)."""
        shard = keys.shard_in(payment_id)
        key = keys.share_claim(shard, payment_id)
        if await self._run.write(key, "SET", key, token, "NX", "EX", ttl_s):
            return token
        held = await self._run.read("GET", key)
        return bytes(held).decode() if held is not None else ""
