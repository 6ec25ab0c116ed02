"""The chaos run's payment load and its money checker.

A client creates payments across rails and scenes, retrying connection errors, 5xx and
`409 idempotency_key_in_use` with the same Idempotency-Key and body, as real clients do.
After the grace period the checker compares the router's records with every simulator's
ledger and counts double charges, lost acknowledged payments, router/ledger mismatches
and payments not final (see `loadtest/chaos.py`).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

from loadtest.chaos_stack import RAILS, Gateways, Simulators
from loadtest.procs import BenchError
from loadtest.progress import Progress

PAID = frozenset({"succeeded", "partially_refunded", "refunded"})
UNSETTLED = frozenset({"processing", "requires_action"})
# quickpay payer codes by last digit (SANDBOX.md): paid, declined, confirms late,
# never confirms (reversed), answer lost (learnt by querying).
CODE_DIGITS = ("1", "1", "1", "2", "5", "6", "9")
MAX_TRIES = 10


@dataclass
class Planned:
    """One payment the client makes, and what it learnt."""

    index: int
    rail: str
    scene: str
    body: dict[str, Any]
    key: str
    pay_native: bool = False  # native: the simulated payer pays it
    acks: list[tuple[int, str, str]] = field(default_factory=list)  # (http, id, status)
    native_paid: bool = False  # the simulator accepted the payer's payment
    answers: list[str] = field(default_factory=list)  # what each try got


@dataclass
class History:
    requests: int = 0
    retries: int = 0
    answers: Counter[str] = field(default_factory=Counter)
    events: list[dict[str, Any]] = field(default_factory=list)

    def record(self, planned: Planned, attempt: int, gateway: int, answer: str,
               status: str | None) -> None:
        self.requests += 1
        self.retries += attempt > 0
        self.answers[answer] += 1
        planned.answers.append(answer)
        self.events.append({"payment": planned.index, "attempt": attempt, "gateway": gateway,
                            "answer": answer, "status": status, "t": time.monotonic()})


def payer_code(rail: str, last: str) -> str:
    if rail == "wechatpay":
        return "13456789012345678" + last
    if rail == "alipay":
        return "287634438256641" + last
    return "621234567890123456" + last


def plan(payments: int, seed: int, native_share: float) -> list[Planned]:
    rng = random.Random(seed)
    out: list[Planned] = []
    for i in range(payments):
        rail = rng.choice(RAILS)
        otn = f"chaos-{seed}-{i}"
        body: dict[str, Any] = {"amount": rng.randint(1, 500) * 10, "currency": "CNY",
                                "out_trade_no": otn, "method": rail,
                                "description": f"chaos {i}"}
        pay_native = False
        if rng.random() < native_share:
            body["scene"] = "native"
            pay_native = rng.random() < 0.7
        else:
            body["scene"] = "quickpay"
            body["payer"] = {"auth_code": payer_code(rail, rng.choice(CODE_DIGITS))}
        out.append(Planned(i, rail, body["scene"], body, f"key-{otn}", pay_native))
    return out


class Client:
    def __init__(self, session: aiohttp.ClientSession, gateways: Gateways, api_key: str,
                 sims: Simulators, history: History, seed: int) -> None:
        self.session = session
        self.gateways = gateways
        self.auth = {"Authorization": f"Bearer {api_key}"}
        self.sims = sims
        self.history = history
        self.rng = random.Random(seed + 1)

    async def create(self, p: Planned) -> None:
        """POST the payment; retry errors with the same key and body (bounded)."""
        raw = orjson.dumps(p.body)
        headers = {**self.auth, "Idempotency-Key": p.key, "Content-Type": "application/json"}
        gw = self.rng.randrange(len(self.gateways.urls))
        for attempt in range(MAX_TRIES):
            if attempt:
                await asyncio.sleep(min(2.0, 0.1 * 2 ** attempt) * (0.5 + self.rng.random()))
            url = f"{self.gateways.urls[gw]}/v1/payments"
            try:
                async with self.session.post(url, data=raw, headers=headers) as resp:
                    status, replayed = resp.status, resp.headers.get("Idempotent-Replayed")
                    answer = orjson.loads(await resp.read())
            except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
                self.history.record(p, attempt, gw, type(exc).__name__, None)
                gw = (gw + 1) % len(self.gateways.urls)  # as a load balancer would
                continue
            if 200 <= status < 300:
                p.acks.append((status, answer["id"], answer["status"]))
                self.history.record(p, attempt, gw, str(status), answer["status"])
                return
            code = answer.get("error", {}).get("code", "")
            self.history.record(p, attempt, gw, f"{status} {code}",
                                answer.get("error", {}).get("payment_status"))
            if status < 500 and code != "idempotency_key_in_use" and status != 429:
                return  # the request itself is wrong: a client fixes it, not retries it
            if status >= 500 and replayed == "true":
                return  # the stored outcome (unknown) replays: the sweeper settles it

    async def find(self, otn: str) -> dict[str, Any] | None:
        """The payment with this out_trade_no (None: 404), from any live gateway."""
        last: Exception | None = None
        for attempt in range(MAX_TRIES * 2):
            gw = (attempt + self.rng.randrange(len(self.gateways.urls))) % len(
                self.gateways.urls)
            url = f"{self.gateways.urls[gw]}/v1/payments"
            try:
                async with self.session.get(url, params={"out_trade_no": otn},
                                            headers=self.auth) as resp:
                    if resp.status == 404:
                        return None
                    if resp.status == 200:
                        found: dict[str, Any] = orjson.loads(await resp.read())
                        return found
                    last = BenchError(f"GET {otn}: {resp.status} {await resp.text()}")
            except (TimeoutError, aiohttp.ClientError) as exc:
                last = exc
            # About half a minute in all: enough for gateways restarting while a Redis
            # Cluster fails over (each answers 503 or is not listening meanwhile).
            await asyncio.sleep(min(2.0, 0.2 * 1.3 ** attempt))
        raise BenchError(f"could not read payment {otn}: {last!r}")

    async def pay_native(self, p: Planned, deadline: float) -> None:
        """The simulated payer pays the native order (once its QR exists)."""
        loop = asyncio.get_running_loop()
        while loop.time() < deadline:
            payment = await self.find(p.body["out_trade_no"])
            if payment is not None and payment["status"] == "requires_action":
                order_no = payment["attempts"][-1]["rail_order_no"]
                url = f"{self.sims[p.rail][0]}/sim/orders/{order_no}/pay"
                async with self.session.post(url) as resp:
                    p.native_paid = resp.status == 200
                return
            if payment is None or payment["status"] not in UNSETTLED:
                return  # never created, or already settled (e.g. closed: nothing to pay)
            await asyncio.sleep(0.5)  # processing: the sweeper will learn the QR order


async def run_load(client: Client, planned: list[Planned], seconds: float,
                   concurrency: int) -> None:
    loop = asyncio.get_running_loop()
    start = loop.time()
    gap = seconds / max(1, len(planned))
    limit = asyncio.Semaphore(concurrency)

    async def one(p: Planned) -> None:
        await asyncio.sleep(max(0.0, start + p.index * gap - loop.time()))
        async with limit:
            await client.create(p)
        if p.pay_native:
            await client.pay_native(p, loop.time() + 15.0)

    await asyncio.gather(*(one(p) for p in planned))


# --------------------------------------------------------------------------- the checker
async def settle(client: Client, planned: list[Planned], grace_s: float
                 ) -> dict[int, dict[str, Any] | None]:
    """Read every payment until none is unsettled (or the grace period ends)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + grace_s
    limit = asyncio.Semaphore(32)
    progress = Progress("chaos settle", len(planned), "final")

    async def read(p: Planned) -> dict[str, Any] | None:
        async with limit:
            return await client.find(p.body["out_trade_no"])

    while True:
        found = dict(zip((p.index for p in planned),
                         await asyncio.gather(*(read(p) for p in planned)), strict=True))
        pending = [p for p in planned if not_final(p, found[p.index])]
        if not pending or loop.time() >= deadline:
            progress.finish(f"{len(planned) - len(pending):,} of {len(planned):,} final")
            return found
        progress.show(len(planned) - len(pending), None, deadline - loop.time(),
                      f"{len(pending):,} not final yet (ETA: the grace period at most)")
        await asyncio.sleep(0.5)


