"""`payrouter bench`: the standard performance suite, with a report.

    payrouter bench [--seconds 10] [--open-seconds 20] [--out DIR] [--quick]

On one machine, all on 127.0.0.1, one gateway process (the stack of `bench_create`:
hello-world, embedded Redis, bank simulator, gateway, naive peer):

1. the hello-world ceiling: the closed-loop generator at its maximum rate;
2. create-payment through the `instant` rail, closed loop, maximum rate;
3. the same requests to the naive peer (`loadtest.naive_peer`, on the same Redis);
4. create-payment through the bank simulator, closed loop, maximum rate;
5. create-payment through `instant` at 70 % of the rate measured in 2, from the open-loop
   driver (`loadtest.openloop`: fixed arrival rate, latency from the intended send time).

Writes `bench-report.json`, `bench-report.png` (open loop: throughput and p50/p99 over
time) and `bench-report.html` (the tables and the plot, self-contained) to `--out`, and
prints the table with each target's ratio and PASS or MISS. Exit status: 0, or 1 if the
bank simulator's ledger does not show exactly one charge per successful bank create (a
MISS is a finding, not a failure of the tool).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import orjson

from loadtest.cpu import machine_info
from loadtest.openloop import default_connections
from loadtest.phase import (
    REQUEST_TIMEOUT_S,
    START_SLACK_S,
    GenSpec,
    Load,
    Phase,
    measure,
    run_window,
    unique_tag,
)
from loadtest.plot import plot_open_loop
from loadtest.report import page, text
from loadtest.stack import (
    Stack,
    Workspace,
    bank_ledger,
    create_runs,
    run_guarded,
    start_naive_peer,
    start_stack,
)
from loadtest.targets import OPEN_LOOP_FRACTION, Verdict, verdicts
from loadtest.wrk import run_wrk

CONNECTIONS = 64  # closed loop
OPEN_LOOP_TIMEOUT_S = 10.0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="payrouter bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=10.0,
                   help="measured seconds of each closed-loop run (default 10)")
    p.add_argument("--open-seconds", type=float,
                   help="measured seconds of the open-loop run (default: 2 x --seconds)")
    p.add_argument("--warmup", type=float, default=2.0, help="unmeasured, before each run")
    p.add_argument("--out", type=Path, default=Path("."),
                   help="directory for bench-report.{json,png,html} (default: here)")
    p.add_argument("--quick", action="store_true",
                   help="short runs for smoke testing (3 s, 1 s warmup, 6 s open loop)")
    p.add_argument("--no-wrk", action="store_true", help="skip wrk even if it is on PATH")
    return p


def main(argv: list[str] | None = None) -> int:
    """`payrouter bench ARGS` and `python -m loadtest.suite ARGS`."""
    args = parser().parse_args(argv)
    if args.quick:
        args.seconds, args.warmup, args.open_seconds = 3.0, 1.0, 6.0
    open_seconds = args.open_seconds or 2 * args.seconds
    if args.seconds <= 0 or open_seconds <= 0 or args.warmup < 0:
        print("payrouter bench: need --seconds > 0, --open-seconds > 0, --warmup >= 0",
              file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    load = Load(CONNECTIONS, 1, args.warmup, args.seconds)
    open_load = Load(0, 1, args.warmup, open_seconds)
    return run_guarded("payrouter bench", lambda work: _suite(args, load, open_load, work))


def _suite(args: argparse.Namespace, load: Load, open_load: Load, work: Workspace) -> int:
    print("payrouter bench: measuring the machine's background load ...", flush=True)
    machine = machine_info()
    machine["python"] = platform.python_version()
    print(f"  {machine['cpus']} CPUs, load average {machine['loadavg']}, other processes "
          f"{machine['other_cpu_pct_idle']}% of a core", flush=True)
    stack = start_stack(work)
    peer = start_naive_peer(work, stack)
    children = work.children

    print(f"1/5 hello-world, closed loop, {load.connections} connections, "
          f"{load.seconds:g} s ...", flush=True)
    hello = measure("hello-world", stack.hello_url, None, load, children,
                    {"target": [stack.hello.proc.pid]})
    print(f"    {hello.rps:,.0f} req/s", flush=True)
    closed: list[Phase] = [hello]
    for n, run in enumerate(create_runs(stack, peer), start=2):
        print(f"{n}/5 create payment, {run.target}, closed loop ...", flush=True)
        closed.append(measure(run.target, run.url, run.method, load, children, run.watched,
                              run.api_key, stack.redis_url))
        print(f"    {closed[-1].rps:,.0f} req/s", flush=True)
    instant, naive_peer, bank = closed[1:]

    rate = max(1.0, round(OPEN_LOOP_FRACTION * instant.rps))
    print(f"5/5 create payment via instant, open loop at {rate:,.0f}/s "
          f"({OPEN_LOOP_FRACTION:.0%} of {instant.rps:,.0f}), {open_load.seconds:g} s ...",
          flush=True)
    open_loop, open_cpu = _open_loop(stack, rate, open_load, work)
    print(f"    p99 {open_loop.get('latency_ms', {}).get('p99', 0):.2f} ms, sent "
          f"{open_loop['achieved_rate']:,.0f}/s", flush=True)

    wrk = None if args.no_wrk else shutil.which("wrk")
    wrk_figure = run_wrk(wrk, stack.hello_url, load.connections, load.seconds, work.tmp) \
        if wrk else None
    ledger = bank_ledger(stack.sim_url)
    machine["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]

    found = verdicts(hello.rps, instant.rps, bank.rps, naive_peer.rps, open_loop)
    report: dict[str, Any] = {
        "bench": "payrouter-suite",
        "created_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "quick": args.quick, "seconds": load.seconds, "open_seconds": open_load.seconds,
        "warmup_s": load.warmup_s, "connections": load.connections, "gateway_workers": 1,
        "machine": machine,
        "targets": [v.as_json() for v in found],
        "closed_loop": [p.as_json(hello.rps) for p in closed],
        "open_loop": {**open_loop, "fraction_of_max": OPEN_LOOP_FRACTION,
                      "max_rps": round(instant.rps, 1), "cpu_pct_of_core": open_cpu},
        "cpu_by_phase": {**{p.target: p.cpu for p in closed}, "open-loop": open_cpu},
        "wrk_hello_rps": wrk_figure,
        "ledger": {"charges": ledger["charges"], "orders": ledger["orders"],
                   "bank_ok_total": bank.ok_total, "ok": ledger["charges"] == bank.ok_total},
    }
    _write(args.out, report, found)
    print()
    print(text(report, found))
    print(f"\nwrote {args.out / 'bench-report.json'}, .png, .html")
    return 0 if report["ledger"]["ok"] else 1


def _open_loop(stack: Stack, rate: float, load: Load,
               work: Workspace) -> tuple[dict[str, Any], dict[str, float]]:
    start_at = time.time() + START_SLACK_S
    argv = [sys.executable, "-m", "loadtest.openloop", "--url",
            f"{stack.gateway_url}/v1/payments", "--method", "instant", "--rate", str(rate),
            "--seconds", str(load.seconds), "--warmup", str(load.warmup_s),
            "--connections", str(default_connections(rate)),
            "--timeout", str(min(OPEN_LOOP_TIMEOUT_S, REQUEST_TIMEOUT_S)),
            "--start-at", f"{start_at:.6f}", "--tag", unique_tag("openloop")]
    window = run_window(work.children, [GenSpec("openloop", argv)], start_at, load,
                        stack.watched, stack.api_key, stack.redis_url)
    result: dict[str, Any] = window.results[0]
    result["backlog"] = {"start": window.backlog[0], "end": window.backlog[1]}
    return result, window.cpu


def _write(out: Path, report: dict[str, Any], found: list[Verdict]) -> None:
    png = out / "bench-report.png"
    ol = report["open_loop"]
    lat = ol.get("latency_ms", {})
    plot_open_loop(ol["series"], ol["rate"],
                   f"create payment via instant, open loop at {ol['rate']:,.0f}/s "
                   f"({ol['fraction_of_max']:.0%} of max): p99 {lat.get('p99', 0):.1f} ms",
                   png)
    (out / "bench-report.json").write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2)
                                            + b"\n")
    (out / "bench-report.html").write_text(page(report, found, png))


if __name__ == "__main__":
    raise SystemExit(main())
