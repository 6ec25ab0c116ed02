"""The chaos run's social load: red packets and transfers under gateway kills.

Each red packet is created (its funding payment paid at once by a quick pay code), and as
soon as it is open a grab storm hits it: every grabber at once, some users several times
over (each a request of its own, which must answer 200 with the same grab). Each
transfer is created, then its recipient accepts, declines, does both at once, or lets it
expire. Chosen packets get a gateway SIGKILL in the middle of their storm, chosen packets
and transfers one just after their expiry, when the sweeper is working out and sending
the refund. What every answer said is kept for the checker (`chaos_social_check`).
"""

from __future__ import annotations

import asyncio
import random
import time
from datetime import datetime

from loadtest.chaos_social_plan import (
    Answer,
    Api,
    Grabbed,
    Person,
    PlannedPacket,
    SocialPlan,
)
from loadtest.chaos_stack import GatewayKiller
from loadtest.procs import BenchError

OPEN_POLL_S = 0.2
NOT_OPEN_TRIES = 10  # a grabber that finds the packet unpaid looks again this often


async def register(api: Api, plan: SocialPlan) -> None:
    """Every user, verified, before the load starts."""
    limit = asyncio.Semaphore(16)

    async def one(person: Person) -> None:
        async with limit:
            got = await api.call("PUT", f"/v1/users/{person.id}", person.body())
        if got is None or got.status != 200:
            raise BenchError(f"could not register user {person.id}: {got}")

    await asyncio.gather(*(one(person) for person in plan.people))


class SocialLoad:
    def __init__(self, api: Api, killer: GatewayKiller, seed: int) -> None:
        self.api = api
        self.killer = killer
        self.rng = random.Random(seed + 7)
        self.kills: list[asyncio.Task[None]] = []

    async def run(self, plan: SocialPlan) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()

        async def one(p: PlannedPacket) -> None:
            await asyncio.sleep(max(0.0, start + p.start_s - loop.time()))
            try:
                await self.drive(p)
            finally:
                p.done = True

        await asyncio.gather(*(one(p) for p in plan.packets))
        await asyncio.gather(*self.kills)

    async def drive(self, p: PlannedPacket) -> None:
        expires = await self.create(p)
        if p.expiry_kill:
            self._kill_at(expires + self.rng.uniform(0.0, 0.4), "expiry")
        opened = await self.wait_open(p, expires) if p.id else False
        if p.storm_kill:  # in its storm (or now, if it never opened: kills stay counted)
            self._kill_at(time.time() + self.rng.uniform(0.05, 0.3), "grab storm")
        if not opened:
            return
        if p.kind == "red_packets":
            await self.storm(p, expires)
        else:
            await self.recipient_acts(p, expires)

    async def create(self, p: PlannedPacket) -> float:
        """POST the packet; its id (None if it could not be learnt) and expiry (epoch s)."""
        fallback = time.time() + float(p.body["expires_in_s"])
        for key in (p.key, p.key + "-again"):  # a refused create is asked again to learn
            got = await self.api.call("POST", f"/v1/{p.kind}", p.body, key)  # the id
            p.created.append(str(got) if got else "no answer")
            if got is not None and got.status in (200, 201):
                p.id = str(got.body["id"])
                p.opened = got.body["status"] not in ("awaiting_payment", "canceled")
                return _epoch(str(got.body["expires_at"]))
        return fallback

    async def wait_open(self, p: PlannedPacket, expires: float) -> bool:
        while not p.opened and time.time() < expires + 1.0:
            await asyncio.sleep(OPEN_POLL_S)
            got = await self.api.call("GET", f"/v1/{p.kind}/{p.id}")
            if got is not None and got.status == 200:
                if got.body["status"] == "canceled":
                    return False
                p.opened = got.body["status"] != "awaiting_payment"
        return p.opened

    async def storm(self, p: PlannedPacket, expires: float) -> None:
        tries = [(user, n) for user, times in p.grabbers for n in range(times)]
        self.rng.shuffle(tries)
        await asyncio.gather(*(self.grab(p, user, n, self.rng.uniform(0.0, 0.2))
                               for user, n in tries))
        # One grabber who comes too late: the packet is closed by now.
        await asyncio.sleep(max(0.0, expires + 0.3 - time.time()))
        late_user = p.grabbers[0][0] if p.grabbers else str(p.body["sender"])
        await self.grab(p, late_user, 9, 0.0)

    async def grab(self, p: PlannedPacket, user: str, n: int, delay: float) -> None:
        await asyncio.sleep(delay)
        path = f"/v1/red_packets/{p.id}/grabs"
        for attempt in range(NOT_OPEN_TRIES):
            got = await self.api.call("POST", path, {"user": user}, f"{p.key}-{user}-{n}-{attempt}")
            if got is None or got.code != "red_packet_not_open":
                break
            await asyncio.sleep(OPEN_POLL_S)
        if got is not None and got.status in (200, 201):
            b = got.body
            p.acks.append(Grabbed(user, got.status, b["id"], b["amount"], b["payout"]["id"]))
        else:
            p.refusals[str(got) if got else "no answer"] += 1

    async def recipient_acts(self, p: PlannedPacket, expires: float) -> None:
        await asyncio.sleep(max(0.0, (expires - time.time()) * p.act_at))
        verbs = {"accept": ("accept",), "decline": ("decline",),
                 "race": ("accept", "decline")}.get(p.action, ())
        await asyncio.gather(*(self.act(p, verb, p.accepts if verb == "accept" else p.declines)
                               for verb in verbs))

    async def act(self, p: PlannedPacket, verb: str, answers: list[tuple[int, str]]) -> None:
        got: Answer | None = None
        for attempt in range(NOT_OPEN_TRIES):
            got = await self.api.call("POST", f"/v1/transfers/{p.id}/{verb}", None,
                                      f"{p.key}-{verb}-{attempt}")
            if got is None or got.code != "red_packet_not_open":
                break
            await asyncio.sleep(OPEN_POLL_S)
        if got is None:
            answers.append((0, "no answer"))
        else:
            answers.append((got.status, got.code or str(got.body.get("status"))))

    def _kill_at(self, epoch: float, reason: str) -> None:
        async def later() -> None:
            await asyncio.sleep(max(0.0, epoch - time.time()))
            await self.killer.kill_one(reason)

        self.kills.append(asyncio.create_task(later()))


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
