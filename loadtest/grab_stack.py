"""The grab benchmark's system under test, and how it drives the driver processes.

`start_social_stack` starts the hello-world, Redis, a merchant and one gateway whose
payout rails are in-process (`instant`, and `wechatpay` / `alipay` running the instant
adapter), rate limits out of the way. `run_driver` runs one `loadtest.grab_driver`
process against it while CPU and Redis are watched, echoing the driver's progress.
"""

from __future__ import annotations

import sys
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from loadtest.cpu import CpuSample, cpu_seconds, cpu_share
from loadtest.grab_driver import API_KEY_ENV
from loadtest.grab_redis import client, command_calls
from loadtest.procs import HOST, BenchError, Child, group_pids, wait_ready
from loadtest.stack import UNLIMITED_TOML, Workspace, create_merchant
from router.sandbox.embedded import free_port

START_SLACK_S = 2.5  # a driver is told to begin this long after it is spawned
REQUEST_TIMEOUT_S = 15.0


@dataclass
class SocialStack:
    hello_url: str  # POST / answers {"ok":true}
    hello_pid: int
    gateway: Child
    gateway_url: str
    redis_url: str
    redis_pid: int
    api_key: str
    gateway_pids: list[int] = field(default_factory=list)


def gateway_toml(tmp: Path, port: int, redis_url: str) -> Path:
    path = tmp / "gateway.toml"
    path.write_text(f"""\
data_dir = {orjson.dumps(str(tmp / "data")).decode()}

[server]
host = "{HOST}"
port = {port}

[redis]
url = {orjson.dumps(redis_url).decode()}

{UNLIMITED_TOML}
[rails.instant]

[rails.wechatpay]
adapter = "instant"

[rails.alipay]
adapter = "instant"
""")
    return path


def start_social_stack(work: Workspace) -> SocialStack:
    py = sys.executable
    hello_port = free_port()
    hello = work.children.start("hello", [py, "-m", "loadtest.hello", "--port",
                                          str(hello_port)])
    redis_url = work.redis.start()
    assert work.redis.process is not None
    api_key = create_merchant(redis_url, work.env)
    port = free_port()
    config = gateway_toml(work.tmp, port, redis_url)
    gateway = work.children.start("gateway", [py, "-m", "router.cli", "serve", "--config",
                                              str(config), "--workers", "1"])
    gw_url = f"http://{HOST}:{port}"
    wait_ready(hello, f"http://{HOST}:{hello_port}/healthz")
    wait_ready(gateway, f"{gw_url}/healthz")
    wait_ready(gateway, f"{gw_url}/readyz")
    return SocialStack(f"http://{HOST}:{hello_port}/", hello.proc.pid, gateway, gw_url,
                       redis_url, work.redis.process.pid, api_key,
                       group_pids(gateway.proc.pid))


# --------------------------------------------------------------------------- driver runs
@dataclass
class DriverRun:
    result: dict[str, Any]  # the driver's JSON
    cpu_pct: dict[str, float]  # % of one core per process over the measured span
    cpu_s: dict[str, float]  # CPU seconds per process over the measured span
    commands: dict[str, int]  # Redis calls per command over the measured span
    span_s: float


class LogEcho:
    """Prints the lines a child adds to its log (its progress), as they come, to stderr
    (stdout is the report's)."""

    def __init__(self, child: Child) -> None:
        self.child = child
        self.offset = 0

    def pump(self) -> None:
        try:
            with self.child.log.open("rb") as f:
                f.seek(self.offset)
                data = f.read()
        except OSError:
            return
        complete = data.rpartition(b"\n")[0]
        if complete:
            self.offset += len(complete) + 1
            for line in complete.decode(errors="replace").splitlines():
                print(f"  {line}", file=sys.stderr, flush=True)

    def wait_until(self, wall: float) -> None:
        while time.time() < wall and self.child.proc.poll() is None:
            self.pump()
            time.sleep(min(0.25, max(0.0, wall - time.time())))
        self.pump()


