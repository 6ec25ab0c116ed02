"""What live campaigns cost the create path.

    python -m loadtest.bench_campaigns [--seconds 5] [--warmup 1] [--connections 32]
                                       [--rounds 1] [--json FILE]

One gateway process (`payrouter serve`, the in-process `instant` rail, rate limits out of
the way) on an embedded Redis, loaded in a closed loop from this process, three phases:

1. **none**: no campaign;
2. **ten, none match**: ten live campaigns, nine the admin made for another merchant and
   one of the merchant's own for another scene: every create is matched in memory
   against them and earns nothing;
3. **ten, one matches**: the same, with the merchant's own campaign for this scene: a
   discount of one fen with no limit reached, so every create reserves it (the extra
   round trip) and its grant follows.

Each payment has its own payer (`payer.openid`). Per phase: creates/s, p50/p99, the
gateway's CPU µs per create (/proc) and Redis commands per create (INFO). Everything it
starts is stopped on the way out (loadtest/stack.py).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import redis as redis_sync
import uvloop

from loadtest.cpu import CpuSample, cpu_seconds
from loadtest.phase import percentile, redis_commands
from loadtest.procs import HOST, BenchError, group_pids, wait_ready
from loadtest.stack import UNLIMITED_TOML, Workspace, run_guarded
from router.sandbox.embedded import free_port

ADMIN_TOKEN = secrets.token_urlsafe(24)  # the gateway this run starts takes it from its env
REFRESH_WAIT_S = 1.5  # campaigns reach the gateway's cache within a second


@dataclass
class Figures:
    phase: str
    creates_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int
    rewarded: int  # answers carrying a campaign reward
    gateway_cpu_us_per_create: float
    redis_commands_per_create: float | None  # every command Redis ran, in scripts too
    scripts_per_create: float | None  # EVALSHA calls: the round trips' scripts, workers' too


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m loadtest.bench_campaigns", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=5.0, help="measured, per phase")
    p.add_argument("--warmup", type=float, default=1.0, help="unmeasured, per phase")
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--rounds", type=int, default=1,
                   help="repeat the three phases in turn; report each phase's median round")
    p.add_argument("--json", type=Path, help="also write the JSON line to this file")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.seconds <= 0 or args.warmup < 0 or args.connections < 1 or args.rounds < 1:
        print("bench_campaigns: need --seconds > 0, --warmup >= 0, --connections >= 1, "
              "--rounds >= 1",
              file=sys.stderr)
        return 2
    return run_guarded("bench_campaigns", lambda work: _bench(args, work))


def _bench(args: argparse.Namespace, work: Workspace) -> int:
    redis_url = work.redis.start()
    port = free_port()
    config = work.tmp / "gateway.toml"
    config.write_text(f"""\
data_dir = {orjson.dumps(str(work.tmp / "data")).decode()}

[server]
host = "{HOST}"
port = {port}

