"""What the chaos run's social load does, drawn from `--seed` before it starts: the
platform's users, red packets with their grabbers, transfers with what their recipient
does; and the retrying API client both the load and the checker use.

A user's wallet is on WeChat Pay or Alipay; the last character of its identity decides
what the simulator does with a payout to it (SANDBOX.md): `2` refused for good, `9` paid
with the answer lost, anything else paid. Packets and transfers are funded by quick pay
codes that pay at once, on any rail.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

from loadtest.chaos_stack import RAILS

MAX_TRIES = 10
MAX_PACKET = 20_000  # minor units: the gateway's default limit for one red packet
# The payout's fate by the wallet's last character: mostly paid, some refused for good
# (their shares go back to the sender), some paid with the answer lost.
WALLET_ENDINGS = ("1", "1", "1", "1", "3", "5", "2", "2", "9", "9")
TRANSFER_ACTIONS = ("accept", "accept", "accept", "decline", "race", "none")
FUNDING_CODES = {"wechatpay": "134567890123456781", "alipay": "2876344382566411",
                 "bank": "6212345678901234561"}  # quick pay codes paid at once


@dataclass(frozen=True)
class Person:
    id: str
    rail: str  # the wallet a payout goes to: wechatpay | alipay
    identity: str  # the openid or Alipay user id there

    def body(self) -> dict[str, Any]:
        wallet = ({"openid": self.identity} if self.rail == "wechatpay"
                  else {"user_id": self.identity})
        return {"wallets": {self.rail: wallet},
                "real_name": {"status": "verified", "method": "id_card", "name": "张三"}}


@dataclass
class Grabbed:
    """A grab answered 201 or 200: the client holds it, so it must be in the packet."""

    user: str
    http: int
    grab_id: str
    amount: int
    payout_id: str


@dataclass
class PlannedPacket:
    """One red packet or transfer, and what the client learnt about it."""

    index: int
    kind: str  # red_packets | transfers (the API's path)
    body: dict[str, Any]
    key: str
    start_s: float  # created this long after the load starts
    grabbers: list[tuple[str, int]] = field(default_factory=list)  # (user, requests)
    action: str = "none"  # transfers: accept | decline | race | none
    act_at: float = 0.0  # share of the time to expiry before the recipient acts
    storm_kill: bool = False
    expiry_kill: bool = False
    id: str | None = None
    created: list[str] = field(default_factory=list)  # what each create answer was
    opened: bool = False
    acks: list[Grabbed] = field(default_factory=list)
    refusals: Counter[str] = field(default_factory=Counter)  # grab answers other than 2xx
    accepts: list[tuple[int, str]] = field(default_factory=list)  # (http, status or code)
    declines: list[tuple[int, str]] = field(default_factory=list)
    done: bool = False

    @property
    def name(self) -> str:
        return f"{self.kind.removesuffix('s')} {self.id or self.body_no}"

    @property
    def body_no(self) -> str:
        return str(self.body.get("out_red_packet_no") or self.body.get("out_transfer_no"))


@dataclass
class SocialPlan:
    people: list[Person]
    packets: list[PlannedPacket]


def people(rng: random.Random, seed: int, count: int) -> list[Person]:
    out = []
    for i in range(count):
        last = rng.choice(WALLET_ENDINGS)
        if i % 2:
            out.append(Person(f"cu{seed}-{i}", "alipay", f"2088{seed % 1000:03d}{i:08d}{last}"))
        else:
            out.append(Person(f"cu{seed}-{i}", "wechatpay", f"ochaos{seed}u{i}x{last}"))
    return out


def plan_social(seed: int, red_packets: int, transfers: int, seconds: float,
                storm_kills: int, expiry_kills: int) -> SocialPlan:
    rng = random.Random(seed + 5)
    pool = people(rng, seed, 48)
    out: list[PlannedPacket] = []
    for i in range(red_packets + transfers):
        kind = "red_packets" if i < red_packets else "transfers"
        rail = rng.choice(RAILS)
        sender = rng.choice(pool)
        funding = {"scene": "quickpay", "method": rail,
                   "payer": {"auth_code": FUNDING_CODES[rail]}}
        no = f"chaos-{seed}-{kind}-{i}"
        body: dict[str, Any] = {"currency": "CNY", "expires_in_s": rng.randint(3, 6),
                                "funding": funding}
        p = PlannedPacket(i, kind, body, f"key-{no}", rng.uniform(0.0, 0.75) * seconds)
        others = [u for u in pool if u != sender]
        if kind == "red_packets":
            count = rng.randint(2, 20)
            split = rng.choice(("random", "random", "random", "equal"))
            if split == "equal":
                amount = count * rng.randint(1, MAX_PACKET // count)
            else:
                amount = rng.randint(count, MAX_PACKET)
            body.update(out_red_packet_no=no, sender=sender.id, amount=amount, count=count,
                        split=split, wishing=f"chaos {i}")
            # Mostly more grabbers than shares (it finishes), sometimes fewer (it expires
            # with shares left, which go back).
            crowd_size = rng.randint(max(1, count // 2), count + 4)
            crowd = rng.sample(others, min(len(others), crowd_size))
            p.grabbers = [(u.id, rng.choice((1, 1, 1, 2, 3))) for u in crowd]
        else:
            body.update(out_transfer_no=no, **{"from": sender.id},
                        to=rng.choice(others).id, amount=rng.randint(1, 20000),
                        message=f"chaos {i}")
            p.action = rng.choice(TRANSFER_ACTIONS)
            p.act_at = rng.uniform(0.0, 0.7)
        out.append(p)
    packets = [p for p in out if p.kind == "red_packets"]
    for p in rng.sample(packets, min(storm_kills, len(packets))):
        p.storm_kill = True
    for p in rng.sample(out, min(expiry_kills, len(out))):
        p.expiry_kill = True
    return SocialPlan(pool, out)


# --------------------------------------------------------------------------- the client
@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]

    @property
    def code(self) -> str:
        return str(self.body.get("error", {}).get("code", ""))

    def __str__(self) -> str:
        return f"{self.status} {self.code or self.body.get('status', '')}".rstrip()


class Api:
    """The merchant's API through whichever gateway is up, as a real client uses it:
    connection errors, 5xx, 429 and `idempotency_key_in_use` are retried (bounded) with
    the same Idempotency-Key and body on the next gateway."""

    def __init__(self, session: aiohttp.ClientSession, urls: list[str], api_key: str,
                 seed: int) -> None:
        self.session = session
        self.urls = urls
        self.auth = {"Authorization": f"Bearer {api_key}"}
        self.rng = random.Random(seed + 6)
        self.requests = 0
        self.retries = 0

    async def call(self, method: str, path: str, body: dict[str, Any] | None = None,
                   key: str | None = None) -> Answer | None:
        """The last answer, or None if no gateway answered at all."""
        headers = dict(self.auth)
        if key is not None:
            headers["Idempotency-Key"] = key
        raw = orjson.dumps(body) if body is not None else None
        if raw is not None:
            headers["Content-Type"] = "application/json"
        gw = self.rng.randrange(len(self.urls))
        answer: Answer | None = None
        for attempt in range(MAX_TRIES):
            if attempt:
                self.retries += 1
                await asyncio.sleep(min(2.0, 0.1 * 2 ** attempt) * (0.5 + self.rng.random()))
            self.requests += 1
            try:
                async with self.session.request(method, self.urls[gw] + path, data=raw,
                                                headers=headers) as resp:
                    replayed = resp.headers.get("Idempotent-Replayed") == "true"
                    answer = Answer(resp.status, orjson.loads(await resp.read() or b"{}"))
            except (TimeoutError, aiohttp.ClientError, ValueError):
                gw = (gw + 1) % len(self.urls)  # as a load balancer would
                continue
            if answer.status >= 500 and not replayed:
                gw = (gw + 1) % len(self.urls)
                continue
            if answer.status == 429 or answer.code == "idempotency_key_in_use":
                continue
            return answer
        return answer
