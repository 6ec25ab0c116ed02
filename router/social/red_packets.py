"""Red packets and transfers: create (the packet, then its funding payment), open when
the payment succeeds, grab in one script, and answer what the API shows.

The packet's worker (`expiry.py`) does the rest: events, expiry and the refund.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any, final

import orjson

from adapters.base import Charge, RailError
from router.clock import Clock
from router.domain import Payment, Status, funded_object, funding_trade_no
from router.errors import RouterError, not_found, validation_error
from router.events import event
from router.limits import grab_spec
from router.merchants import Merchant
from router.ops.metrics import Metrics
from router.payments import Payments
from router.payments.numbers import rail_order_no
from router.payments.replies import Reply, rail_refused_request, too_many
from router.routing import Router
from router.settings import Settings
from router.social.packets import Kind, Packet, PacketOrder, PacketStatus
from router.social.payout_create import _USER_WALLET, rail_for
from router.social.records import PayoutOrder, PayoutState
from router.social.users import Users
from router.store import keys
from router.store.outcomes import Existing, Limited, NaturalKeyConflict, Recorded
from router.store.red_packets import Grabbed, GrabRefusal
from router.store.store import Store
from router.validation import PaymentRequest, RefundRequest, digest


@final
@dataclass(frozen=True, slots=True)
class NewPacket:
    """A checked request for a red packet or a transfer."""

    kind: Kind
    out_no: str
    sender: str
    recipient: str
    amount: int
    currency: str
    count: int
    split: str
    note: str
    expires_in_s: int
    funding: PaymentRequest  # out_trade_no and metadata are set here, from the packet id


_OPENED = {Kind.RED_PACKET: "red_packet.opened", Kind.TRANSFER: "transfer.sent"}
_CANCELED = {Kind.RED_PACKET: "red_packet.canceled", Kind.TRANSFER: "transfer.canceled"}


@final
class RedPackets:
    __slots__ = ("clock", "metrics", "payments", "router", "settings", "store", "users")

    def __init__(self, store: Store, payments: Payments, router: Router, users: Users,
                 settings: Settings, metrics: Metrics, clock: Clock) -> None:
        self.store = store
        self.payments = payments
        self.router = router
        self.users = users
        self.settings = settings
        self.metrics = metrics
        self.clock = clock

    # ----------------------------------------------------------------- create
    def check(self, req: NewPacket) -> None:
        """The packet's own rules (the users are checked by `create`)."""
        social = self.settings.social
        if req.kind is Kind.RED_PACKET:
            if not 1 <= req.count <= social.max_count:
                raise validation_error("count", f"count must be 1 to {social.max_count}.")
            if req.amount > social.max_packet_amount:
                raise validation_error("amount", f"A red packet holds at most "
                                                 f"{social.max_packet_amount} (minor units).")
        if req.amount < req.count * social.min_share:
            least = req.count * social.min_share
            raise validation_error("amount", f"Every share must be at least {social.min_share}; "
                                             f"{req.count} shares need {least}.")
        if req.split == "equal" and req.amount % req.count:
            raise validation_error("amount", "An equal split needs an amount divisible by count.")

    async def create(self, merchant: Merchant, req: NewPacket) -> Reply:
        self.check(req)
        sender_param = "sender" if req.kind is Kind.RED_PACKET else "from"
        await self.users.verified(merchant.id, req.sender, sender_param, fresh=True)
        if req.recipient:
            if req.recipient == req.sender:
                raise validation_error("to", "A transfer goes to another user.")
            await self.users.verified(merchant.id, req.recipient, "to", fresh=True)
        prefix = "rp" if req.kind is Kind.RED_PACKET else "tr"
        pid = keys.spread_id(prefix, self.store.users.spread, merchant.id, req.out_no)
        funding = _funding(req, pid)
        payment_id = keys.payment_id(merchant.shard, merchant.id, funding.out_trade_no)
        rail, routing = self._route(merchant, funding, payment_id)
        now = self.clock.now_ms()
        order = PacketOrder(req.kind, merchant.id, req.out_no, req.sender, req.recipient,
                            req.amount, req.currency, req.count, req.split, req.note, now,
                            now + req.expires_in_s * 1000, payment_id)
        packet = Packet(pid, order, PacketStatus.AWAITING_PAYMENT, req.amount, req.count, "",
                        0, "", False, now)
        fingerprint = digest(orjson.dumps([
            req.kind.value, req.sender, req.recipient, req.amount, req.currency, req.count,
            req.split, req.note, req.expires_in_s, funding.fingerprint()]))[:16]
        equal = req.amount // req.count if req.split == "equal" else 0
        first_due = now + int(self.settings.social.funding_check_s * 1000)
        outcome = await self.store.red_packets.create(
            packet, fingerprint, equal, self.settings.social.min_share, first_due)
        match outcome:
            case NaturalKeyConflict() if req.kind is Kind.RED_PACKET:
                raise RouterError(409, "out_red_packet_no_used", "out_red_packet_no was "
                                  "already used with different parameters.",
                                  param="out_red_packet_no")
            case NaturalKeyConflict():
                raise RouterError(409, "out_transfer_no_used", "out_transfer_no was already "
                                  "used with different parameters.", param="out_transfer_no")
            case Recorded() | Existing():
                pass
        payment = await self.store.payments.load(order.payment_id)
        current = await self.store.red_packets.load(pid)
        assert current is not None
        if (payment is None and current.status is PacketStatus.AWAITING_PAYMENT
                and self.clock.now_ms() < current.order.expires_ms):
            # New, or its creator died before the payment: (re)create it, same number.
            answer = await self.payments.creator.create(merchant, funding, rail, routing, None,
                                                        method=self.router.kind(rail))
            if answer.status >= 300 and not answer.provisional:
                return answer  # e.g. the rail refused the payer: the packet stays unpaid
            current = await self.store.red_packets.load(pid) or current
        body = await self.render(current, full_payment=True)
        return Reply(201 if isinstance(outcome, Recorded) else 200, orjson.dumps(body))

    def _route(self, merchant: Merchant, funding: PaymentRequest, payment_id: str
               ) -> tuple[str, dict[str, Any]]:
        """The funding payment's rail, and a dry run of its charge there: a request the
        rail cannot take is refused before the packet is written."""
        try:
            rail, routing = self.router.choose(merchant, funding)
            notify = f"{self.settings.server.base_url()}/v1/notify/{rail}"
            charge = Charge(rail_order_no(payment_id, 1), funding.amount, funding.currency,
                            funding.scene, funding.description, funding.payer, notify,
                            funding.metadata)
            self.payments.creator.rails.build(rail, charge)
        except RouterError as err:
            err.param = f"funding.{err.param}" if err.param else "funding"
            raise
        except RailError as err:
            refused = rail_refused_request(err)
            refused.param = f"funding.payer.{err.param}" if err.param else "funding"
            raise refused from None
        return rail, routing

    # ----------------------------------------------------------------- funding
    async def funding_settled(self, payment: Payment) -> None:
        """A payment left processing: if it funds a packet, open or cancel that packet."""
        pid = funded_object(payment)
        if not pid:
            return
        packet = await self.store.red_packets.load(pid)
        if packet is None or packet.order.payment_id != payment.id:
            return
        await self.settle_funding(packet, payment)

    async def settle_funding(self, packet: Packet, payment: Payment | None) -> None:
        """Open the packet (its payment was paid) or cancel it (failed, closed, or never
        made). A payment paid after its packet was canceled is refunded whole."""
        kind = packet.order.kind
        opened = (payment is not None and payment.status is Status.SUCCEEDED
                  and funds(payment, packet))
        status = PacketStatus.OPEN if opened else PacketStatus.CANCELED
        after = Packet(packet.id, packet.order, status, packet.remaining_amount,
                       packet.remaining_count, "", 0, "", False, self.clock.now_ms())
        body = await self.render(after, full_payment=False)
        event_type = (_OPENED if opened else _CANCELED)[kind]
        event_id, event_body = packet_event(self.clock, after, event_type, body)
        if opened:
            next_due = str(packet.order.expires_ms)
        elif payment is None:
            # Canceled before any payment was made: one more look, in case a create was
            # making it at this very moment (the worker refunds such a payment whole).
            next_due = str(after.updated_ms + int(self.settings.social.funding_check_s * 1000))
        else:
            next_due = "-"
        changed = await self.store.red_packets.settle_funding(
            packet.id, status, after.updated_ms, next_due, event_id, event_body,
            packet.order.merchant_id)
        if not changed and opened and payment is not None:
            current = await self.store.red_packets.load(packet.id)
            if current is not None and current.status is PacketStatus.CANCELED:
                await self.payments.refunds.create(payment, RefundRequest(
                    amount=payment.amount, out_refund_no=f"{packet.id}-unused",
                    reason="Paid after its packet was canceled"))

    # ----------------------------------------------------------------- grab
    async def grab(self, merchant: Merchant, packet_id: str, user_id: str,
                   param: str = "user", name: str | None = None) -> Reply:
        """A share of the packet for `user_id` (a transfer's recipient accepting it, with
        `name` for a payout large enough to carry the verified real name)."""
        if keys.shard_of(packet_id) is None or not packet_id.startswith(("rp_", "tr_")):
            raise not_found("red packet")
        user = await self.users.verified(merchant.id, user_id, param)
        methods = [m for m in ("wechatpay", "alipay") if m in user.wallets]
        rail = rail_for(self.payments.creator.rails, self.router, methods[0]) if methods else None
        if rail is None:
            raise validation_error(param, "The user has no wallet the router can pay out to.")
        payout_id = keys.child_id("po", packet_id, user_id)
        transfer = packet_id.startswith("tr_")
        order = PayoutOrder(
            merchant.id, "grab_" + payout_id.removeprefix("po_"), "CNY", {"user": user_id},
            methods[0], rail, user.wallets[methods[0]][_USER_WALLET[methods[0]]],
            "Transfer" if transfer else "Red packet", self.clock.now_ms(), f"rp:{packet_id}",
            name)
        outcome = await self.store.red_packets.grab(
            merchant.id, packet_id, user_id, secrets.randbits(31), payout_id, order.pack(),
            PayoutState().pack(), grab_spec(self.settings, merchant, keys.shard_in(packet_id)))
        match outcome:
            case Grabbed(grab, new):
                self.metrics.grabs.labels("grabbed" if new else "again").inc()
                if new:
                    self.metrics.live.count("red_packet.grabs")
                body = grab.to_json(packet_id, "processing", False)
                return Reply(201 if new else 200, orjson.dumps(body))
            case Limited():
                raise too_many(outcome, "grab")
            case GrabRefusal.MISSING:
                raise not_found("transfer" if transfer else "red packet")
            case _:
                self.metrics.grabs.labels(outcome.value).inc()
                raise _grab_refused(outcome)

    # ----------------------------------------------------------------- views
    async def render(self, packet: Packet, *, full_payment: bool) -> dict[str, Any]:
        grabbed = packet.remaining_count < packet.order.count
        grabs = await self.store.red_packets.grabs(packet.id) if grabbed else []
        statuses = (await self.store.payouts.statuses([g.payout_id for g in grabs])
                    if grabs else {})
        payment: dict[str, Any] = {"id": packet.order.payment_id}
        if full_payment:
            loaded = await self.store.payments.load(packet.order.payment_id)
            if loaded is not None:
                payment = loaded.to_json()
        return packet.to_json(payment, grabs, statuses)

    async def owned(self, merchant: Merchant, packet_id: str, kind: Kind) -> Packet:
        packet = await self.store.red_packets.load(packet_id)
        if (packet is None or packet.order.merchant_id != merchant.id
                or packet.order.kind is not kind):
            raise not_found(kind.value.replace("_", " "))
        return packet


