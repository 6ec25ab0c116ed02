"""Chaos run with a money checker: `python -m loadtest.chaos [--payments N] [--kills K]`.

Starts Redis, the bank, WeChat Pay and Alipay simulators (standalone child processes with
faults: errors, timeouts, latency, dropped and duplicated notifications) and gateway
processes sharing one Redis. A client creates payments across rails and scenes, retrying
connection errors, 5xx and `409 idempotency_key_in_use` with the same Idempotency-Key and
body, as real clients do, while a killer SIGKILLs gateways at random moments and restarts
them. After the load and the sweeper's grace period, a checker compares the router's
records with every simulator's ledger and counts:

- double charges: a ledger order charged more than once, or one payment with money kept
  on more than one of its rail orders;
- lost acknowledged payments: a 2xx the client got whose payment is now missing, is
  another payment, or went backwards (acknowledged succeeded, now not paid);
- mismatches: the router and the ledger disagree about the money (paid but nothing kept,
  failed/closed/unpaid but money kept), or a ledger order no payment's attempts name;
- not final: payments still `processing` (or `requires_action` when they were paid, or
  are quick pay) after the grace period.

With `--redis-cluster` the gateways share a 3-master / 3-replica Redis Cluster instead
of one Redis, in the strict durability profile (each change waits for its replica), and
`--redis-kills N` SIGKILLs a random master N times during the load; each time the run
waits for a replica to take over, then restarts the killed node, which rejoins as a
replica.

All four must be 0; the exit status is 1 otherwise. Everything runs on 127.0.0.1.
The client's choices and the kill times follow `--seed`; the simulators' fault dice and
the timing are not reproducible.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import signal
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from adapters.simkit.faults import Faults
from loadtest.procs import HOST, BenchError, Child, http_json, wait_ready
from loadtest.redis_cluster import LocalCluster
from loadtest.stack import UNLIMITED_TOML, Workspace, create_merchant, run_guarded
from router.sandbox.embedded import free_port

PROG = "loadtest.chaos"
RAILS = ("bank", "wechatpay", "alipay")
PAID = frozenset({"succeeded", "partially_refunded", "refunded"})
UNSETTLED = frozenset({"processing", "requires_action"})
# quickpay payer codes by last digit (SANDBOX.md): paid, declined, confirms late,
# never confirms (reversed), answer lost (learnt by querying).
CODE_DIGITS = ("1", "1", "1", "2", "5", "6", "9")
MAX_TRIES = 10
REQUEST_TIMEOUT_S = 10.0


# What every simulator is set to by default (`--error-rate` etc. change it).
CHAOS_FAULTS = Faults(error_rate=0.05, timeout_rate=0.03, latency_ms=5.0,
                      latency_jitter_ms=5.0, drop_notify_rate=0.2, duplicate_notify_rate=0.2)


@dataclass
class Options:
    payments: int = 200
    kills: int = 3
    seed: int = 1
    seconds: float = 20.0
    gateways: int = 2
    concurrency: int = 32
    grace_s: float = 30.0
    time_scale: float = 0.1
    native_share: float = 0.3
    faults: Faults = CHAOS_FAULTS
    redis_cluster: bool = False
    redis_kills: int = 0


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
    kills: int = 0
    restarts: int = 0
    redis_kills: int = 0
    events: list[dict[str, Any]] = field(default_factory=list)

    def record(self, planned: Planned, attempt: int, gateway: int, answer: str,
               status: str | None) -> None:
        self.requests += 1
        self.retries += attempt > 0
        self.answers[answer] += 1
        planned.answers.append(answer)
        self.events.append({"payment": planned.index, "attempt": attempt, "gateway": gateway,
                            "answer": answer, "status": status, "t": time.monotonic()})


@dataclass
class Report:
    payments: int
    requests: int
    retries: int
    acknowledged: int
    kills: int
    redis_kills: int
    final_statuses: dict[str, int]
    ledger_orders: int
    double_charges: int
    lost_acknowledged: int
    mismatches: int
    not_final: int
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not (self.double_charges or self.lost_acknowledged or self.mismatches
                    or self.not_final)


# --------------------------------------------------------------------------- the stack
class Gateways:
    """Gateway processes on their own ports, killed with SIGKILL and restarted."""

    def __init__(self, work: Workspace, config: Path, count: int) -> None:
        self.work = work
        self.config = config
        self.ports = [free_port() for _ in range(count)]
        self.children: list[Child | None] = [None] * count
        self.generation = [0] * count
        self.urls = [f"http://{HOST}:{port}" for port in self.ports]

    def start(self, i: int) -> None:
        self.generation[i] += 1
        child = self.work.children.start(
            f"gateway-{i}-{self.generation[i]}",
            [sys.executable, "-m", "router.cli", "serve", "--config", str(self.config),
             "--port", str(self.ports[i]), "--workers", "1"])
        self.children[i] = child
        wait_ready(child, f"{self.urls[i]}/readyz")

    def kill(self, i: int) -> None:
        """SIGKILL to the gateway's process group: no cleanup, as a crash."""
        child = self.children[i]
        if child is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.proc.pid, signal.SIGKILL)
        child.proc.wait(10)
        self.work.children.items.remove(child)
        self.children[i] = None