[redis]
url = {orjson.dumps(redis_url).decode()}
{UNLIMITED_TOML}
[rails.instant]
""")
    gateway = work.children.start(
        "gateway", [sys.executable, "-m", "router.cli", "serve", "--config", str(config)],
        env={"PAYROUTER_ADMIN_TOKEN": ADMIN_TOKEN})
    base = f"http://{HOST}:{port}"
    wait_ready(gateway, f"{base}/readyz")
    pids = {"gateway": group_pids(gateway.proc.pid)}
    print(f"bench_campaigns: {args.connections} connections, {args.warmup:g} s warmup + "
          f"{args.seconds:g} s per phase, {os.cpu_count()} CPUs", flush=True)
    return uvloop.run(_phases(args, base, redis_url, pids))


async def _phases(args: argparse.Namespace, base: str, redis_url: str,
                  pids: dict[str, list[int]]) -> int:
    async with aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=args.connections)) as http:
        api = _Api(http, base)
        shop = await api.post(ADMIN_TOKEN, "/v1/admin/merchants", {"name": "bench shop"})
        other = await api.post(ADMIN_TOKEN, "/v1/admin/merchants", {"name": "another shop"})
        key = shop["api_key"]
        rounds: dict[str, list[Figures]] = {}
        for n in range(args.rounds):
            label = f" (round {n + 1}/{args.rounds})" if args.rounds > 1 else ""
            for figures in await _round(args, api, key, other["id"], label, redis_url, pids):
                rounds.setdefault(figures.phase, []).append(figures)
    results = [sorted(runs, key=lambda f: f.creates_per_s)[(len(runs) - 1) // 2]
               for runs in rounds.values()]
    _report(args, results, rounds)
    if any(f.rewarded for f in rounds["ten, none match"]) or any(
            f.rewarded < f.creates_per_s * args.seconds / 2 for f in rounds["ten, one matches"]):
        raise BenchError(f"the phases did not match as intended: {rounds}")
    return 0


async def _round(args: argparse.Namespace, api: _Api, key: str, other: str, label: str,
                 redis_url: str, pids: dict[str, list[int]]) -> list[Figures]:
    """The three phases; every campaign this round made is ended at its end."""
    results = [await _load(args, api, key, "none", label, redis_url, pids)]
    made = [await api.post(ADMIN_TOKEN, "/v1/campaigns",
                           _campaign(f"admin {n}", {"merchants": [other]}))
            for n in range(9)]
    own = await api.post(key, "/v1/campaigns", _campaign("own, h5", {"scenes": ["h5"]}))
    await asyncio.sleep(REFRESH_WAIT_S)
    results.append(await _load(args, api, key, "ten, none match", label, redis_url, pids))
    await api.post(key, f"/v1/campaigns/{own['id']}/end", {})
    own = await api.post(key, "/v1/campaigns", _campaign("own, native", {"scenes": ["native"]}))
    await asyncio.sleep(REFRESH_WAIT_S)
    results.append(await _load(args, api, key, "ten, one matches", label, redis_url, pids))
    for campaign in made:
        await api.post(ADMIN_TOKEN, f"/v1/campaigns/{campaign['id']}/end", {})
    await api.post(key, f"/v1/campaigns/{own['id']}/end", {})
    await asyncio.sleep(REFRESH_WAIT_S)
    return results


def _campaign(name: str, conditions: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "kind": "discount", "conditions": conditions,
            "reward": {"type": "fixed", "amount": 1, "max": 1}}


async def _load(args: argparse.Namespace, api: _Api, key: str, phase: str, label: str,
                redis_url: str, pids: dict[str, list[int]]) -> Figures:
    print(f"measuring {phase}{label} ...", flush=True)
    tag = f"{phase.split(',')[0].replace(' ', '')}{len(phase)}-{time.monotonic_ns()}"
    start = time.monotonic() + 0.2
    measure_from, measure_to = start + args.warmup, start + args.warmup + args.seconds
    latencies: list[int] = []
    counts = {"errors": 0, "rewarded": 0}
    seq = iter(range(10**9))

    async def worker() -> None:
        await asyncio.sleep(max(0.0, start - time.monotonic()))
        while (began := time.monotonic()) < measure_to:
            n = next(seq)
            status, body = await api.create(key, {
                "amount": 100, "currency": "CNY", "out_trade_no": f"{tag}-{n}",
                "scene": "native", "method": "instant", "description": "bench",
                "payer": {"openid": f"o{tag}{n}"}})
            done = time.monotonic()
            if measure_from <= done < measure_to:
                latencies.append(int((done - began) * 1e6))
                counts["errors"] += status != 201
                counts["rewarded"] += b'"promotions"' in body

    workers = [asyncio.create_task(worker()) for _ in range(args.connections)]
    await asyncio.sleep(max(0.0, measure_from - time.monotonic()))
    cpu_before, commands_before = CpuSample.take(pids), redis_commands(redis_url)
    scripts_before = _script_calls(redis_url)
    await asyncio.sleep(max(0.0, measure_to - time.monotonic()))
    cpu_after, commands_after = CpuSample.take(pids), redis_commands(redis_url)
    scripts_after = _script_calls(redis_url)
    await asyncio.gather(*workers)
    done = max(1, len(latencies))
    latencies.sort()
    commands = (None if commands_before is None or commands_after is None
                else round((commands_after - commands_before) / done, 2))
    return Figures(phase, round(len(latencies) / args.seconds, 1),
                   percentile(latencies, 0.5) / 1000, percentile(latencies, 0.99) / 1000,
                   counts["errors"], counts["rewarded"],
                   round(1e6 * cpu_seconds(cpu_before, cpu_after)["gateway"] / done, 1),
                   commands, round((scripts_after - scripts_before) / done, 2))


def _script_calls(redis_url: str) -> int:
    """EVALSHA calls Redis has served (INFO commandstats)."""
    client = redis_sync.Redis.from_url(redis_url, socket_timeout=2.0)
    try:
        stats = client.info("commandstats").get("cmdstat_evalsha", {})
        return int(stats.get("calls", 0))
    finally:
        client.close()


@dataclass
class _Api:
    http: aiohttp.ClientSession
    base: str

    async def post(self, token: str, path: str, body: Any) -> dict[str, Any]:
        async with self.http.post(self.base + path, data=orjson.dumps(body), headers={
                "Authorization": f"Bearer {token}",
                "Content-Type": "application/json"}) as resp:
            answer: dict[str, Any] = orjson.loads(await resp.read())
            if resp.status >= 300:
                raise BenchError(f"POST {path}: {resp.status} {answer}")
            return answer

    async def create(self, token: str, body: dict[str, Any]) -> tuple[int, bytes]:
        async with self.http.post(self.base + "/v1/payments", data=orjson.dumps(body), headers={
                "Authorization": f"Bearer {token}",
                "Content-Type": "application/json"}) as resp:
            return resp.status, await resp.read()


def _or_dash(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _report(args: argparse.Namespace, results: list[Figures],
            rounds: dict[str, list[Figures]]) -> None:
    print()
    print(f"{'phase':<18} {'creates/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} "
          f"{'rewarded':>9} {'gw CPU µs':>10} {'Redis cmd':>10} {'scripts':>8}")
    for r in results:
        print(f"{r.phase:<18} {r.creates_per_s:>10,.0f} {r.p50_ms:>8.2f} {r.p99_ms:>8.2f} "
              f"{r.errors:>7} {r.rewarded:>9} {r.gateway_cpu_us_per_create:>10.0f} "
              f"{_or_dash(r.redis_commands_per_create):>10} "
              f"{_or_dash(r.scripts_per_create):>8}")
    if args.rounds > 1:
        for phase, runs in rounds.items():
            print(f"creates/s by round ({phase}): "
                  + ", ".join(f"{f.creates_per_s:,.0f}" for f in runs))
    line = orjson.dumps({"bench": "campaigns", "seconds": args.seconds,
                         "connections": args.connections, "rounds": args.rounds,
                         "cpus": os.cpu_count(), "loadavg": os.getloadavg(),
                         "phases": [asdict(r) for r in results]}).decode()
    print(line)
    if args.json:
        args.json.write_text(line + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
