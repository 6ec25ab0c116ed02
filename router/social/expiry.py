"""A packet's worker, run by the sweeper for each `rp:<id>` entry that comes due: sends
its pending event, opens it if its funding payment was paid while no listener heard, and
at expiry works out and refunds what goes back to the sender, exactly once.

Each step is a script guarded by the packet's state, and the entry stays due until the
last step is done, so a worker that dies mid-way only delays the rest.
"""

from __future__ import annotations

import logging
from typing import Final, final

from router.clock import Clock
from router.domain import UNSETTLED, RefundStatus, Status
from router.errors import invalid_state
from router.payments import Payments
from router.settings import Settings
from router.social.packets import Kind, Packet, PacketStatus
from router.social.records import Payout, PayoutStatus
from router.social.red_packets import RedPackets, packet_event
from router.store import keys
from router.store.red_packets import Expired, ExpiryWait
from router.store.store import Store
from router.validation import RefundRequest

log = logging.getLogger("payrouter.red_packets")

_EVENTS: Final = {
    (Kind.RED_PACKET, "finished"): "red_packet.finished",
    (Kind.RED_PACKET, "expired"): "red_packet.expired",
    (Kind.RED_PACKET, "refunded"): "red_packet.refunded",
    (Kind.TRANSFER, "finished"): "transfer.accepted",
    (Kind.TRANSFER, "expired"): "transfer.returned",
    (Kind.TRANSFER, "refunded"): "transfer.returned",
}
_RETRY_MS: Final = 2_000


@final
class PacketWorker:
    __slots__ = ("clock", "packets", "payments", "settings", "store")

    def __init__(self, store: Store, packets: RedPackets, payments: Payments,
                 settings: Settings, clock: Clock) -> None:
        self.store = store
        self.packets = packets
        self.payments = payments
        self.settings = settings
        self.clock = clock

    async def work(self, packet_id: str, why: str = "") -> None:
        packet = await self.store.red_packets.load(packet_id)
        if packet is None:
            await self._due(packet_id, None)
            return
        if packet.expiry_done and packet.refunded and not await self._refund(packet):
            # The refund is not done yet (in flight, or failed and made again): its event
            # and the end of the packet's entry wait for it.
            await self._due(packet_id, self.clock.now_ms() + _RETRY_MS)
            return
        if packet.pending_event:
            await self._send_event(packet)
            packet = await self.store.red_packets.load(packet_id) or packet
        match packet.status:
            case PacketStatus.AWAITING_PAYMENT:
                await self._funding(packet)
            case PacketStatus.OPEN | PacketStatus.FINISHED if not packet.expiry_done:
                await self._expire(packet, why)
            case PacketStatus.CANCELED:
                await self._canceled(packet)
            case _:
                await self._due(packet_id, None)

    async def decline(self, packet: Packet) -> Packet:
        """A transfer's recipient says no: it goes back now."""
        await self._expire(packet, "decline")
        return await self.store.red_packets.load(packet.id) or packet

    async def payout_ended(self, payout: Payout) -> None:
        """A grab's payout ended: a transfer whose payout failed goes back at once."""
        source = payout.order.source.removeprefix("rp:")
        if source.startswith("tr_") and payout.status is PayoutStatus.FAILED:
            await self.work(source, "payout_failed")

    async def _funding(self, packet: Packet) -> None:
        payment = await self.store.payments.load(packet.order.payment_id)
        if payment is not None and payment.status not in UNSETTLED:
            await self.packets.settle_funding(packet, payment)
            return
        later = self.clock.now_ms() + int(self.settings.social.funding_check_s * 1000)
        if payment is None and self.clock.now_ms() > packet.order.expires_ms:
            # Its creator died before the payment and nobody retried: nothing was paid.
            await self.packets.settle_funding(packet, None)
            return
        await self._due(packet.id, later)

    async def _expire(self, packet: Packet, why: str) -> None:
        grabs = await self.store.red_packets.grabs(packet.id)
        verdict = await self.store.red_packets.expire(
            packet.id, [g.payout_id for g in grabs], len(grabs), why)
        match verdict:
            case Expired(refund):
                reloaded = await self.store.red_packets.load(packet.id)
                if reloaded is not None:
                    if refund and not await self._refund(reloaded):
                        await self._due(packet.id, self.clock.now_ms() + _RETRY_MS)
                    elif reloaded.pending_event:
                        await self._send_event(reloaded)
                    else:
                        await self._due(packet.id, None)
            case ExpiryWait.EARLY:
                await self._due(packet.id, packet.order.expires_ms)
            case ExpiryWait.PAYOUTS_IN_FLIGHT | ExpiryWait.RETRY | ExpiryWait.EVENT_PENDING:
                await self._due(packet.id, self.clock.now_ms() + _RETRY_MS)
            case ExpiryWait.NOT_EXPIRABLE | ExpiryWait.MISSING:
                if why == "decline":
                    raise invalid_state("Only a transfer awaiting acceptance can be declined.")
                await self._due(packet.id, None)

    async def _refund(self, packet: Packet) -> bool:
        """Give the sender back what the packet did not pay out, as refunds of its funding
        payment numbered after the packet (`<id>-back`, then `-back-2`... after a refund
        the rail refused), so each is made once however often this runs. True once
        refunds that succeeded cover it."""
        payment = await self.store.payments.load(packet.order.payment_id)
        if payment is None:
            return True
        for _ in range(2):
            ours = [r for r in await self.store.refunds.of_payment(payment.id)
                    if r.out_refund_no.startswith(f"{packet.id}-back")]
            if any(r.status is RefundStatus.PROCESSING for r in ours):
                return False
            left = packet.refunded - sum(r.amount for r in ours
                                         if r.status is RefundStatus.SUCCEEDED)
            if left <= 0:
                return True
            number = f"{packet.id}-back" + (f"-{len(ours) + 1}" if ours else "")
            reason = ("Red packet expired" if packet.order.kind is Kind.RED_PACKET
                      else "Transfer returned")
            await self.payments.refunds.create(payment, RefundRequest(
                amount=left, out_refund_no=number, reason=reason))
        return False

    async def _canceled(self, packet: Packet) -> None:
        """A packet canceled before its payment was made: a payment that a create was
        making at that moment, and that was paid, goes back whole."""
        payment = await self.store.payments.load(packet.order.payment_id)
        if payment is not None and payment.status in UNSETTLED:
            later = self.clock.now_ms() + int(self.settings.social.funding_check_s * 1000)
            await self._due(packet.id, later)
            return
        if payment is not None and payment.status is Status.SUCCEEDED:
            await self.payments.refunds.create(payment, RefundRequest(
                amount=payment.amount, out_refund_no=f"{packet.id}-unused",
                reason="Paid after its packet was canceled"))
        await self._due(packet.id, None)

    async def _send_event(self, packet: Packet) -> None:
        event_type = _EVENTS.get((packet.order.kind, packet.pending_event))
        body = await self.packets.render(packet, full_payment=False)
        event_id, event_body = packet_event(self.clock, packet, event_type or "", body)
        if packet.expiry_done or packet.status is PacketStatus.EXPIRED:
            next_due = "-"
        else:
            next_due = str(packet.order.expires_ms)
        await self.store.red_packets.send_event(packet, event_id if event_type else "",
                                                event_body, next_due)

    async def _due(self, packet_id: str, due_ms: int | None) -> None:
        await self.store.due.reschedule(keys.shard_in(packet_id), f"rp:{packet_id}", due_ms)