def start_simulators(work: Workspace, opts: Options) -> dict[str, tuple[str, Path]]:
    sims: dict[str, tuple[str, Path]] = {}
    started: list[tuple[Child, str]] = []
    for rail in RAILS:
        port = free_port()
        keys = work.tmp / f"{rail}-keys"
        child = work.children.start(f"{rail}-sim", [
            sys.executable, "-m", "router.cli", "sim", rail, "--port", str(port),
            "--keys-dir", str(keys), "--time-scale", str(opts.time_scale)])
        url = f"http://{HOST}:{port}"
        started.append((child, url))
        sims[rail] = (url, keys)
    for child, url in started:
        wait_ready(child, f"{url}/sim/faults")
        http_json("POST", f"{url}/sim/faults", orjson.dumps(asdict(opts.faults)))
    return sims


def write_config(work: Workspace, redis_url: str, sims: dict[str, tuple[str, Path]],
                 *, wait_replicas: int = 0) -> Path:
    rails = "".join(f"""
[rails.{rail}]
base_url = "{url}"
keys_dir = {orjson.dumps(str(keys)).decode()}
timeout_s = 1.0
""" for rail, (url, keys) in sims.items())
    path = work.tmp / "chaos.toml"
    path.write_text(f"""\
data_dir = {orjson.dumps(str(work.tmp / "data")).decode()}

[server]
host = "{HOST}"

[redis]
url = {orjson.dumps(redis_url).decode()}
durability = "{"strict" if wait_replicas else "default"}"
wait_replicas = {wait_replicas}
wait_timeout_ms = 1000

{UNLIMITED_TOML}
[idempotency]
lease_s = 2.0

[sweeper]
interval_s = 0.1
first_check_s = 1.0
query_every_s = 0.3
confirm_window_s = 3.0
unknown_window_s = 3.0
never_seen_s = 6.0
lease_s = 1.0
{rails}""")
    return path


# --------------------------------------------------------------------------- the client
def payer_code(rail: str, last: str) -> str:
    if rail == "wechatpay":
        return "13456789012345678" + last
    if rail == "alipay":
        return "287634438256641" + last
    return "621234567890123456" + last


def plan(opts: Options) -> list[Planned]:
    rng = random.Random(opts.seed)
    out: list[Planned] = []
    for i in range(opts.payments):
        rail = rng.choice(RAILS)
        otn = f"chaos-{opts.seed}-{i}"
        body: dict[str, Any] = {"amount": rng.randint(1, 500) * 10, "currency": "CNY",
                                "out_trade_no": otn, "method": rail,
                                "description": f"chaos {i}"}
        pay_native = False
        if rng.random() < opts.native_share:
            body["scene"] = "native"
            pay_native = rng.random() < 0.7
        else:
            body["scene"] = "quickpay"
            body["payer"] = {"auth_code": payer_code(rail, rng.choice(CODE_DIGITS))}
        out.append(Planned(i, rail, body["scene"], body, f"key-{otn}", pay_native))
    return out


class Client:
    def __init__(self, session: aiohttp.ClientSession, gateways: Gateways, api_key: str,
                 sims: dict[str, tuple[str, Path]], history: History, seed: int) -> None:
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
            await asyncio.sleep(0.2)
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


async def run_load(client: Client, planned: list[Planned], opts: Options) -> None:
    loop = asyncio.get_running_loop()
    start = loop.time()
    gap = opts.seconds / max(1, len(planned))
    limit = asyncio.Semaphore(opts.concurrency)

    async def one(p: Planned) -> None:
        await asyncio.sleep(max(0.0, start + p.index * gap - loop.time()))
        async with limit:
            await client.create(p)
        if p.pay_native:
            await client.pay_native(p, loop.time() + 15.0)

    await asyncio.gather(*(one(p) for p in planned))