def not_final(p: Planned, payment: dict[str, Any] | None) -> bool:
    if payment is None:
        return False
    status = payment["status"]
    if status == "processing":
        return True
    # An unpaid QR order waits for its payer: requires_action is its final word.
    return status == "requires_action" and (p.scene != "native" or p.native_paid)


def describe(payment: dict[str, Any], ledgers: dict[str, dict[str, Any]]) -> str:
    """A payment's attempts and what the ledgers say about them, for a problem's line."""
    parts = []
    for attempt in payment.get("attempts", []):
        rail = attempt.get("adapter") or attempt.get("rail")
        no = attempt.get("rail_order_no")
        order = ledgers.get(str(rail), {}).get("orders", {}).get(no)
        parts.append(f"attempt {rail} {no} {attempt.get('status', '')} ledger {order}")
    return "; ".join(parts) or "no attempts"


def check(planned: list[Planned], found: dict[int, dict[str, Any] | None],
          ledgers: dict[str, dict[str, Any]], others: Collection[tuple[str, str]] = ()
          ) -> tuple[Counter[str], list[str]]:
    """The four counts; `others` are ledger orders that are not this load's (the red
    packets' and transfers' funding payments, checked by their own checker)."""
    counts: Counter[str] = Counter()
    problems: list[str] = []

    def problem(kind: str, text: str) -> None:
        counts[kind] += 1
        problems.append(f"{kind}: {text}")

    named: set[tuple[str, str]] = set(others)
    for rail, ledger in ledgers.items():
        for no, order in ledger["orders"].items():
            if order["charges"] > 1:
                problem("double_charges", f"{rail} order {no} charged {order['charges']} times")
    for p in planned:
        payment = found[p.index]
        otn = p.body["out_trade_no"]
        for http, pid, acked in p.acks:
            if payment is None:
                problem("lost_acknowledged", f"{otn}: {http} {pid} {acked}, now missing")
            elif payment["id"] != pid:
                problem("lost_acknowledged", f"{otn}: acknowledged {pid}, now {payment['id']}")
            elif ((acked in PAID and payment["status"] not in PAID)
                  or (acked in ("failed", "closed") and payment["status"] != acked)):
                problem("lost_acknowledged",
                        f"{otn} {pid}: acknowledged {acked}, now {payment['status']}")
        if payment is None:
            continue
        if not_final(p, payment):
            problem("not_final", f"{otn} {payment['id']} ({p.rail} {p.scene}) still "
                                 f"{payment['status']}; answers {p.answers}; "
                                 f"{describe(payment, ledgers)}")
        kept_orders = []
        for attempt in payment.get("attempts", []):
            rail = attempt.get("adapter") or attempt.get("rail") or p.rail
            no = attempt.get("rail_order_no")
            if not no:
                continue
            named.add((rail, no))
            order = ledgers.get(rail, {}).get("orders", {}).get(no)
            if order and order["charged"] - order["refunded"] > 0:
                kept_orders.append((rail, no, order["charged"] - order["refunded"]))
        kept = sum(k for _, _, k in kept_orders)
        if len(kept_orders) > 1:
            problem("double_charges", f"{otn} {payment['id']}: money kept on {kept_orders}")
        status = payment["status"]
        # A campaign's discount is taken off what the rail charges (`payer_amount`).
        due = payment["amount"] - sum(r["amount"] for r in payment.get("promotions") or ()
                                      if r["kind"] == "discount")
        if status == "succeeded" and kept != due:
            problem("mismatches", f"{otn} {payment['id']}: succeeded, ledger keeps {kept} "
                                  f"of {due}")
        elif status not in PAID and kept > 0:
            problem("mismatches", f"{otn} {payment['id']}: {status}, ledger keeps {kept} "
                                  f"({kept_orders})")
    for rail, ledger in ledgers.items():
        for no in ledger["orders"]:
            if (rail, no) not in named:
                problem("mismatches", f"{rail} order {no} named by no payment")
    return counts, problems
