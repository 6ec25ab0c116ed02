"""Red-packet grabs at scale: one hot packet raced by thousands, and many packets
grabbed at random, against a hello-world measured in the same run by the same driver.

    python -m loadtest.bench_grabs [--packets 100000] [--users 20000] [--grabbers 10000]
                                   [--seconds 10] [--quick] [--json FILE]

Everything runs on 127.0.0.1, each its own process: `loadtest.hello`, an embedded Redis,
one gateway (`payrouter serve`, payout rails in-process), and `loadtest.grab_driver` for
the load. Setup goes through the public API, many requests in flight. Then:

1. hot packet: `--grabbers` distinct verified users race for one packet of 100 shares;
   exactly 100 must win, the rest get `409 red_packet_empty`, and the wins sum to the
   packet's amount;
2. hello-world, then many packets: a closed loop where each request grabs a random open
   packet as a random user; grabs/s and its ratio to the hello-world, CPU per grab,
   Redis commands per grab;
3. a MONITOR sample: the round trips the gateway makes per grab;
4. checks: every packet's counters against the grabs it holds and the driver's wins,
   a sample of packets through the API, every payout ended; Redis memory per packet and
   per grab.

The exit status is 1 if a check fails; a throughput or round-trip target missed is a
finding (MISS), not an error. Everything it starts is stopped on the way out.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
from pathlib import Path
from typing import Any

import orjson
import uvloop

from loadtest.cpu import machine_info
from loadtest.grab_checks import check_hot_packet, check_packets
from loadtest.grab_redis import (
    Monitor,
    calls_between,
    client,
    grown_by_kind,
    key_sizes,
    memory_by_kind,
    used_memory,
    wait_outbox_empty,
)
from loadtest.grab_report import loop_figures, race_figures, render_summary
from loadtest.grab_setup import Api, PacketShape, open_packets, register_users
from loadtest.grab_stack import (
    DriverRun,
    SocialStack,
    run_driver,
    start_social_stack,
    wait_payouts,
    write_plan,
)
from loadtest.procs import BenchError
from loadtest.stack import Workspace, run_guarded

SHAPE = PacketShape(amount=10_000, count=100)  # 100.00 CNY in 100 shares
HOT_SHAPE = PacketShape(amount=10_000, count=100)
SHARDS = 16  # the gateway's default [redis] shards
QUICK = {"packets": 10_000, "users": 5_000, "grabbers": 2_000, "seconds": 4.0,
         "warmup": 1.0}
SETTLE_S = 60.0  # at most this long for payouts and events to drain


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m loadtest.bench_grabs", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--packets", type=int, default=100_000, help="open packets to grab")
    p.add_argument("--users", type=int, default=20_000, help="verified users registered")
    p.add_argument("--grabbers", type=int, default=10_000,
                   help="users racing for the hot packet (at most --users)")
    p.add_argument("--seconds", type=float, default=10.0, help="measured, per loop run")
    p.add_argument("--warmup", type=float, default=2.0, help="unmeasured, per loop run")
    p.add_argument("--connections", type=int, default=64, help="loop runs, keep-alive")
    p.add_argument("--rounds", type=int, default=1,
                   help="hello-world and grabs this many times in turn; medians reported")
    p.add_argument("--race-connections", type=int, default=256, help="the hot packet race")
    p.add_argument("--setup-concurrency", type=int, default=128,
                   help="setup requests in flight")
    p.add_argument("--sample", type=int, default=200, help="packets checked via the API")
    p.add_argument("--monitor-seconds", type=float, default=2.0,
                   help="the MONITOR sample of round trips per grab")
    p.add_argument("--quick", action="store_true",
                   help="a smoke run of a minute or two; other defaults: " + ", ".join(
                       f"--{k} {v:g}" for k, v in QUICK.items()))
    p.add_argument("--json", type=Path, help="also write the report to this file")
    return p


def main(argv: list[str] | None = None) -> int:
    p = parser()
    if p.parse_args(argv).quick:  # shrinks the defaults; flags given still win
        p.set_defaults(**QUICK)
    args = p.parse_args(argv)
    if (args.packets < 1 or args.grabbers <= HOT_SHAPE.count or args.users < args.grabbers
            or args.seconds <= 0 or args.warmup < 0 or args.connections < 1
            or args.race_connections < 1 or args.setup_concurrency < 1 or args.rounds < 1):
        print(f"bench_grabs: need --packets >= 1, {HOT_SHAPE.count} < --grabbers <= --users, "
              "--seconds > 0, --warmup >= 0, connections, concurrency and rounds >= 1",
              file=sys.stderr)
        return 2
    return run_guarded("bench_grabs", lambda work: _bench(args, work))


def _bench(args: argparse.Namespace, work: Workspace) -> int:
    print(f"bench_grabs: {args.packets:,} packets, {args.users:,} users, {args.grabbers:,} "
          f"racing, {args.warmup:g} s warmup + {args.seconds:g} s per loop run, "
          f"{os.cpu_count()} CPUs", flush=True)
    machine = machine_info()
    stack = start_social_stack(work)
    print(f"ready: gateway pid {stack.gateway.proc.pid} (one process), Redis pid "
          f"{stack.redis_pid}, hello-world pid {stack.hello_pid}", flush=True)
    redis = client(stack.redis_url)
    try:
        report = _run(args, work, stack, redis)
    finally:
        redis.close()
    report["machine"] = machine
    print(render_summary(report), flush=True)
    if args.json:
        args.json.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2) + b"\n")
    failed = [c for c in report["checks"] if not c["ok"]]
    return 1 if failed else 0


def _run(args: argparse.Namespace, work: Workspace, stack: SocialStack,
         redis: Any) -> dict[str, Any]:
    users = [f"u{i}" for i in range(args.users)]

    # 1. Setup through the API: users, then the packets (memory measured around them).
    print("setup: registering users, creating packets ...", flush=True)
    memory_start = used_memory(redis)
    uvloop.run(_register(args, stack, users))
    memory_users, kinds_users = used_memory(redis), memory_by_kind(redis)
    hot_id, packet_ids = uvloop.run(_create(args, stack, users, f"bench-{os.getpid()}"))
    wait_outbox_empty(redis, SHARDS, SETTLE_S)
    opened = len(packet_ids) + 1
    memory: dict[str, Any] = {
        "per_user_b": (memory_users - memory_start) / len(users),
        "per_open_packet_b": (used_memory(redis) - memory_users) / opened,
        "per_open_packet_by_kind_b": grown_by_kind(kinds_users, memory_by_kind(redis), opened)}

    # 2. The hot packet: distinct users race for its 100 shares.
    print(f"hot packet: {args.grabbers:,} users race for {HOT_SHAPE.count} shares ...",
          flush=True)
    watched = {"gateway": stack.gateway_pids, "redis": [stack.redis_pid]}
    race_plan = write_plan(work, "race", {"packet": hot_id, "users": users[:args.grabbers]})
    race = run_driver(work, stack, "race", ["race", "--base-url", stack.gateway_url,
                                            "--plan", str(race_plan), "--connections",
                                            str(args.race_connections)], watched)
    wait_payouts(stack.gateway_url, _wins(race), SETTLE_S)

    # 3. Hello-world, then grabs of random packets, by the same driver and connections.
    loop_plan = write_plan(work, "loop", {"packets": packet_ids, "users": users})
    wait_outbox_empty(redis, SHARDS, SETTLE_S)
    memory_before, kinds_before = used_memory(redis), memory_by_kind(redis)
    hellos, loops = _loop_rounds(args, work, stack, loop_plan, watched)
    new_grabs = sum(_wins(run) for run in loops)
    wait_payouts(stack.gateway_url, _wins(race) + new_grabs, SETTLE_S)
    wait_outbox_empty(redis, SHARDS, SETTLE_S)
    memory["per_grab_b"] = (used_memory(redis) - memory_before) / max(1, new_grabs)
    memory["per_grab_by_kind_b"] = grown_by_kind(kinds_before, memory_by_kind(redis),
                                                 new_grabs)

    # 4. Round trips per grab: what the gateway sends Redis, from a MONITOR sample.
    print(f"round trips: a {args.monitor_seconds:g} s MONITOR sample ...", flush=True)
    with Monitor(stack.redis_url) as monitor:
        sample = run_driver(work, stack, "monitor-sample",
                            ["loop", "--plan", str(loop_plan), "--connections", "16",
                             "--warmup", "0", "--seconds", str(args.monitor_seconds),
                             "--base-url", stack.gateway_url, "--label", "sample"],
                            watched, seconds=args.monitor_seconds)
    every_grab = _wins(race) + new_grabs + _wins(sample)
    wait_payouts(stack.gateway_url, every_grab, SETTLE_S)

    # 5. Checks and memory by key.
    print("checks ...", flush=True)
    checks, hot_body = uvloop.run(check_hot_packet(stack, hot_id, HOT_SHAPE, race.result))
    granted = sum(sum(run.result["granted"]) for run in [*loops, sample])
    more, sampled = uvloop.run(check_packets(
        stack, redis, packet_ids, SHAPE, granted, new_grabs + _wins(sample), every_grab,
        args.sample))
    memory["by_key_b"] = key_sizes(redis, hot_body, sampled)
    hello, grabs = _median(hellos), _median(loops)
    return {
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "hot_packet": race_figures(race, args.grabbers),
        "hello": loop_figures(hello, "target"),
        "many_packets": loop_figures(grabs, "gateway"),
        "rounds": [{"hello_per_s": loop_figures(h, "target")["per_s"],
                    "grabs_per_s": loop_figures(g, "gateway")["per_s"]}
                   for h, g in zip(hellos, loops, strict=True)],
        "round_trips": {"grab_answers": sum(sample.result["total_statuses"].values()),
                        "sent": dict(monitor.sent.most_common()),
                        "in_scripts": monitor.in_scripts},
        "memory": memory,
        "commands_in_window": calls_between({}, grabs.commands),
        "checks": checks + more,
    }


def _loop_rounds(args: argparse.Namespace, work: Workspace, stack: SocialStack,
                 plan: Path, watched: dict[str, list[int]]
                 ) -> tuple[list[DriverRun], list[DriverRun]]:
    """Hello-world then grabs, `--rounds` times: neighbours in time share the machine's
    other load, so each target's median round is the fairer figure."""
    argv = ["loop", "--plan", str(plan), "--connections", str(args.connections),
            "--warmup", str(args.warmup), "--seconds", str(args.seconds)]
    hellos: list[DriverRun] = []
    loops: list[DriverRun] = []
    for n in range(args.rounds):
        label = f" (round {n + 1}/{args.rounds})" if args.rounds > 1 else ""
        print(f"hello-world{label} ...", flush=True)
        hellos.append(run_driver(
            work, stack, "hello", [*argv, "--hello-url", stack.hello_url, "--label", "hello"],
            {"target": [stack.hello_pid]}, warmup_s=args.warmup, seconds=args.seconds))
        print(f"many packets: random grabs{label} ...", flush=True)
        loops.append(run_driver(work, stack, "grabs", [*argv, "--base-url", stack.gateway_url],
                                watched, warmup_s=args.warmup, seconds=args.seconds))
    return hellos, loops