async def at_random_moments(rng: random.Random, count: int, within: tuple[float, float],
                            seconds: float) -> AsyncIterator[None]:
    """Yield `count` times, at moments drawn from `within` (fractions of `seconds`)."""
    moments = sorted(rng.uniform(*within) * seconds for _ in range(count))
    loop = asyncio.get_running_loop()
    start = loop.time()
    for moment in moments:
        await asyncio.sleep(max(0.0, start + moment - loop.time()))
        yield


async def killer(gateways: Gateways, history: History, opts: Options) -> None:
    rng = random.Random(opts.seed + 2)
    async for _ in at_random_moments(rng, opts.kills, (0.1, 0.9), opts.seconds):
        i = rng.randrange(len(gateways.urls))
        await asyncio.to_thread(gateways.kill, i)
        history.kills += 1
        await asyncio.sleep(rng.uniform(0.1, 1.0))  # down for a moment
        await asyncio.to_thread(gateways.start, i)
        history.restarts += 1


async def redis_killer(cluster: LocalCluster, history: History, opts: Options) -> None:
    """SIGKILL a random master at random moments; after each, wait for its replica to
    be promoted, restart it (it rejoins as a replica) and let it sync before the next."""
    rng = random.Random(opts.seed + 3)
    async for _ in at_random_moments(rng, opts.redis_kills, (0.15, 0.85), opts.seconds):
        await asyncio.to_thread(cluster.wait_replicated)
        victim = rng.choice(cluster.master_nodes())
        victim.kill()
        history.redis_kills += 1
        await asyncio.to_thread(cluster.wait_healthy)  # a replica took its slots
        victim.start(cluster.node_timeout_ms, cluster.appendfsync)
        await asyncio.to_thread(victim.wait_listening)


