"""The store: every Redis command the gateway issues, one module per domain.

`Store` only gathers them over one `Runner` (the link and the durability profile), so
a handler or worker reaches Redis through `store.<domain>.<method>` and nowhere else.
Each method is one round trip (one script or one command) and returns typed results,
never raw Redis replies.
"""

from __future__ import annotations

from typing import final

from router.store.authorizations import AuthorizationStore
from router.store.campaigns import CampaignStore
from router.store.coupons import CouponStore
from router.store.due import DueStore
from router.store.health import HealthStore
from router.store.idempotency import IdempotencyStore
from router.store.interop import InteropStore
from router.store.invoices import InvoiceStore
from router.store.journal import JournalStore
from router.store.limits import LimitStore
from router.store.link import RedisLink
from router.store.live import LiveStore
from router.store.merchants import MerchantStore
from router.store.outbox import OutboxStore
from router.store.payments import PaymentStore
from router.store.payouts import PayoutStore
from router.store.points import PointsStore
from router.store.policies import PolicyStore
from router.store.providers import ProviderStore
from router.store.red_packets import RedPacketStore
from router.store.refunds import RefundStore
from router.store.runner import ReplicationShortfall, Runner, StoreUnavailable
from router.store.sessions import SessionStore
from router.store.splits import SplitStore
from router.store.users import UserStore

__all__ = ["ReplicationShortfall", "Store", "StoreUnavailable"]


@final
class Store:
    __slots__ = ("authorizations", "campaigns", "coupons", "due", "health", "idempotency",
                 "interop", "invoices", "journal", "limits", "link", "live", "merchants",
                 "outbox", "payments", "payouts", "points", "policies", "providers",
                 "red_packets", "refunds", "sessions", "splits", "users")

    def __init__(self, link: RedisLink, *, shards: int, idem_ttl_s: int, replicas: int = 0,
                 wait_timeout_ms: int = 100) -> None:
        runner = Runner(link, idem_ttl_s=idem_ttl_s, replicas=replicas,
                        wait_timeout_ms=wait_timeout_ms)
        self.link = link
        self.payments = PaymentStore(runner)
        self.refunds = RefundStore(runner)
        self.idempotency = IdempotencyStore(runner)
        self.limits = LimitStore(runner)
        self.due = DueStore(runner)
        self.merchants = MerchantStore(runner)
        self.outbox = OutboxStore(runner, shards)
        self.interop = InteropStore(runner)
        self.health = HealthStore(runner)
        self.users = UserStore(runner, shards)
        self.journal = JournalStore(runner)
        self.payouts = PayoutStore(runner)
        self.red_packets = RedPacketStore(runner)
        self.authorizations = AuthorizationStore(runner)
        self.live = LiveStore(runner)
        self.sessions = SessionStore(runner)
        self.providers = ProviderStore(runner)
        self.splits = SplitStore(runner)
        self.invoices = InvoiceStore(runner)
        self.policies = PolicyStore(runner)
        self.points = PointsStore(runner)
        self.campaigns = CampaignStore(runner)
        self.coupons = CouponStore(runner)

    async def ping(self) -> None:
        """Raise unless Redis can serve requests now (readiness)."""
        await self.link.ping()

    async def aclose(self) -> None:
        await self.link.aclose()
