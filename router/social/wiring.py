"""The social domain's parts, wired for one gateway process."""

from __future__ import annotations

from dataclasses import dataclass
from typing import final

from router.clock import Clock
from router.ops.metrics import Metrics
from router.payments import Payments
from router.rails.client import RailClient
from router.routing import Router
from router.settings import Settings
from router.social.expiry import PacketWorker
from router.social.payout_create import PayoutDesk
from router.social.payouts import PayoutSender
from router.social.red_packets import RedPackets
from router.social.users import Users
from router.store.store import Store


@final
@dataclass(frozen=True, slots=True)
class Social:
    users: Users
    payouts: PayoutSender
    payout_desk: PayoutDesk
    packets: RedPackets
    worker: PacketWorker

    @classmethod
    def wire(cls, store: Store, payments: Payments, rails: RailClient, router: Router,
             settings: Settings, metrics: Metrics, clock: Clock) -> Social:
        users = Users(store.users)
        sender = PayoutSender(store, rails, settings, metrics, clock)
        packets = RedPackets(store, payments, router, users, settings, metrics, clock)
        worker = PacketWorker(store, packets, payments, settings, clock)
        payments.transitions.listeners.append(packets.funding_settled)
        sender.listeners.append(worker.payout_ended)
        return cls(users=users, payouts=sender,
                   payout_desk=PayoutDesk(store, sender, users, rails, router, settings, clock),
                   packets=packets, worker=worker)
