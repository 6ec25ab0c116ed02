"""The typed store: every Redis operation of payments, refunds, idempotency and limits.

Each public method is one round trip (one script or one command). Callers get plain
tuples / records back, never raw Redis replies.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, final

from redis.exceptions import ConnectionError as RedisConnectionError

from router.domain import Payment, Refund
from router.store import codec, keys
from router.store.link import RedisLink
from router.store.resp import Arg, Script
from router.store.scripts import Scripts

log = logging.getLogger("payrouter.store")


class StoreUnavailable(RedisConnectionError):
    """The store answered, but not with data it must have (answered 503)."""


class ReplicationShortfall(RedisConnectionError):
    """Strict durability: a change reached fewer replicas than `wait_replicas` in time."""


@final
@dataclass(frozen=True, slots=True)
class LimitSpec:
    """One GCRA bucket to check: `interval_ms` 0 disables it."""

    key: str
    interval_ms: float
    burst: int


@final
@dataclass(frozen=True, slots=True)
class Limited:
    wait_ms: float
    burst: int
    which: int  # index of the refusing spec


@final
@dataclass(frozen=True, slots=True)
class Outcome:
    """A script's verdict: `kind` plus its values (see each script's return shapes)."""

    kind: str
    values: tuple[bytes, ...]

    @classmethod
    def of(cls, reply: Sequence[bytes | int | str]) -> Outcome:
        head, *rest = reply
        kind = head.decode() if isinstance(head, bytes) else str(head)
        return cls(kind, tuple(v if isinstance(v, bytes) else str(v).encode() for v in rest))

    def replayed(self) -> tuple[int, bytes]:
        """(status, body) of a stored idempotent answer (a "replay" outcome)."""
        return int(self.values[0]), codec.unpack(self.values[1])

    def limited(self) -> Limited:
        return Limited(float(self.values[0]), int(self.values[1]), int(self.values[2]) - 1)


@final
@dataclass(frozen=True, slots=True)
class Finish:
    """The common tail of a state change (see lib.lua `finish`)."""

    due_action: str = ""  # "" keep, "-" remove, else the new due time in ms
    event_id: str = ""
    event_body: bytes = b""
    webhook_url: str = ""  # "" : the merchant's default URL, looked up at delivery
    idem_key: str = ""  # "" when the change answers no idempotent request
    idem_owner: str = ""
    idem_status: int = 0
    idem_body: bytes = b""

    def args(self, merchant_id: str, ttl_s: int) -> list[str | bytes | int]:
        return [
            self.due_action,
            "",  # due member, filled in by the caller
            self.event_id,
            codec.pack(self.event_body) if self.event_id else b"",
            merchant_id,
            self.webhook_url,
            self.idem_owner,
            self.idem_status,
            codec.pack(self.idem_body) if self.idem_owner else b"",
            ttl_s,
        ]


@final
class Store:
    """Every call goes through `link` (auto-pipelined; one server or a cluster)."""

    __slots__ = ("idem_ttl_s", "link", "replicas", "scripts", "wait_timeout_ms")

    def __init__(self, link: RedisLink, idem_ttl_s: int, *,
                 replicas: int = 0, wait_timeout_ms: int = 100) -> None:
        self.link = link
        self.scripts = Scripts.load()
        self.idem_ttl_s = idem_ttl_s
        self.replicas = replicas
        self.wait_timeout_ms = wait_timeout_ms

    async def _run(self, script: Script, keys: Sequence[Arg], args: Sequence[Arg]) -> Any:
        reply = await self.link.evalsha(script, keys, args)
        if self.replicas:
            # Strict durability: answer only once the change is on `replicas` replicas.
            # WAIT covers every earlier write of this (shared) connection, so concurrent
            # requests' WAITs complete together. On a cluster it goes to the master
            # that ran the script.
            acked = await self.link.call_at(keys[0], "WAIT", self.replicas,
                                            self.wait_timeout_ms)
            if int(acked) < self.replicas:
                # Not acknowledged: the change is on the master only and could be lost
                # with it. Answer "unavailable" rather than promise it; the caller's
                # retry (same Idempotency-Key) finds the change once it is replicated.
                log.warning("only %s of %s replicas acknowledged within %s ms", acked,
                            self.replicas, self.wait_timeout_ms)
                raise ReplicationShortfall(
                    f"{acked} of {self.replicas} replicas acknowledged the change")
        return reply

    async def _hash(self, key: str) -> dict[bytes, bytes]:
        flat = await self.link.call("HGETALL", key)
        return dict(zip(flat[::2], flat[1::2], strict=True))

    # ----------------------------------------------------------------- payments
    async def create_payment(
        self,
        payment: Payment,
        *,
        shard: int,
        fingerprint: str,
        idem: tuple[str, str, str] | None,  # (key, request hash, owner)
        lease_ms: int,
        first_due_ms: int,
        limits: Sequence[LimitSpec],
    ) -> Outcome:
        pkey = keys.payment(shard, payment.id)
        idem_key = keys.idempotency(shard, payment.merchant_id, idem[0]) if idem else pkey
        limit_keys = [spec.key or pkey for spec in limits]
        limit_args: list[str | int] = []
        for spec in limits:
            limit_args += [repr(spec.interval_ms), spec.burst]
        reply = await self._run(
            self.scripts.create_payment,
            [
                idem_key,
                keys.out_trade_no(shard, payment.merchant_id, payment.out_trade_no),
                pkey,
                keys.due(shard),
                *limit_keys,
            ],
            [
                "1" if idem else "0",
                idem[1] if idem else "",
                idem[2] if idem else "",
                lease_ms,
                self.idem_ttl_s,
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
        return Outcome.of(reply)

    async def transition(
        self, payment: Payment, expected_version: int, expected_status: str, finish: Finish
    ) -> Outcome:
        """CAS `payment` (already holding its new status and rail state) into Redis."""
        shard = _shard(payment.id)
        pkey = keys.payment(shard, payment.id)
        tail = finish.args(payment.merchant_id, self.idem_ttl_s)
        tail[1] = f"p:{payment.id}"
        reply = await self._run(
            self.scripts.transition,
            [pkey, keys.due(shard), keys.outbox(shard), _idem_key(shard, payment, finish)],
            [
                expected_version,
                expected_status,
                payment.status.value,
                payment.rail.pack(),
                payment.updated_ms,
                *tail,
            ],
        )
        return Outcome.of(reply)

    async def load_payment(self, payment_id: str) -> Payment | None:
        shard = keys.shard_of(payment_id)
        if shard is None:
            return None
        fields = await self._hash(keys.payment(shard, payment_id))
        return Payment.from_hash(fields) if fields else None

    async def payment_by_out_trade_no(self, shard: int, merchant_id: str,
                                      otn: str) -> Payment | None:
        """The merchant's payment for `otn`, if there is one: one read, by its derived id."""
        found = await self.load_payment(keys.payment_id(shard, merchant_id, otn))
        if found is not None:
            return found
        # A payment created before ids were derived: its index entry names it.
        raw = await self.link.call("GET", keys.out_trade_no(shard, merchant_id, otn))
        return await self.load_payment(bytes(raw).decode().split("|", 1)[0]) if raw else None

    async def reschedule(self, shard: int, member: str, due_ms: int | None) -> None:
        """Move a sweeper entry (None: remove it)."""
        if due_ms is None:
            await self.link.call("ZREM", keys.due(shard), member)
        else:
            await self.link.call("ZADD", keys.due(shard), due_ms, member)

    async def claim_due(self, key: str, now_ms: int, limit: int, lease_ms: int) -> list[str]:
        items = await self._run(self.scripts.claim_due, [key], [now_ms, limit, lease_ms])
        return [bytes(i).decode() for i in items]

    # ----------------------------------------------------------------- refunds
    async def create_refund(
        self, refund: Refund, *, fingerprint: str, first_due_ms: int
    ) -> Outcome:
        shard = _shard(refund.payment_id)
        reply = await self._run(
            self.scripts.create_refund,
            [
                keys.payment(shard, refund.payment_id),
                keys.refund(shard, refund.id),
                keys.out_refund_no(shard, refund.payment_id, refund.out_refund_no),
                keys.refund_list(shard, refund.payment_id),
                keys.due(shard),
            ],
            [
                refund.id,
                refund.amount,
                refund.pack_creation(),
                refund.pack_state(),
                refund.created_ms,
                first_due_ms,
                fingerprint,
            ],
        )
        return Outcome.of(reply)

    async def refund_transition(
        self, refund: Refund, expected_status: str, finish: Finish
    ) -> Outcome:
        shard = _shard(refund.id)
        pkey = keys.payment(shard, refund.payment_id)
        tail = finish.args(refund.merchant_id, self.idem_ttl_s)
        tail[1] = f"r:{refund.id}"
        idem_key = (
            keys.idempotency(shard, refund.merchant_id, finish.idem_key)
            if finish.idem_key
            else pkey
        )
        reply = await self._run(
            self.scripts.refund_transition,
            [keys.refund(shard, refund.id), pkey, keys.due(shard), keys.outbox(shard), idem_key],
            [
                expected_status,
                refund.status.value,
                refund.pack_state(),
                refund.updated_ms,
                *tail,
            ],
        )
        return Outcome.of(reply)

    async def load_refund(self, refund_id: str) -> Refund | None:
        shard = keys.shard_of(refund_id)
        if shard is None:
            return None
        fields = await self._hash(keys.refund(shard, refund_id))
        return Refund.from_hash(fields) if fields else None

    async def refunds_of(self, payment_id: str) -> list[Refund]:
        shard = _shard(payment_id)
        ids = await self.link.call("LRANGE", keys.refund_list(shard, payment_id), 0, -1)
        # Issued together, so auto-pipelining sends them in one round trip.
        rows = await asyncio.gather(*(self._hash(keys.refund(shard, rid.decode())) for rid in ids))
        return [Refund.from_hash(row) for row in rows if row]

    # ----------------------------------------------------------------- idempotency
    async def idem_claim(
        self,
        shard: int,
        merchant_id: str,
        key: str,
        request_hash: str,
        owner: str,
        lease_ms: int,
    ) -> Outcome:
        reply = await self._run(
            self.scripts.idem_claim,
            [keys.idempotency(shard, merchant_id, key)],
            [request_hash, owner, lease_ms, self.idem_ttl_s],
        )
        return Outcome.of(reply)

    async def idem_settle(
        self,
        shard: int,
        merchant_id: str,
        key: str,
        owner: str,
        status: int | None,
        body: bytes,
    ) -> None:
        """Store the response (or, with `status` None, release the claim)."""
        await self._run(
            self.scripts.idem_settle,
            [keys.idempotency(shard, merchant_id, key)],
            [owner, "" if status is None else status, codec.pack(body), self.idem_ttl_s],
        )

    # ----------------------------------------------------------------- limits
    async def return_call(self, spec: LimitSpec) -> None:
        """Undo one admission of `spec` (a call it admitted that was not made)."""
        await self._run(self.scripts.rate_return, [spec.key], [repr(spec.interval_ms)])

    async def rate_limit(self, limits: Sequence[LimitSpec]) -> Limited | None:
        active = [s for s in limits if s.interval_ms > 0]
        if not active:
            return None
        args: list[str | int] = []
        for spec in active:
            args += [repr(spec.interval_ms), spec.burst]
        outcome = Outcome.of(
            await self._run(self.scripts.rate_limit, [s.key for s in active], args)
        )
        return outcome.limited() if outcome.kind == "limited" else None


def _shard(object_id: str) -> int:
    shard = keys.shard_of(object_id)
    if shard is None:
        raise ValueError(f"malformed id {object_id!r}")
    return shard


def _idem_key(shard: int, payment: Payment, finish: Finish) -> str:
    if finish.idem_key:
        return keys.idempotency(shard, payment.merchant_id, finish.idem_key)
    return keys.payment(shard, payment.id)