def run_driver(work: Workspace, stack: SocialStack, name: str, argv: Sequence[str],
               watched: dict[str, list[int]], *, warmup_s: float = 0.0,
               seconds: float | None = None) -> DriverRun:
    """Run a driver (told to start at a wall-clock time) and watch it: over its window
    `[start + warmup, start + warmup + seconds]` in loop mode, or from its start until it
    exits (`seconds` None: a race)."""
    start_at = time.time() + START_SLACK_S
    full = [sys.executable, "-m", "loadtest.grab_driver", *argv, "--start-at",
            f"{start_at:.6f}", "--timeout", str(REQUEST_TIMEOUT_S)]
    child = work.children.start(name, full, capture=True, env={API_KEY_ENV: stack.api_key})
    pids = dict(watched)  # the driver reports its own CPU (it may have exited by the end)
    echo = LogEcho(child)
    redis = client(stack.redis_url)
    try:
        echo.wait_until(start_at + warmup_s)
        before, calls_before = CpuSample.take(pids), command_calls(redis)
        if seconds is not None:
            echo.wait_until(start_at + warmup_s + seconds)
        else:
            limit = time.time() + 600.0
            while child.proc.poll() is None and time.time() < limit:
                echo.wait_until(time.time() + 1.0)
        after, calls_after = CpuSample.take(pids), command_calls(redis)
    finally:
        redis.close()
    deadline = time.monotonic() + REQUEST_TIMEOUT_S + 30.0
    while child.proc.poll() is None and time.monotonic() < deadline:
        echo.wait_until(time.time() + 0.5)
    echo.pump()
    result = work.children.collect(child, deadline)
    commands = {k: v - calls_before.get(k, 0) for k, v in calls_after.items()}
    span = after.at - before.at
    share = cpu_share(before, after)
    driver = round(100.0 * result["cpu_s"] / max(span, 1e-9))
    cpu_pct = {**{k: v for k, v in share.items() if k not in ("other", "steal")},
               "driver": driver, "other": max(0.0, share["other"] - driver),
               "steal": share["steal"]}
    return DriverRun(result, cpu_pct, {**cpu_seconds(before, after), "driver": result["cpu_s"]},
                     {k: v for k, v in commands.items() if v > 0}, span)


def write_plan(work: Workspace, name: str, plan: dict[str, Any]) -> Path:
    path = work.tmp / f"{name}.json"
    path.write_bytes(orjson.dumps(plan))
    return path


# --------------------------------------------------------------------------- payouts
def payouts_ended(gateway_url: str) -> int:
    """Payouts the gateway has seen end (its /metrics, every rail and outcome)."""
    with urllib.request.urlopen(f"{gateway_url}/metrics", timeout=5.0) as resp:  # noqa: S310
        text = resp.read().decode()
    return int(sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith("payrouter_payouts_total{")))


def payouts_by_outcome(gateway_url: str) -> dict[str, int]:
    with urllib.request.urlopen(f"{gateway_url}/metrics", timeout=5.0) as resp:  # noqa: S310
        text = resp.read().decode()
    found: dict[str, int] = {}
    for line in text.splitlines():
        if line.startswith("payrouter_payouts_total{"):
            outcome = line.split('outcome="', 1)[1].split('"', 1)[0]
            found[outcome] = found.get(outcome, 0) + int(float(line.rsplit(" ", 1)[1]))
    return found


def wait_payouts(gateway_url: str, expected: int, timeout_s: float) -> int:
    """Wait (bounded, a progress line a second) until `expected` payouts have ended."""
    begin = time.monotonic()
    ended = payouts_ended(gateway_url)
    while ended < expected:
        waited = time.monotonic() - begin
        if waited > timeout_s:
            raise BenchError(f"only {ended:,} of {expected:,} payouts ended after "
                             f"{timeout_s:.0f} s")
        print(f"  payouts: {ended:,}/{expected:,} ended ({waited:.0f} s)", file=sys.stderr,
              flush=True)
        time.sleep(1.0)
        ended = payouts_ended(gateway_url)
    return ended
