"""Refunds in Redis: reserve one against the amount paid (create_refund.lua), settle it
(refund_transition.lua), read them. Each method is one round trip."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import final

from router.rails.instances import provider_of
from router.refund_record import Refund
from router.store import keys
from router.store.finish import Finish
from router.store.outcomes import (
    Moved,
    MoveOutcome,
    RefundOutcome,
    move_outcome,
    refund_outcome,
)
from router.store.runner import Runner


@final
@dataclass(frozen=True, slots=True)
class MovedPastInvoice:
    """The refund succeeded, and its payment's current invoice (`invoice_id`) no longer
    fits what is paid: the script made it due (router/commerce/invoice_worker.py)."""

    invoice_id: str


@final
class RefundStore:
    __slots__ = ("_run",)

    def __init__(self, runner: Runner) -> None:
        self._run = runner

    async def create(self, refund: Refund, *, fingerprint: str, first_due_ms: int,
                     shares: tuple[int, int] = (0, 0)) -> RefundOutcome:
        """`shares`: the payment's campaign discount and cashback paid, which the rail's
        part of the refund leaves out (create_refund.lua)."""
        shard = keys.shard_in(refund.payment_id)
        run = self._run
        reply = await run.script(
            run.scripts.create_refund,
            [
                keys.payment(shard, refund.payment_id),
                keys.refund(shard, refund.id),
                keys.out_refund_no(shard, refund.payment_id, refund.out_refund_no),
                keys.refund_list(shard, refund.payment_id),
                keys.due(shard),
                keys.shares(shard, refund.payment_id),
                keys.refund_returns(shard, refund.id),
            ],
            [
                refund.id,
                refund.amount,
                refund.pack_creation(),
                refund.pack_state(),
                refund.created_ms,
                first_due_ms,
                fingerprint,
                *(shares if any(shares) else ()),
            ],
        )
        return refund_outcome(reply)

    async def transition(self, refund: Refund, expected_status: str, finish: Finish,
                         invoice_due_ms: int = 0) -> MoveOutcome | MovedPastInvoice:
        """CAS the refund; a success makes the payment's current invoice, if it has one,
        due by `invoice_due_ms`."""
        shard = keys.shard_in(refund.id)
        pkey = keys.payment(shard, refund.payment_id)
        idem_key = (keys.idempotency(shard, refund.merchant_id, finish.idem_key)
                    if finish.idem_key else pkey)
        run = self._run
        reply = await run.script(
            run.scripts.refund_transition,
            [keys.refund(shard, refund.id), pkey, keys.due(shard), keys.outbox(shard), idem_key,
             keys.journal_inbox(shard)],
            [
                expected_status,
                refund.status.value,
                refund.pack_state(),
                refund.updated_ms,
                *finish.args(f"r:{refund.id}", refund.merchant_id, run.idem_ttl_s),
                provider_of(refund.rail) or "",  # a provider's payment: its events go there
                invoice_due_ms or refund.updated_ms,
            ],
        )
        outcome = move_outcome(reply)
        if isinstance(outcome, Moved) and len(reply) > 1:
            invoice = reply[1]
            return MovedPastInvoice(invoice.decode() if isinstance(invoice, bytes)
                                    else str(invoice))
        return outcome

    async def load(self, refund_id: str) -> Refund | None:
        shard = keys.shard_of(refund_id)
        if shard is None:
            return None
        fields = await self._run.hash(keys.refund(shard, refund_id))
        return Refund.from_hash(fields) if fields else None

    async def of_payment(self, payment_id: str) -> list[Refund]:
        shard = keys.shard_in(payment_id)
        ids = await self._run.read("LRANGE", keys.refund_list(shard, payment_id), 0, -1)
        # Issued together, so auto-pipelining sends them in one round trip.
        rows = await asyncio.gather(*(self._run.hash(keys.refund(shard, rid.decode()))
                                      for rid in ids))
        return [Refund.from_hash(row) for row in rows if row]
