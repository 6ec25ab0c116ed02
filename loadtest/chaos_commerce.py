"""The chaos run's commerce load: pre-authorisations and profit sharing under gateway
kills (what is planned: `chaos_commerce_plan`).

Each authorization is created, waited for while its answer was lost, then captured,
voided, captured and voided at once, or left to expire; each split payment is paid,
split (its splits at once), and perhaps refunded once its splits ended. Chosen ones get a
gateway SIGKILL the moment their capture, void or splits go out. Every answer is kept for
the checker (`chaos_commerce_check`).
"""

from __future__ import annotations

import asyncio
import random
import secrets
from dataclasses import dataclass
from typing import Any

import aiohttp

from loadtest.chaos_commerce_plan import (
    CommercePlan,
    PlannedAuth,
    PlannedSplit,
    PlannedSplitPayment,
)
from loadtest.chaos_social_plan import Api
from loadtest.chaos_stack import GatewayKiller
from loadtest.procs import BenchError

POLL_S = 0.25
SETTLE_TRIES = 80  # polls of a hold or payment whose answer was lost (~20 s)
HELD = frozenset({"authorized"})
PAID = frozenset({"succeeded", "partially_refunded", "refunded"})
ADMIN_TOKEN = secrets.token_urlsafe(24)  # the run's gateways are configured with it
# The shop's WeChat Pay merchant numbers (sub_mchid): the one whose payments are shared,
# another that receives shares, and one whose account is frozen (ending in 2).
SHOP_MCHID, RECEIVER_MCHID, FROZEN_MCHID = "1900000101", "1900000105", "1900000102"
PROVIDER_ACCOUNT = "1230000109"  # the provider's own account for its shares
PARTNER_TABLE = "wechatpay-sp"  # the provider's rail table (partner mode, WeChat Pay)


@dataclass(frozen=True)
class Partners:
    """The service provider and its sub-merchants, as onboarded for the run."""

    provider_id: str
    provider_key: str
    shop_id: str  # whose payments are shared
    receiver_id: str  # another sub-merchant that receives shares
    frozen_id: str  # one whose receiving account the rail refuses

    def receiver(self, kind: str, amount: int) -> dict[str, Any]:
        if kind == "provider":
            return {"type": "service_provider", "id": self.provider_id, "amount": amount}
        target = self.frozen_id if kind == "frozen" else self.receiver_id
        return {"type": "merchant", "id": target, "amount": amount}


def shop_api(session: aiohttp.ClientSession, urls: list[str], partners: Partners,
             seed: int) -> Api:
    """The provider's client acting for its shop (`Payrouter-Account`)."""
    api = Api(session, urls, partners.provider_key, seed + 10)
    api.auth["Payrouter-Account"] = partners.shop_id
    return api


async def onboard(session: aiohttp.ClientSession, urls: list[str]) -> Partners:
    """A service provider with its own WeChat Pay table and account, and three
    sub-merchants; before the load, through the first gateway."""
    base = urls[0]
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    created = await _post(session, f"{base}/v1/admin/service_providers", admin, {
        "name": "Chaos provider", "rails": {"wechatpay": PARTNER_TABLE},
        "accounts": {"wechatpay": PROVIDER_ACCOUNT}})
    key = str(created["api_key"])
    auth = {"Authorization": f"Bearer {key}"}
    ids = []
    for name, mchid in (("shop", SHOP_MCHID), ("receiver", RECEIVER_MCHID),
                        ("frozen", FROZEN_MCHID)):
        merchant = await _post(session, f"{base}/v1/sub_merchants", auth,
                               {"name": f"Chaos {name}", "wechatpay": {"sub_mchid": mchid}})
        ids.append(str(merchant["id"]))
    return Partners(str(created["id"]), key, *ids)


async def _post(session: aiohttp.ClientSession, url: str, headers: dict[str, str],
                body: dict[str, Any]) -> dict[str, Any]:
    async with session.post(url, json=body, headers=headers) as resp:
        answer: dict[str, Any] = await resp.json(content_type=None)
        if resp.status not in (200, 201):
            raise BenchError(f"POST {url}: {resp.status} {answer}")
        return answer


