"""Payments in Redis: accept one (create_payment.lua), compare-and-set it
(transition.lua), read it. Each method is one round trip."""

from __future__ import annotations

from collections.abc import Sequence
from typing import final

from router.domain import Payment
from router.store import keys
from router.store.finish import Finish
from router.store.limits import LimitSpec
from router.store.outcomes import CreateOutcome, MoveOutcome, create_outcome, move_outcome
from router.store.runner import Runner


@final
class PaymentStore:
    __slots__ = ("_run",)

    def __init__(self, runner: Runner) -> None:
        self._run = runner

    async def create(
        self,
        payment: Payment,
        *,
        shard: int,
        fingerprint: str,
        idem: tuple[str, str, str] | None,  # (key, request hash, owner)
        lease_ms: int,
        first_due_ms: int,
        limits: Sequence[LimitSpec],
    ) -> CreateOutcome:
        pkey = keys.payment(shard, payment.id)
        idem_key = keys.idempotency(shard, payment.scope, idem[0]) if idem else pkey
        limit_args: list[str | int] = []
        for spec in limits:
            limit_args += [repr(spec.interval_ms), spec.burst]
        run = self._run
        reply = await run.script(
            run.scripts.create_payment,
            [idem_key, pkey, keys.due(shard), *(spec.key or pkey for spec in limits)],
            [
                "1" if idem else "0",
                idem[1] if idem else "",
                idem[2] if idem else "",
                lease_ms,
                run.idem_ttl_s,
                payment.id,
                fingerprint,
                payment.pack_creation(),
                payment.rail.pack(),
                payment.amount,
                payment.updated_ms,
                first_due_ms,
                payment.status.value,
                *limit_args,
            ],
        )
        return create_outcome(reply)

    async def transition(self, payment: Payment, expected_version: int,
                         expected_status: str, finish: Finish) -> MoveOutcome:
        """CAS `payment` (already holding its new status and rail state) into Redis."""
        shard = keys.shard_in(payment.id)
        pkey = keys.payment(shard, payment.id)
        idem_key = (keys.idempotency(shard, payment.scope, finish.idem_key)
                    if finish.idem_key else pkey)
        run = self._run
        reply = await run.script(
            run.scripts.transition,
            [pkey, keys.due(shard), keys.outbox(shard), idem_key, keys.journal_inbox(shard)],
            [
                expected_version,
                expected_status,
                payment.status.value,
                payment.rail.pack(),
                payment.updated_ms,
                *finish.args(f"p:{payment.id}", payment.merchant_id, run.idem_ttl_s),
                payment.service_provider or "",  # its events go to the provider that made it
            ],
        )
        return move_outcome(reply)

    async def load(self, payment_id: str) -> Payment | None:
        shard = keys.shard_of(payment_id)
        if shard is None:
            return None
        fields = await self._run.hash(keys.payment(shard, payment_id))
        return Payment.from_hash(fields) if fields else None

    async def by_out_trade_no(self, shard: int, merchant_id: str, otn: str) -> Payment | None:
        """The merchant's payment for `otn`, if there is one: one read, by its derived id."""
        return await self.load(keys.payment_id(shard, merchant_id, otn))