# --------------------------------------------------------------------------- the checker
async def settle(client: Client, planned: list[Planned], grace_s: float
                 ) -> dict[int, dict[str, Any] | None]:
    """Read every payment until none is unsettled (or the grace period ends)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + grace_s
    limit = asyncio.Semaphore(32)

    async def read(p: Planned) -> dict[str, Any] | None:
        async with limit:
            return await client.find(p.body["out_trade_no"])

    while True:
        found = dict(zip((p.index for p in planned),
                         await asyncio.gather(*(read(p) for p in planned)), strict=True))
        pending = [p for p in planned if not_final(p, found[p.index])]
        if not pending or loop.time() >= deadline:
            return found
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
          ledgers: dict[str, dict[str, Any]]) -> tuple[Counter[str], list[str]]:
    counts: Counter[str] = Counter()
    problems: list[str] = []

    def problem(kind: str, text: str) -> None:
        counts[kind] += 1
        problems.append(f"{kind}: {text}")

    named: set[tuple[str, str]] = set()
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
        if status == "succeeded" and kept != payment["amount"]:
            problem("mismatches", f"{otn} {payment['id']}: succeeded, ledger keeps {kept} "
                                  f"of {payment['amount']}")
        elif status not in PAID and kept > 0:
            problem("mismatches", f"{otn} {payment['id']}: {status}, ledger keeps {kept} "
                                  f"({kept_orders})")
    for rail, ledger in ledgers.items():
        for no in ledger["orders"]:
            if (rail, no) not in named:
                problem("mismatches", f"{rail} order {no} named by no payment")
    return counts, problems


# --------------------------------------------------------------------------- the run
async def chaos(work: Workspace, opts: Options) -> Report:
    if not opts.redis_cluster:
        return await chaos_on(work, opts, work.redis.start(), None)
    cluster = LocalCluster(work.tmp / "cluster")
    try:
        await asyncio.to_thread(cluster.start)
        return await chaos_on(work, opts, cluster.url, cluster)
    finally:
        work.children.stop_all()  # the gateways first, then the nodes they use
        cluster.stop()


async def chaos_on(work: Workspace, opts: Options, redis_url: str,
                   cluster: LocalCluster | None) -> Report:
    sims = start_simulators(work, opts)
    api_key = create_merchant(redis_url, work.env)
    config = write_config(work, redis_url, sims, wait_replicas=1 if cluster else 0)
    gateways = Gateways(work, config, opts.gateways)
    for i in range(opts.gateways):
        gateways.start(i)
    history = History()
    planned = plan(opts)
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        client = Client(session, gateways, api_key, sims, history, opts.seed)
        kills = asyncio.create_task(killer(gateways, history, opts))
        redis_kills = asyncio.create_task(
            redis_killer(cluster, history, opts) if cluster else asyncio.sleep(0))
        await run_load(client, planned, opts)
        await kills
        await redis_kills
        found = await settle(client, planned, opts.grace_s)
        ledgers = {}
        for rail, (url, _) in sims.items():
            async with session.get(f"{url}/sim/ledger") as resp:
                ledgers[rail] = orjson.loads(await resp.read())
    counts, problems = check(planned, found, ledgers)
    statuses = Counter(p["status"] if p else "missing" for p in found.values())
    return Report(
        payments=len(planned), requests=history.requests, retries=history.retries,
        acknowledged=sum(1 for p in planned if p.acks), kills=history.kills,
        redis_kills=history.redis_kills,
        final_statuses=dict(sorted(statuses.items())),
        ledger_orders=sum(len(ledger["orders"]) for ledger in ledgers.values()),
        double_charges=counts["double_charges"],
        lost_acknowledged=counts["lost_acknowledged"], mismatches=counts["mismatches"],
        not_final=counts["not_final"], problems=problems)


def print_report(report: Report, as_json: bool) -> None:
    if as_json:
        print(orjson.dumps(asdict(report), option=orjson.OPT_INDENT_2).decode())
        return
    print(f"history: {report.payments} payments, {report.requests} requests "
          f"({report.retries} retries), {report.acknowledged} acknowledged, "
          f"{report.kills} gateway kills, {report.redis_kills} Redis master kills, "
          f"{report.ledger_orders} rail orders")
    print(f"final statuses: {report.final_statuses}")
    print(f"double charges:              {report.double_charges}")
    print(f"lost acknowledged payments:  {report.lost_acknowledged}")
    print(f"router/ledger mismatches:    {report.mismatches}")
    print(f"not final after grace:       {report.not_final}")
    for line in report.problems[:50]:
        print(f"  {line}")
    print("OK" if report.ok else "FAILED")


def parse(argv: Sequence[str] | None) -> tuple[Options, bool]:
    p = argparse.ArgumentParser(prog=f"python -m {PROG}", description=__doc__.split("\n")[0])
    p.add_argument("--payments", type=int, default=200)
    p.add_argument("--kills", type=int, default=3, help="gateway SIGKILLs during the load")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--seconds", type=float, default=20.0,
                   help="how long the load lasts (payments are spread over it)")
    p.add_argument("--gateways", type=int, default=2, help="gateway processes")
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--grace", type=float, default=30.0,
                   help="at most this long for every payment to settle after the load")
    p.add_argument("--time-scale", type=float, default=0.1, help="the simulators' delays")
    p.add_argument("--error-rate", type=float, default=CHAOS_FAULTS.error_rate)
    p.add_argument("--timeout-rate", type=float, default=CHAOS_FAULTS.timeout_rate)
    p.add_argument("--latency-ms", type=float, default=CHAOS_FAULTS.latency_ms)
    p.add_argument("--drop-notify-rate", type=float, default=CHAOS_FAULTS.drop_notify_rate)
    p.add_argument("--duplicate-notify-rate", type=float,
                   default=CHAOS_FAULTS.duplicate_notify_rate)
    p.add_argument("--redis-cluster", action="store_true",
                   help="a local 3-master / 3-replica Redis Cluster instead of one Redis")
    p.add_argument("--redis-kills", type=int, default=0,
                   help="master SIGKILLs during the load (needs --redis-cluster)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    a = p.parse_args(argv)
    if a.redis_kills and not a.redis_cluster:
        p.error("--redis-kills needs --redis-cluster")
    faults = Faults(error_rate=a.error_rate, timeout_rate=a.timeout_rate,
                       latency_ms=a.latency_ms, latency_jitter_ms=a.latency_ms,
                       drop_notify_rate=a.drop_notify_rate,
                       duplicate_notify_rate=a.duplicate_notify_rate)
    return Options(payments=a.payments, kills=a.kills, seed=a.seed, seconds=a.seconds,
                   gateways=max(1, a.gateways), concurrency=a.concurrency, grace_s=a.grace,
                   time_scale=a.time_scale, faults=faults, redis_cluster=a.redis_cluster,
                   redis_kills=a.redis_kills), a.json


def main(argv: Sequence[str] | None = None) -> int:
    opts, as_json = parse(argv)

    def body(work: Workspace) -> int:
        report = asyncio.run(chaos(work, opts))
        print_report(report, as_json)
        return 0 if report.ok else 1

    return run_guarded(PROG, body)


if __name__ == "__main__":
    sys.exit(main())
