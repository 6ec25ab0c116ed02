"""Idempotency keys of calls other than payment creation (which claims its key inside
create_payment.lua): claim one, then store the answer or release it."""

from __future__ import annotations

from typing import final

from router.store import codec, keys
from router.store.outcomes import ClaimOutcome, claim_outcome
from router.store.runner import Runner


@final
class IdempotencyStore:
    __slots__ = ("_run",)

    def __init__(self, runner: Runner) -> None:
        self._run = runner

    async def claim(self, shard: int, scope_id: str, key: str, request_hash: str,
                    owner: str, lease_ms: int) -> ClaimOutcome:
        run = self._run
        reply = await run.script(run.scripts.idem_claim,
                                 [keys.idempotency(shard, scope_id, key)],
                                 [request_hash, owner, lease_ms, run.idem_ttl_s])
        return claim_outcome(reply)

    async def settle(self, shard: int, scope_id: str, key: str, owner: str,
                     status: int | None, body: bytes) -> None:
        """Store the answer (or, with `status` None, release the claim) if `owner` still
        holds the key."""
        run = self._run
        await run.script(run.scripts.idem_settle, [keys.idempotency(shard, scope_id, key)],
                         [owner, "" if status is None else status, codec.pack(body),
                          run.idem_ttl_s])