class CommerceLoad:
    def __init__(self, api: Api, shop: Api, partners: Partners, killer: GatewayKiller,
                 seed: int) -> None:
        self.api = api  # the merchant's: authorizations
        self.shop = shop  # the provider acting for its shop: split payments
        self.partners = partners
        self.killer = killer
        self.rng = random.Random(seed + 11)
        self.kills: list[asyncio.Task[None]] = []

    async def run(self, plan: CommercePlan) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()

        async def one(item: PlannedAuth | PlannedSplitPayment) -> None:
            await asyncio.sleep(max(0.0, start + item.start_s - loop.time()))
            try:
                if isinstance(item, PlannedAuth):
                    await self.authorization(item)
                else:
                    await self.split_payment(item)
            finally:
                if item.kill:  # it never got as far as its capture, void or splits: the
                    self._kill_now(item)  # kill comes now, so kills stay counted
                item.done = True

        await asyncio.gather(*(one(a) for a in plan.authorizations),
                             *(one(p) for p in plan.payments))
        await asyncio.gather(*self.kills)

    def _kill_now(self, item: PlannedAuth | PlannedSplitPayment) -> None:
        item.kill = False  # once

        async def soon() -> None:
            await asyncio.sleep(self.rng.uniform(0.0, 0.05))
            await self.killer.kill_one("commerce")

        self.kills.append(asyncio.create_task(soon()))

    # ----------------------------------------------------------------- authorizations
    async def authorization(self, a: PlannedAuth) -> None:
        got = await self.api.call("POST", "/v1/authorizations", a.body, a.key)
        a.created.append(str(got) if got else "no answer")
        if got is None or got.status not in (200, 201):
            return
        a.id = str(got.body["id"])
        status = await self._wait_held(a, str(got.body["status"]))
        if status not in HELD or a.action == "expire":
            return
        await asyncio.sleep(self.rng.uniform(0.0, 2.0))
        if a.kill:
            self._kill_now(a)
        acts = {"capture": (self.capture,), "capture_all": (self.capture,),
                "void": (self.void,), "race": (self.capture, self.void)}[a.action]
        await asyncio.gather(*(act(a) for act in acts))

    async def _wait_held(self, a: PlannedAuth, status: str) -> str:
        """A hold whose answer was lost is `processing` until the sweeper learns it."""
        for _ in range(SETTLE_TRIES):
            if status != "processing":
                return status
            await asyncio.sleep(POLL_S)
            got = await self.api.call("GET", f"/v1/authorizations/{a.id}")
            if got is not None and got.status == 200:
                status = str(got.body["status"])
        return status

    async def capture(self, a: PlannedAuth) -> None:
        got = await self.api.call("POST", f"/v1/authorizations/{a.id}/capture",
                                  {"amount": a.capture_amount, "out_trade_no": a.out_trade_no},
                                  f"{a.key}-capture")
        if got is not None and got.status in (200, 201):
            a.captures.append((got.status, str(got.body["id"]), str(got.body["status"])))
        else:
            a.refusals.append(f"capture {got}" if got else "capture: no answer")

    async def void(self, a: PlannedAuth) -> None:
        got = await self.api.call("POST", f"/v1/authorizations/{a.id}/void", None,
                                  f"{a.key}-void")
        if got is not None and got.status == 200:
            a.voids.append((got.status, str(got.body["status"])))
        else:
            a.refusals.append(f"void {got}" if got else "void: no answer")

    # ----------------------------------------------------------------- split payments
    async def split_payment(self, p: PlannedSplitPayment) -> None:
        got = await self.shop.call("POST", "/v1/payments", p.body, p.key)
        if got is None or got.status not in (200, 201):
            p.status = str(got) if got else "no answer"
            return
        p.id = str(got.body["id"])
        p.status = str(got.body["status"])
        for _ in range(SETTLE_TRIES):
            if p.status not in ("processing", "requires_action"):
                break
            await asyncio.sleep(POLL_S)
            seen = await self.shop.call("GET", f"/v1/payments/{p.id}")
            if seen is not None and seen.status == 200:
                p.status = str(seen.body["status"])
        p.paid = p.status in PAID
        if not p.paid:
            return
        if p.kill:
            self._kill_now(p)
        await asyncio.gather(*(self.split(p, s) for s in p.splits))
        if p.refund:
            await self._refund_when_shared(p)

    async def split(self, p: PlannedSplitPayment, s: PlannedSplit) -> None:
        body = {"out_split_no": s.out_split_no,
                "receivers": [self.partners.receiver(kind, amount)
                              for kind, amount in s.receivers]}
        got = await self.shop.call("POST", f"/v1/payments/{p.id}/splits", body,
                                   f"{p.key}-{s.out_split_no}")
        if got is not None and got.status in (200, 201):
            s.answers.append((got.status, str(got.body["id"]), str(got.body["status"])))
        else:
            s.refused = got.code or str(got.status) if got else "no answer"

    async def _refund_when_shared(self, p: PlannedSplitPayment) -> None:
        """Refund once no split is processing (money in a split in flight cannot be
        taken back: 409)."""
        for _ in range(SETTLE_TRIES):
            got = await self.shop.call("GET", f"/v1/payments/{p.id}/splits")
            if got is not None and got.status == 200 and all(
                    s["status"] != "processing" for s in got.body["data"]):
                break
            await asyncio.sleep(POLL_S)
        body = {"amount": p.refund, "out_refund_no": f"{p.body['out_trade_no']}-r"}
        got = await self.shop.call("POST", f"/v1/payments/{p.id}/refunds", body,
                                   f"{p.key}-refund")
        if got is not None:
            p.refund_answers.append((got.status, str(got.body.get("id", "")),
                                     got.code or str(got.body.get("status"))))