def funds(payment: Payment, packet: Packet) -> bool:
    """The payment is this packet's funding, untouched: the packet's id, amount and
    currency, nothing refunded from it."""
    return (funded_object(payment) == packet.id and payment.amount == packet.order.amount
            and payment.currency == packet.order.currency and payment.refunded_amount == 0)


def _grab_refused(refusal: GrabRefusal) -> RouterError:
    match refusal:
        case GrabRefusal.EMPTY:
            return RouterError(409, "red_packet_empty", "Every share has been taken.")
        case GrabRefusal.EXPIRED:
            return RouterError(409, "red_packet_expired", "The red packet has expired.")
        case GrabRefusal.NOT_OPEN:
            return RouterError(409, "red_packet_not_open", "The red packet is not paid yet.")
        case GrabRefusal.NOT_RECIPIENT:
            return RouterError(403, "not_recipient", "Only its recipient can take it.")
        case GrabRefusal.MISSING:
            return not_found("red packet")


def _funding(req: NewPacket, packet_id: str) -> PaymentRequest:
    f = req.funding
    meta_key = "red_packet" if req.kind is Kind.RED_PACKET else "transfer"
    return PaymentRequest(
        amount=req.amount, currency=req.currency,
        description=(req.note or req.kind.value.replace("_", " ").capitalize())[:127],
        scene=f.scene, method=f.method, payer=f.payer, notify_url=None,
        metadata={meta_key: packet_id}, out_trade_no=funding_trade_no(packet_id))


def packet_event(clock: Clock, packet: Packet, event_type: str,
                 body: dict[str, Any]) -> tuple[str, bytes]:
    return event(clock, keys.shard_in(packet.id), event_type, orjson.dumps(body),
                 packet.updated_ms)
