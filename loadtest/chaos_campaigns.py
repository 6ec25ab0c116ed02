"""The chaos run's campaigns (`loadtest/chaos.py`): before the load, a few discount and
cashback campaigns on the run's merchant with budgets small enough to run out during the
run, first-N and per-payer limits; a share of the payment load's payments name a payer
(`payer.openid`, or `payer.buyer_id` on Alipay) from a small pool, so the limits bite.
While gateways are killed, some paid payments that carry a reward are refunded (fully or
in part: claw-backs); the load's own failures and closes are the releases. After the
grace, `settle_campaigns` reads back what the checker (`chaos_campaigns_check.py`) needs.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from loadtest.chaos_payments import PAID, Planned
from loadtest.chaos_social_plan import Answer, Api
from loadtest.progress import Progress
from router.store.keys import child_id

NAMED_SHARE = 0.5  # of the load's payments name a payer
REFUND_SHARE = 0.35  # of the paid ones carrying a reward are refunded
PAYERS_PER_RAIL = 8  # openids (WeChat Pay, bank) and Alipay buyer ids each
# The identity's last character decides a cashback payout at the simulator
# (adapters/simkit/payees.py): `2` refused for good (the reward is released), `9` paid
# with the answer lost, anything else paid.
PAYER_ENDINGS = ("1", "3", "5", "7", "2", "9", "4", "6")
REFUND_409_TRIES = 12  # a refund waits out a cashback payout in flight (409 invalid_state)
FIRST_N = 6
PER_PAYER = {"count": 3, "amount": 400}


@dataclass
class CampaignPlan:
    bodies: list[dict[str, Any]]  # what POST /v1/campaigns gets, in order
    named: list[Planned]  # the load's payments that name a payer
    ids: list[str] = field(default_factory=list)  # the campaigns made (same order)
    refunds: dict[int, list[str]] = field(default_factory=dict)  # planned index -> answers
    refund_asks: dict[int, int] = field(default_factory=dict)  # planned index -> amount

    @property
    def identities(self) -> set[str]:
        return {payer_identity(p) for p in self.named}


def payer_identity(p: Planned) -> str:
    payer = p.body["payer"]
    return str(payer.get("openid") or payer.get("buyer_id"))


def campaign_bodies(count: int) -> list[dict[str, Any]]:
    """Discounts and cashbacks in turn; once the older of a kind is spent, the next of that
    kind takes over (the oldest live one matches)."""
    bodies = []
    for i in range(count):
        kind = "discount" if i % 2 == 0 else "cashback"
        reward = ({"type": "random", "amount": 10, "max": 200} if kind == "discount"
                  else {"type": "percent", "percent_bp": 500, "max": 300})
        bodies.append({"name": f"chaos {kind} {i}", "kind": kind, "reward": reward,
                       "conditions": {},
                       "limits": {"budget": 500 + 1000 * (i // 2), "first_n_payers": FIRST_N,
                                  "per_payer": PER_PAYER}})
    return bodies


def plan_campaigns(planned: list[Planned], count: int, seed: int) -> CampaignPlan:
    """Name payers on a share of `planned` (their bodies change in place)."""
    if count <= 0:
        return CampaignPlan([], [])
    rng = random.Random(seed + 21)
    named = []
    for p in planned:
        if rng.random() >= NAMED_SHARE:
            continue
        end = rng.choice(PAYER_ENDINGS)
        who = rng.randrange(PAYERS_PER_RAIL)
        if p.rail == "alipay":
            payer = {"buyer_id": f"2088chaos{who:03d}{end}"}
        else:
            payer = {"openid": f"ochaos-cmp-{who:03d}{end}"}
        p.body["payer"] = {**p.body.get("payer", {}), **payer}
        named.append(p)
    return CampaignPlan(campaign_bodies(count), named)


async def make_campaigns(api: Api, plan: CampaignPlan, seed: int) -> None:
    for i, body in enumerate(plan.bodies):
        made = await api.call("POST", "/v1/campaigns", body, key=f"chaos-cmp-{seed}-{i}")
        if made is None or made.status != 201:
            raise RuntimeError(f"could not make campaign {body['name']}: "
                               f"{made.status if made else 'no answer'} "
                               f"{made.body if made else ''}")
        plan.ids.append(str(made.body["id"]))


async def read_payment(api: Api, p: Planned) -> dict[str, Any] | None:
    got = await api.call("GET", f"/v1/payments?out_trade_no={p.body['out_trade_no']}")
    return got.body if got is not None and got.status == 200 else None


class CampaignLoad:
    """Refunds paid payments carrying a reward while the load runs (and kills fall)."""

    def __init__(self, api: Api, plan: CampaignPlan, seed: int) -> None:
        self.api = api
        self.plan = plan
        self.rng = random.Random(seed + 22)

    async def run(self, seconds: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        decided: set[int] = set()
        tasks: list[asyncio.Task[None]] = []
        while loop.time() < deadline:
            await asyncio.sleep(1.0)
            waiting = [p for p in self.plan.named if p.acks and p.index not in decided]
            for p, payment in zip(waiting, await asyncio.gather(
                    *(read_payment(self.api, p) for p in waiting)), strict=True):
                if payment is None or payment["status"] in ("processing", "requires_action"):
                    continue
                decided.add(p.index)
                if (payment["status"] in PAID and payment.get("promotions")
                        and self.rng.random() < REFUND_SHARE):
                    amount = payment["amount"]
                    ask = amount if self.rng.random() < 0.5 or amount < 2 else \
                        self.rng.randint(1, amount - 1)
                    tasks.append(asyncio.create_task(self.refund(p, payment["id"], ask)))
        await asyncio.gather(*tasks)

    async def refund(self, p: Planned, payment_id: str, amount: int) -> None:
        otn = p.body["out_trade_no"]
        self.plan.refund_asks[p.index] = amount
        answers = self.plan.refunds.setdefault(p.index, [])
        body = {"amount": amount, "out_refund_no": f"r-{otn}", "reason": "chaos"}
        for _ in range(REFUND_409_TRIES):
            got: Answer | None = await self.api.call(
                "POST", f"/v1/payments/{payment_id}/refunds", body, key=f"refund-{otn}")
            answers.append(f"{got.status} {got.code}" if got else "no answer")
            if got is None or got.status != 409 or got.code != "invalid_state":
                return
            await asyncio.sleep(0.5)  # the cashback's payout is in flight


@dataclass
class CampaignsSeen:
    campaigns: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    payments: dict[int, dict[str, Any] | None] = field(default_factory=dict)
    payouts: dict[str, dict[str, Any] | None] = field(default_factory=dict)  # by payout id


def cashback_payout_id(campaign: str, payment_id: str) -> str:
    """The id the keeper gives a cashback's payout (derived: once per campaign and
    payment)."""
    return child_id("po", campaign, payment_id)


async def read_all(api: Api, plan: CampaignPlan) -> CampaignsSeen:
    seen = CampaignsSeen()
    limit = asyncio.Semaphore(32)

    async def get(path: str) -> dict[str, Any] | None:
        async with limit:
            got = await api.call("GET", path)
        return got.body if got is not None and got.status == 200 else None

    for cid in plan.ids:
        seen.campaigns[cid] = await get(f"/v1/campaigns/{cid}")
    payments = await asyncio.gather(
        *(get(f"/v1/payments?out_trade_no={p.body['out_trade_no']}") for p in plan.named))
    seen.payments = {p.index: pay for p, pay in zip(plan.named, payments, strict=True)}
    wanted = [cashback_payout_id(r["campaign"], pay["id"]) for pay in payments if pay
              for r in pay.get("promotions") or () if r["kind"] == "cashback"]
    for pid, payout in zip(wanted, await asyncio.gather(
            *(get(f"/v1/payouts/{pid}") for pid in wanted)), strict=True):
        seen.payouts[pid] = payout
    return seen


def unsettled(seen: CampaignsSeen) -> int:
    """What the keeper may still be working on: payouts or refunds in flight."""
    busy = sum(1 for po in seen.payouts.values() if po and po["status"] == "processing")
    busy += sum(1 for pay in seen.payments.values()
                if pay and pay["status"] == "processing")
    return busy


async def settle_campaigns(api: Api, plan: CampaignPlan, grace_s: float,
                           settled: Callable[[CampaignsSeen], bool]) -> CampaignsSeen:
    """Read the campaigns, their payments and payouts until `settled(seen)` is true (the
    checker finds nothing) or the grace runs out."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + grace_s
    progress = Progress("chaos campaigns", len(plan.ids), "campaigns")
    while True:
        seen = await read_all(api, plan)
        busy = unsettled(seen)
        if (busy == 0 and settled(seen)) or loop.time() >= deadline:
            progress.finish(f"{len(plan.ids)} campaigns read, {busy} items in flight")
            return seen
        progress.show(0, None, deadline - loop.time(),
                      f"{busy} payouts or payments in flight, or spent not yet in line")
        await asyncio.sleep(1.0)
