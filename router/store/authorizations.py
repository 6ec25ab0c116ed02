"""Authorizations in Redis: record one (auth_create.lua), reserve its one capture
(auth_capture.lua: the capturable amount's check and change in one script), compare-and-set
it (the payments' transition.lua: the same fields and the same finish), read it."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import final

from router.commerce.authorization_records import Authorization, AuthStatus, Capture
from router.store import keys
from router.store.finish import Finish
from router.store.outcomes import MoveOutcome, RecordOutcome, move_outcome, record_outcome
from router.store.runner import Runner


@final
@dataclass(frozen=True, slots=True)
class Reserved:
    """The capture is this authorization's now (`again`: it already was, a retry)."""

    again: bool


class CaptureRefusal(enum.Enum):
    MISSING = "missing"
    EXPIRED = "expired"


@final
@dataclass(frozen=True, slots=True)
class NotCapturable:
    """Another capture, or no hold to capture: the authorization is `status`."""

    status: AuthStatus


@final
@dataclass(frozen=True, slots=True)
class OverHeld:
    """The amount is above what is held."""

    held: int


ReserveOutcome = Reserved | NotCapturable | OverHeld | CaptureRefusal


@final
class AuthorizationStore:
    __slots__ = ("_run",)

    def __init__(self, runner: Runner) -> None:
        self._run = runner

    async def create(self, auth: Authorization, fingerprint: str,
                     first_due_ms: int) -> RecordOutcome:
        shard = keys.shard_in(auth.id)
        o = auth.order
        run = self._run
        reply = await run.script(
            run.scripts.auth_create, [keys.authorization(shard, auth.id), keys.due(shard)],
            [auth.id, fingerprint, o.pack(), o.amount, auth.state.pack(), auth.updated_ms,
             first_due_ms, o.expires_ms])
        return record_outcome(reply)

    async def reserve_capture(self, auth_id: str, capture: Capture, now_ms: int,
                              due_ms: int) -> ReserveOutcome:
        shard = keys.shard_in(auth_id)
        run = self._run
        reply = await run.script(
            run.scripts.auth_capture, [keys.authorization(shard, auth_id), keys.due(shard)],
            [capture.amount, capture.payment_id, capture.out_trade_no, now_ms, due_ms,
             auth_id])
        head, *rest = (_text(r) for r in reply)
        match head:
            case "ok":
                return Reserved(again=False)
            case "same":
                return Reserved(again=True)
            case "state":
                return NotCapturable(AuthStatus(rest[0]))
            case "over":
                return OverHeld(int(rest[0]))
        return CaptureRefusal(head)

    async def transition(self, auth: Authorization, expected_version: int,
                         expected_status: str, finish: Finish) -> MoveOutcome:
        shard = keys.shard_in(auth.id)
        akey = keys.authorization(shard, auth.id)
        run = self._run
        reply = await run.script(
            run.scripts.transition, [akey, keys.due(shard), keys.outbox(shard), akey],
            [expected_version, expected_status, auth.status.value, auth.state.pack(),
             auth.updated_ms,
             *finish.args(f"au:{auth.id}", auth.order.merchant_id, run.idem_ttl_s)])
        return move_outcome(reply)

    async def load(self, auth_id: str) -> Authorization | None:
        shard = keys.shard_of(auth_id)
        if shard is None or not auth_id.startswith("auth_"):
            return None
        fields = await self._run.hash(keys.authorization(shard, auth_id))
        return Authorization.from_hash(auth_id, fields) if fields else None


def _text(value: bytes | int | str) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
