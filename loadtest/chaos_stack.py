"""The chaos run's stack and its killers: the three rail simulators (standalone, faulty),
gateway processes sharing one Redis (or a Redis Cluster), and what SIGKILLs them.

Gateway kills go through one `GatewayKiller`, so the payment load's killer and the social
load's (during grab storms and expiry windows) never take the same gateway down twice at
once; each kill is counted under the reason it was made for.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from dataclasses import asdict
from pathlib import Path

import orjson

from adapters.simkit.faults import Faults
from loadtest.procs import HOST, Child, http_json, wait_ready
from loadtest.redis_cluster import LocalCluster
from loadtest.stack import UNLIMITED_TOML, Workspace
from router.sandbox.embedded import free_port

RAILS = ("bank", "wechatpay", "alipay")
Simulators = dict[str, tuple[str, Path]]  # rail -> (base URL, keys dir)


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
        wait_ready(self._spawn(i), f"{self.urls[i]}/readyz")

    def start_all(self) -> None:
        """Every gateway, started together (each takes seconds to import and connect)."""
        for i, child in [(i, self._spawn(i)) for i in range(len(self.urls))]:
            wait_ready(child, f"{self.urls[i]}/readyz")

    def _spawn(self, i: int) -> Child:
        self.generation[i] += 1
        child = self.work.children.start(
            f"gateway-{i}-{self.generation[i]}",
            [sys.executable, "-m", "router.cli", "serve", "--config", str(self.config),
             "--port", str(self.ports[i]), "--workers", "1"])
        self.children[i] = child
        return child

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


class GatewayKiller:
    """SIGKILL a gateway that is up, a moment down, restart; counted by reason.

    Kills are timed to moments (a grab storm, an expiry), so one does not wait for the
    restart of the one before: it takes another gateway, as long as one stays up (the
    clients' retries reach it). Only then does a kill wait, which the report shows."""

    def __init__(self, gateways: Gateways, seed: int) -> None:
        self.gateways = gateways
        self.rng = random.Random(seed)
        self.down: set[int] = set()
        self.changed = asyncio.Condition()
        self.kills: Counter[str] = Counter()
        self.late_s = 0.0  # the longest a kill waited for a restart

    async def kill_one(self, reason: str) -> None:
        every = range(len(self.gateways.urls))
        asked = time.monotonic()
        async with self.changed:
            await self.changed.wait_for(lambda: len(self.down) < max(1, len(every) - 1))
            self.late_s = max(self.late_s, time.monotonic() - asked)
            i = self.rng.choice([i for i in every if i not in self.down])
            self.down.add(i)
        try:
            await asyncio.to_thread(self.gateways.kill, i)
            self.kills[reason] += 1
            await asyncio.sleep(self.rng.uniform(0.1, 1.0))  # down for a moment
            await asyncio.to_thread(self.gateways.start, i)
        finally:
            async with self.changed:
                self.down.discard(i)
                self.changed.notify_all()


def start_simulators(work: Workspace, faults: Faults, time_scale: float) -> Simulators:
    sims: Simulators = {}
    started: list[tuple[Child, str]] = []
    for rail in RAILS:
        port = free_port()
        keys = work.tmp / f"{rail}-keys"
        child = work.children.start(f"{rail}-sim", [
            sys.executable, "-m", "router.cli", "sim", rail, "--port", str(port),
            "--keys-dir", str(keys), "--time-scale", str(time_scale)])
        url = f"http://{HOST}:{port}"
        started.append((child, url))
        sims[rail] = (url, keys)
    for child, url in started:
        wait_ready(child, f"{url}/sim/faults")
        http_json("POST", f"{url}/sim/faults", orjson.dumps(asdict(faults)))
    return sims


def write_config(work: Workspace, redis_url: str, sims: Simulators,
                 *, wait_replicas: int = 0, admin_token: str = "",
                 partner_tables: Mapping[str, str] | None = None) -> Path:
    """The gateways' settings. `partner_tables` are service providers' own rail tables
    (table name -> the simulator's rail, its adapter), kept out of routing (`dedicated`);
    `admin_token` opens the admin API."""
    rails = "".join(f"""
[rails.{rail}]
base_url = "{url}"
keys_dir = {orjson.dumps(str(keys)).decode()}
timeout_s = 1.0
""" for rail, (url, keys) in sims.items())
    rails += "".join(f"""
[rails.{table}]
adapter = "{rail}"
dedicated = true
base_url = "{sims[rail][0]}"
keys_dir = {orjson.dumps(str(sims[rail][1])).decode()}
timeout_s = 1.0
""" for table, rail in (partner_tables or {}).items())
    admin = f"admin_token = {orjson.dumps(admin_token).decode()}\n" if admin_token else ""
    path = work.tmp / "chaos.toml"
    path.write_text(f"""\
data_dir = {orjson.dumps(str(work.tmp / "data")).decode()}
{admin}
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

[social]
funding_check_s = 1.0
{rails}""")
    return path


async def at_random_moments(rng: random.Random, count: int, within: tuple[float, float],
                            seconds: float) -> AsyncIterator[None]:
    """Yield `count` times, at moments drawn from `within` (fractions of `seconds`)."""
    moments = sorted(rng.uniform(*within) * seconds for _ in range(count))
    loop = asyncio.get_running_loop()
    start = loop.time()
    for moment in moments:
        await asyncio.sleep(max(0.0, start + moment - loop.time()))
        yield


async def load_killer(killer: GatewayKiller, kills: int, seconds: float, seed: int) -> None:
    """Gateway kills at random moments of the payment load."""
    rng = random.Random(seed + 2)
    async for _ in at_random_moments(rng, kills, (0.1, 0.9), seconds):
        await killer.kill_one("load")


async def redis_killer(cluster: LocalCluster, kills: int, seconds: float, seed: int,
                       done: Counter[str]) -> None:
    """SIGKILL a random master at random moments; after each, wait for its replica to
    be promoted, restart it (it rejoins as a replica) and let it sync before the next."""
    rng = random.Random(seed + 3)
    async for _ in at_random_moments(rng, kills, (0.15, 0.85), seconds):
        await asyncio.to_thread(cluster.wait_replicated)
        victim = rng.choice(cluster.master_nodes())
        victim.kill()
        done["redis"] += 1
        await asyncio.to_thread(cluster.wait_healthy)  # a replica took its slots
        victim.start(cluster.node_timeout_ms, cluster.appendfsync)
        await asyncio.to_thread(victim.wait_listening)
