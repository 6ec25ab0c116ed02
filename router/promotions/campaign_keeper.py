"""Reservations brought in line with their payments: granted when the payment is paid
(a cashback once its payout is paid), released when it fails or closes (or the cashback
cannot be paid), clawed back as it is refunded, and forgotten when the request that
reserved died before the payment was written.

Every step is one campaign_settle.lua call, safe to repeat: the listeners below make it
happen at once (off the request's path), and the reservation's due entry in the
campaign's shard (`rv:<campaign>:<payment>`) makes the sweeper do it when a listener's
call was lost. The entry stays until the reward is final and no refund of the payment
is in flight.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, Final, final

import orjson

from adapters.base import RailError
from router.clock import Clock
from router.domain import UNSETTLED, Payment, Status
from router.errors import invalid_state
from router.promotions.applied import AppliedReward, RewardKind, discount_of
from router.rails.client import RailClient
from router.refund_record import Refund
from router.routing import Router
from router.settings import Settings
from router.social.payout_create import rail_for
from router.social.payouts import PayoutSender
from router.social.records import LARGE_PAYOUT, Payout, PayoutOrder, PayoutState, PayoutStatus
from router.social.users import Users
from router.store import keys
from router.store.campaigns import HoldAction
from router.store.outcomes import Recorded
from router.store.store import Store
from router.validation import digest

log = logging.getLogger("payrouter.campaigns")

_USER_WALLET = {"wechatpay": "openid", "alipay": "user_id"}
_BATCH_S: Final = 0.002


def clawed_total(reward: AppliedReward, payment: Payment) -> int:
    """The reward's share of what refunds have given back so far: ⌊refunded × reward /
    amount⌋, a running total, so rounding never drifts over several refunds."""
    return payment.refunded_amount * reward.amount // payment.amount


@final
class CampaignKeeper:
    __slots__ = ("_flush", "_settled", "_tasks", "clock", "lease_ms", "payouts", "rails",
                 "router", "settings", "store", "users")

    def __init__(self, store: Store, payouts: PayoutSender, users: Users, rails: RailClient,
                 router: Router, settings: Settings, clock: Clock, lease_ms: int) -> None:
        self.store = store
        self.payouts = payouts
        self.users = users
        self.rails = rails
        self.router = router
        self.settings = settings
        self.clock = clock
        self.lease_ms = lease_ms
        self._tasks: set[asyncio.Task[None]] = set()
        self._settled: list[Payment] = []  # waiting for the next batch (`payment_settled`)
        self._flush: asyncio.TimerHandle | None = None

    # ----------------------------------------------------------------- listeners
    async def payment_settled(self, payment: Payment) -> None:
        """A payment left processing: its rewards follow, off the request's path, in
        batches a few milliseconds apart: the batch's scripts start in one loop turn, so
        the store's auto-pipelining sends them in one write per node."""
        if not payment.promotions:
            return
        self._settled.append(payment)
        if self._flush is None:
            self._flush = asyncio.get_running_loop().call_later(_BATCH_S, self._keep_batch)

    def _keep_batch(self) -> None:
        batch, self._settled, self._flush = self._settled, [], None
        for payment in batch:
            self._spawn(self._keep_all(payment), payment.id)

    async def payout_ended(self, payout: Payout) -> None:
        """A cashback's payout ended: paid, the reward is granted; failed for good, it goes
        back to the budget."""
        source, _, payment_id = payout.order.source.rpartition(":")
        if not source.startswith("cmp:"):
            return
        campaign_id = source.removeprefix("cmp:")
        action = HoldAction.GRANT if payout.status is PayoutStatus.SUCCEEDED else HoldAction.RELEASE
        await self.store.campaigns.settle(campaign_id, payment_id, action, remove_due=True)

    async def refund_succeeded(self, refund: Refund) -> None:
        """A refund went through: each reward's share of it goes back to the budget."""
        payment = await self.store.payments.load(refund.payment_id)
        if payment is None or not payment.promotions:
            return
        await asyncio.gather(*(
            self.store.campaigns.settle(r.campaign, payment.id, HoldAction.GRANT,
                                        clawed_total(r, payment))
            for r in payment.promotions))

    async def refund_shares(self, payment: Payment) -> tuple[int, int]:
        """(discount, cashback paid) of a payment about to be refunded: the refund script
        keeps them out of what the rail refunds. A cashback still being paid makes the
        refund wait (409): whether it is deducted depends on its payout."""
        cashback = 0
        for reward in payment.promotions:
            if reward.kind is not RewardKind.CASHBACK:
                continue
            hold = await self.store.campaigns.hold(reward.campaign, payment.id)
            if hold is not None and hold.status == "reserved":
                raise invalid_state("The payment's cashback is still being paid; retry the "
                                    "refund once it is.")
            if hold is not None and hold.status != "released":
                cashback += reward.amount
        # Should a refund listener's call be lost, the sweeper claws the share back.
        due = self.clock.now_ms() + self.lease_ms
        await asyncio.gather(*(self.store.campaigns.look_again(r.campaign, payment.id, due)
                               for r in payment.promotions))
        return discount_of(payment.promotions), cashback

    # ----------------------------------------------------------------- sweeper
    async def work(self, shard: int, member: str, object_id: str) -> None:
        """The sweeper's look at `rv:<campaign>:<payment>`."""
        campaign_id, _, payment_id = object_id.partition(":")
        payment = await self.store.payments.load(payment_id)
        reward = next((r for r in payment.promotions if r.campaign == campaign_id),
                      None) if payment is not None else None
        if payment is None or reward is None:
            # The request that reserved died before writing the payment (or wrote it
            # without this reward): nobody will ever use the reservation.
            await self.store.campaigns.settle(campaign_id, payment_id, HoldAction.FORGET)
            return
        if await self._keep(reward, payment):
            reserved, refunded = await self.store.campaigns.refund_sums(payment_id)
            if reserved == refunded:
                await self.store.due.reschedule(shard, member, None)
                return
        await self.store.due.reschedule(shard, member, self.clock.now_ms() + self.lease_ms)

    # ----------------------------------------------------------------- the rules
    async def _keep_all(self, payment: Payment) -> None:
        await asyncio.gather(*(self._keep(r, payment, remove_due=True)
                               for r in payment.promotions))

    async def _keep(self, reward: AppliedReward, payment: Payment, *,
                    remove_due: bool = False) -> bool:
        """One step toward the reward's end; True when nothing is awaited any more."""
        campaigns = self.store.campaigns
        if payment.status in UNSETTLED:
            return False
        if payment.status in (Status.FAILED, Status.CLOSED):
            await campaigns.settle(reward.campaign, payment.id, HoldAction.RELEASE)
            return True
        clawed = clawed_total(reward, payment)
        if reward.kind is RewardKind.CASHBACK:
            hold = await campaigns.hold(reward.campaign, payment.id)
            if hold is None or hold.status == "released":
                return True
            if hold.status == "reserved":
                payout = await self._cashback(reward, payment)
                if payout is None or payout.status is PayoutStatus.FAILED:
                    await campaigns.settle(reward.campaign, payment.id, HoldAction.RELEASE)
                    return True
                if payout.status is PayoutStatus.PROCESSING:
                    return False
        await campaigns.settle(reward.campaign, payment.id, HoldAction.GRANT, clawed,
                               remove_due=remove_due)
        return True

    async def _cashback(self, reward: AppliedReward, payment: Payment) -> Payout | None:
        """The cashback's payout, made (once: its id derives from campaign and payment) if
        it was not yet; None when the payer cannot be paid (an unverified or unknown
        user, no wallet, no rail paying out that way)."""
        payout_id = keys.child_id("po", reward.campaign, payment.id)
        existing = await self.store.payouts.load(payout_id)
        if existing is not None:
            return existing
        payee = await self._payee(payment, reward.amount)
        if payee is None:
            return None
        shown, method, identity, name = payee
        rail = rail_for(self.rails, self.router, method)
        if rail is None:
            return None
        now = self.clock.now_ms()
        order = PayoutOrder(payment.merchant_id, f"{reward.campaign}-{payment.id}",
                            payment.currency, shown, method, rail, identity, "Cashback", now,
                            source=f"cmp:{reward.campaign}:{payment.id}", name=name)
        payout = Payout(payout_id, order, reward.amount, PayoutStatus.PROCESSING, 1, now,
                        PayoutState())
        try:
            self.rails.build(rail, self.payouts.op(payout))
        except RailError as err:
            log.warning("cashback of %s cannot be paid on %s (%s)", payment.id, rail, err.code)
            return None
        fingerprint = digest(orjson.dumps([reward.amount, payment.currency, shown, method]))
        first_due = now + int(self.settings.sweeper.first_check_s * 1000)
        created = await self.store.payouts.create(payout, fingerprint[:16], first_due)
        if isinstance(created, Recorded):
            return await self.payouts.send(payout)
        return await self.store.payouts.load(payout_id)

    async def _payee(self, payment: Payment, amount: int
                     ) -> tuple[dict[str, str], str, str, str | None] | None:
        """(payee as shown, method, identity at the rail, real name to carry)."""
        payer = payment.payer
        large = amount >= LARGE_PAYOUT and payment.currency == "CNY"
        if user_id := payer.get("user"):
            user = await self.users.get(payment.merchant_id, user_id)
            if user is None or not user.verified:
                return None
            method = next((m for m in ("wechatpay", "alipay") if m in user.wallets), None)
            if method is None:
                return None
            identity = user.wallets[method][_USER_WALLET[method]]
            return {"user": user_id}, method, identity, user.name if large else None
        if large:
            return None  # a large payout carries a verified name, which only a user has
        if openid := payer.get("openid"):
            return {"openid": openid}, "wechatpay", openid, None
        if buyer_id := payer.get("buyer_id"):
            return {"alipay_user_id": buyer_id}, "alipay", buyer_id, None
        return None

    def _spawn(self, work: Coroutine[Any, Any, None], payment_id: str) -> None:
        async def guarded() -> None:
            try:
                await work
            except Exception:
                # The reservation's due entry brings the sweeper back to it.
                log.exception("bringing the campaign rewards of %s in line failed", payment_id)

        task = asyncio.get_running_loop().create_task(guarded())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