def _wins(run: DriverRun) -> int:
    """New grabs over the driver's whole run (warmup and tail included)."""
    return int(run.result["total_statuses"].get("201", 0))


def _median(runs: list[DriverRun]) -> DriverRun:
    """The run with the median number of answers in its window (the lower middle)."""
    ordered = sorted(runs, key=lambda r: sum(r.result["window_statuses"].values()))
    return ordered[(len(ordered) - 1) // 2]


async def _register(args: argparse.Namespace, stack: SocialStack, users: list[str]) -> None:
    async with Api(stack.gateway_url, stack.api_key, args.setup_concurrency) as api:
        await register_users(api, users)


async def _create(args: argparse.Namespace, stack: SocialStack, users: list[str],
                  tag: str) -> tuple[str, list[str]]:
    """The hot packet, then the many; senders drawn from the users."""
    senders = random.Random(1).sample(users, min(len(users), 1000))
    async with Api(stack.gateway_url, stack.api_key, args.setup_concurrency) as api:
        hot = await open_packets(api, f"{tag}-hot", 1, senders, HOT_SHAPE)
        packets = await open_packets(api, tag, args.packets, senders, SHAPE)
    if len(set(packets)) != len(packets):
        raise BenchError("two packets got the same id")
    return hot[0], packets


if __name__ == "__main__":
    raise SystemExit(main())
