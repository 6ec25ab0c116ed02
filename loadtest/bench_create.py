"""Create-payment throughput of the gateway, as a ratio to a hello-world measured alongside.

    python -m loadtest.bench_create [--seconds N] [--connections C] [--json FILE]

Four targets, each its own process on 127.0.0.1, each loaded by the same generator
(`loadtest.generator`, its own process): `loadtest.hello` (aiohttp on uvloop, the
baseline), then `payrouter serve` creating quickpay payments on the in-process `instant`
rail, then the same requests to `loadtest.naive_peer` (a gateway written in an afternoon,
on the same Redis, database 1), then on the `bank` rail through the bank simulator
(`payrouter sim bank`, its own process) over HTTP. The gateway uses an embedded
redis-server in a temporary directory and a configuration whose rate limits are too high to
matter. It prints the throughput targets of `payrouter bench` with PASS or MISS. At the end
the simulator's ledger must show exactly one charge per successful bank create.

Everything it starts runs in its own session and is stopped (SIGTERM, then SIGKILL) on
the way out, whether the run ends normally, by an error, by Ctrl-C or by SIGTERM. See
loadtest/README.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

import orjson

from loadtest.phase import Load, Phase, measure, median_phase
from loadtest.redis_cluster import LocalCluster
from loadtest.stack import (
    NAIVE_PEER,
    Stack,
    Workspace,
    bank_ledger,
    create_runs,
    run_guarded,
    start_naive_peer,
    start_stack,
)
from loadtest.tables import phase_table, verdict_lines
from loadtest.targets import closed_loop_verdicts
from loadtest.wrk import run_wrk


# --------------------------------------------------------------------------- main
def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m loadtest.bench_create", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=10.0, help="measured, per target")
    p.add_argument("--warmup", type=float, default=2.0, help="unmeasured, per target")
    p.add_argument("--connections", type=int, default=64, help="keep-alive, in all")
    p.add_argument("--generators", type=int, default=1,
                   help="generator processes sharing the connections (default 1)")
    p.add_argument("--workers", type=int, default=1, help="gateway processes")
    p.add_argument("--rounds", type=int, default=1,
                   help="repeat the targets in turn; report each target's median round")
    p.add_argument("--redis-cluster", action="store_true",
                   help="the gateway on a local 3-master / 3-replica Redis Cluster "
                        "(the naive peer, which speaks to one Redis only, is not run)")
    p.add_argument("--json", type=Path, help="also write the JSON line to this file")
    p.add_argument("--no-wrk", action="store_true", help="skip wrk even if it is on PATH")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if (args.seconds <= 0 or args.warmup < 0 or args.connections < 1
            or not 1 <= args.generators <= args.connections or args.workers < 1
            or args.rounds < 1):
        print("bench_create: need --seconds > 0, --warmup >= 0, --connections >= 1, "
              "1 <= --generators <= --connections, --workers >= 1, --rounds >= 1", file=sys.stderr)
        return 2
    load = Load(args.connections, args.generators, args.warmup, args.seconds)
    return run_guarded("bench_create", lambda work: _bench(args, load, work))


def _bench(args: argparse.Namespace, load: Load, work: Workspace) -> int:
    print(f"bench_create: {load.connections} connections, {load.generators} generator "
          f"process(es), {load.warmup_s:g} s warmup + {load.seconds:g} s per target, "
          f"{os.cpu_count()} CPUs", flush=True)

    # 1. The targets: the hello-world, Redis, the bank simulator, a merchant, the gateway.
    cluster = LocalCluster(work.tmp / "cluster") if args.redis_cluster else None
    try:
        return _measure(args, load, work, start_stack(work, args.workers, cluster))
    finally:
        if cluster is not None:
            work.children.stop_all()  # the gateway first, then the nodes it uses
            cluster.stop()


def _measure(args: argparse.Namespace, load: Load, work: Workspace, stack: Stack) -> int:
    children = work.children
    peer = None if args.redis_cluster else start_naive_peer(work, stack)
    creates = create_runs(stack, peer)

    # 2. Rounds of hello-world, instant, naive peer, bank: on a noisy machine, neighbours
    # in time see the same neighbours' load; the median round of each target is reported.
    rounds: dict[str, list[Phase]] = {"hello-world": [], **{r.target: [] for r in creates}}
    for n in range(args.rounds):
        label = f" (round {n + 1}/{args.rounds})" if args.rounds > 1 else ""
        print(f"measuring hello-world{label} ...", flush=True)
        rounds["hello-world"].append(measure("hello-world", stack.hello_url, None, load,
                                             children, {"target": [stack.hello.proc.pid]}))
        for run in creates:
            print(f"measuring create payment, {run.target}{label} ...", flush=True)
            rounds[run.target].append(measure(run.target, run.url, run.method, load, children,
                                              run.watched, run.api_key, stack.redis_url))
    wrk = None if args.no_wrk else shutil.which("wrk")
    wrk_figure = (run_wrk(wrk, stack.hello_url, load.connections, load.seconds, work.tmp)
                  if wrk else None)
    phases = {target: median_phase(runs) for target, runs in rounds.items()}
    peer_rps = phases[NAIVE_PEER].rps if NAIVE_PEER in phases else None
    found = closed_loop_verdicts(phases["hello-world"].rps, phases["instant"].rps,
                                 phases["bank"].rps, peer_rps)

    # 3. No double charge: one bank charge per successful bank create (every round, warmup
    # and tail included).
    ledger = bank_ledger(stack.sim_url)
    bank_ok = sum(p.ok_total for p in rounds["bank"])
    charges_ok = ledger["charges"] == bank_ok

    baseline = phases["hello-world"].rps
    print()
    print(phase_table(list(phases.values()), baseline))
    if args.rounds > 1:
        for target, runs in rounds.items():
            lines = ", ".join(f"{p.rps:,.0f}" for p in runs)
            print(f"req/s by round ({target}): {lines}")
    if wrk_figure is not None:
        print(f"wrk, hello-world (reference only, not in the ratios): {wrk_figure:,.0f} req/s")
    print(f"bank ledger: {ledger['charges']} charges, {ledger['orders']} orders; "
          f"successful bank creates: {bank_ok} -> "
          f"{'OK (no double charge)' if charges_ok else 'MISMATCH'}")
    print()
    print("\n".join(verdict_lines(found)))
    record = {
        "bench": "create_payment", "seconds": load.seconds, "warmup_s": load.warmup_s,
        "connections": load.connections, "generators": load.generators,
        "gateway_workers": args.workers, "cpus": os.cpu_count(), "rounds": args.rounds,
        "redis": "cluster" if args.redis_cluster else "single",
        "rps_by_round": {t: [round(p.rps, 1) for p in runs] for t, runs in rounds.items()},
        "targets": [p.as_json(baseline) for p in phases.values()],
        "verdicts": [v.as_json() for v in found],
        "wrk_hello_rps": wrk_figure,
        "ledger": {"charges": ledger["charges"], "orders": ledger["orders"],
                   "bank_ok_total": bank_ok, "ok": charges_ok},
    }
    line = orjson.dumps(record).decode()
    print(line)
    if args.json:
        args.json.write_text(line + "\n")
    return 0 if charges_ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
