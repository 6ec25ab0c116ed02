"""Red packets and transfers in Redis: record one, open or cancel it on its funding
payment, grab (one script), expire with its refund worked out, and send its pending
event exactly once. A packet, its grabs and the grabs' payouts share its id's slot."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import final

from router.social.packets import Grab, Packet, PacketStatus
from router.store import codec, keys
from router.store.limits import LimitSpec
from router.store.outcomes import Limited, RecordOutcome, done, limited_of, record_outcome
from router.store.runner import Runner


class GrabRefusal(enum.Enum):
    MISSING = "missing"
    NOT_OPEN = "not_open"
    EMPTY = "empty"
    EXPIRED = "expired"
    NOT_RECIPIENT = "not_recipient"


@final
@dataclass(frozen=True, slots=True)
class Grabbed:
    grab: Grab
    new: bool  # False: this user had grabbed already, this is that grab


GrabOutcome = Grabbed | GrabRefusal | Limited


class ExpiryWait(enum.Enum):
    EARLY = "early"  # not expired yet
    PAYOUTS_IN_FLIGHT = "wait"  # a grab's payout has not ended: look again later
    RETRY = "retry"  # a grab landed meanwhile: read the grabs again
    EVENT_PENDING = "event_pending"  # send the pending event first
    NOT_EXPIRABLE = "state"  # awaiting payment, canceled, or (decline) not open
    MISSING = "missing"


@final
@dataclass(frozen=True, slots=True)
class Expired:
    refund: int  # what goes back to the sender (0: nothing)


@final
class RedPacketStore:
    __slots__ = ("_run",)

    def __init__(self, runner: Runner) -> None:
        self._run = runner

    async def create(self, packet: Packet, fingerprint: str, equal_share: int,
                     min_share: int, first_due_ms: int) -> RecordOutcome:
        o = packet.order
        shard = keys.shard_in(packet.id)
        run = self._run
        reply = await run.script(
            run.scripts.rp_create, [keys.red_packet(shard, packet.id), keys.due(shard)],
            [packet.id, fingerprint, o.pack(), o.amount, o.count, equal_share, min_share,
             o.expires_ms, o.created_ms, first_due_ms, o.recipient, o.merchant_id])
        return record_outcome(reply)

    async def settle_funding(self, packet_id: str, status: PacketStatus, now_ms: int,
                             next_due: str, event_id: str, event_body: bytes,
                             merchant_id: str) -> bool:
        """Open (or cancel) a packet awaiting its payment; False if it was not waiting."""
        shard = keys.shard_in(packet_id)
        run = self._run
        reply = await run.script(
            run.scripts.rp_settle_funding,
            [keys.red_packet(shard, packet_id), keys.due(shard), keys.outbox(shard)],
            [packet_id, status.value, now_ms, next_due, event_id, codec.pack(event_body),
             merchant_id])
        return done(reply)

    async def grab(self, merchant_id: str, packet_id: str, user: str, draw: int,
                   payout_id: str, payout_order: bytes, payout_state: bytes,
                   limit: LimitSpec) -> GrabOutcome:
        shard = keys.shard_in(packet_id)
        run = self._run
        reply = await run.script(
            run.scripts.rp_grab,
            [keys.red_packet(shard, packet_id), keys.grabs(shard, packet_id), keys.due(shard),
             keys.payout(shard, payout_id), limit.key],
            [user, draw, payout_id, payout_order, repr(limit.interval_ms), limit.burst,
             payout_state, packet_id, merchant_id])
        head = _text(reply[0])
        match head:
            case "grabbed" | "again":
                return Grabbed(Grab.parse(user, _text(reply[1])), head == "grabbed")
            case "limited":
                return limited_of(reply[1:])
        return GrabRefusal(head)

    async def expire(self, packet_id: str, payout_ids: list[str], seen: int,
                     why: str = "") -> Expired | ExpiryWait:
        shard = keys.shard_in(packet_id)
        run = self._run
        reply = await run.script(
            run.scripts.rp_expire,
            [keys.red_packet(shard, packet_id), keys.grabs(shard, packet_id),
             *(keys.payout(shard, p) for p in payout_ids)],
            [why, seen])
        head = _text(reply[0])
        if head == "done":
            return Expired(int(_text(reply[1])))
        return ExpiryWait(head)

    async def send_event(self, packet: Packet, event_id: str, body: bytes,
                         next_due: str) -> bool:
        """Send the packet's pending event (`packet.pending_event`) unless sent already."""
        shard = keys.shard_in(packet.id)
        run = self._run
        reply = await run.script(
            run.scripts.rp_event,
            [keys.red_packet(shard, packet.id), keys.due(shard), keys.outbox(shard)],
            [packet.id, packet.pending_event, event_id, codec.pack(body),
             packet.order.merchant_id, next_due])
        return done(reply)

    async def load(self, packet_id: str) -> Packet | None:
        shard = keys.shard_of(packet_id)
        if shard is None or not packet_id.startswith(("rp_", "tr_")):
            return None
        fields = await self._run.hash(keys.red_packet(shard, packet_id))
        return Packet.from_hash(packet_id, fields) if fields else None

    async def grabs(self, packet_id: str) -> list[Grab]:
        fields = await self._run.hash(keys.grabs(keys.shard_in(packet_id), packet_id))
        return [Grab.parse(u.decode(), g.decode()) for u, g in fields.items()]


def _text(value: bytes | int | str) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
