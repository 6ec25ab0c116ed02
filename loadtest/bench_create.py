"""Create-payment throughput of the gateway, as a ratio to a hello-world measured alongside.

    python -m loadtest.bench_create [--seconds N] [--connections C] [--json FILE]

Three targets, each its own process on 127.0.0.1, each loaded by the same generator
(`loadtest.generator`, its own process): `loadtest.hello` (aiohttp on uvloop, the
baseline), then `payrouter serve` creating quickpay payments on the in-process `instant`
rail, then on the `bank` rail through the bank simulator (`payrouter sim bank`, its own
process) over HTTP. The gateway uses an embedded redis-server in a temporary directory and
a configuration whose rate limits are too high to matter. At the end the simulator's ledger
must show exactly one charge per successful bank create.

Everything it starts runs in its own session and is stopped (SIGTERM, then SIGKILL) on
the way out, whether the run ends normally, by an error, by Ctrl-C or by SIGTERM. See
loadtest/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import itertools
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO, Any

import orjson
import redis as redis_sync

from loadtest.generator import Result, request_body
from router.embedded import EmbeddedRedis, free_port

HOST = "127.0.0.1"
READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
START_SLACK_S = 2.5  # generators are told to begin this long after they are spawned
REQUEST_TIMEOUT_S = 15.0  # per request, in the generator (the bank rail's timeout is 10 s)
HIGH_LIMIT = 1_000_000_000  # rate limits nobody reaches
# Variables the gateway reads on top of its configuration: a REDIS_URL left in the
# caller's environment must not point the benchmark at a real Redis.
_SCRUBBED_ENV = ("REDIS_URL", "PAYROUTER_DATA_DIR", "PAYROUTER_ADMIN_TOKEN",
                 "PAYROUTER_KEY_PEPPER")
_CLK_TCK = os.sysconf("SC_CLK_TCK")
_RUNS = itertools.count(1)  # makes every out_trade_no of a benchmark unique, across rounds


class BenchError(RuntimeError):
    pass


# --------------------------------------------------------------------------- processes
def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM it if the benchmark dies (even by SIGKILL)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@dataclass
class Child:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path
    out: Path | None

    def tail(self, lines: int = 15) -> str:
        try:
            text = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(f"    {line}" for line in text[-lines:])


@dataclass
class Children:
    """Every process the benchmark starts; `stop_all` ends them, newest first."""

    logs: Path
    env: dict[str, str]
    items: list[Child] = field(default_factory=list)

    def start(self, name: str, argv: Sequence[str], *, capture: bool = False,
              env: Mapping[str, str] | None = None) -> Child:
        log = self.logs / f"{name}.log"
        out = self.logs / f"{name}.out" if capture else None
        with contextlib.ExitStack() as files:
            err_f: IO[bytes] = files.enter_context(log.open("wb"))
            out_f: IO[bytes] = files.enter_context(out.open("wb")) if out else err_f
            proc = subprocess.Popen(
                list(argv), stdin=subprocess.DEVNULL, stdout=out_f, stderr=err_f,
                env={**self.env, **(env or {})}, cwd=Path(__file__).resolve().parent.parent,
                # Its own session: Ctrl-C reaches only the benchmark, which then stops the
                # children in order (the gateway before the Redis it is writing to).
                start_new_session=True,
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            )
        child = Child(name, proc, log, out)
        self.items.append(child)
        return child

    def stop(self, child: Child) -> None:
        if child.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.proc.pid, signal.SIGTERM)  # its group: workers included
            try:
                child.proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.proc.pid, signal.SIGKILL)
                child.proc.wait()
        if child in self.items:
            self.items.remove(child)

    def stop_all(self) -> None:
        for child in reversed(list(self.items)):
            self.stop(child)


def _http(method: str, url: str, body: bytes | None = None, timeout: float = 5.0) -> Any:
    req = urllib.request.Request(url, data=body, method=method,  # noqa: S310 - loopback only
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310
        return orjson.loads(resp.read())


def wait_ready(child: Child, url: str, timeout_s: float = READY_TIMEOUT_S) -> None:
    """Poll `url` until it answers 200 (a child's readiness has no event to await)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if child.proc.poll() is not None:
            raise BenchError(f"{child.name} exited with {child.proc.returncode}:\n{child.tail()}")
        with contextlib.suppress(OSError, ValueError):
            _http("GET", url, timeout=0.5)
            return
        time.sleep(0.05)
    raise BenchError(f"{child.name} not ready at {url} after {timeout_s:.0f} s:\n{child.tail()}")


# --------------------------------------------------------------------------- CPU accounting
def _proc_cpu_s(pid: int) -> float:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK  # utime + stime


def _machine_cpu_s() -> tuple[float, float]:
    """(busy, steal) core-seconds since boot, from /proc/stat."""
    try:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return 0.0, 0.0
    user, nice, system, _idle, _iowait, irq, softirq = values[:7]
    steal = values[7] if len(values) > 7 else 0
    return (user + nice + system + irq + softirq) / _CLK_TCK, steal / _CLK_TCK


@dataclass
class CpuSample:
    procs: dict[str, float]
    busy: float
    steal: float
    at: float

    @staticmethod
    def take(pids: Mapping[str, Sequence[int]]) -> CpuSample:
        busy, steal = _machine_cpu_s()
        procs = {name: sum(_proc_cpu_s(p) for p in ps) for name, ps in pids.items()}
        return CpuSample(procs, busy, steal, time.monotonic())


def cpu_share(a: CpuSample, b: CpuSample) -> dict[str, float]:
    """Percent of one core per process over [a, b]; `other` is the rest of the machine."""
    span = max(b.at - a.at, 1e-9)
    share = {name: 100.0 * (b.procs[name] - a.procs[name]) / span for name in a.procs}
    machine = 100.0 * (b.busy - a.busy) / span
    share["other"] = max(0.0, machine - sum(share.values()))
    share["steal"] = 100.0 * (b.steal - a.steal) / span
    return {k: round(v) for k, v in share.items()}


# --------------------------------------------------------------------------- a measurement
@dataclass
class Phase:
    target: str
    rps: float
    p50_ms: float
    p99_ms: float
    errors: dict[str, int]
    statuses: dict[str, int]  # every outcome in the window, 2xx included
    ok_total: int  # 2xx over the whole run (warmup and tail included)
    requests: int  # completed in the window
    cpu: dict[str, float]
    generator_late_s: float
    redis_commands: int | None = None  # processed by Redis during the window

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    def as_json(self, baseline: float) -> dict[str, Any]:
        return {"target": self.target, "rps": round(self.rps, 1),
                "p50_ms": round(self.p50_ms, 2), "p99_ms": round(self.p99_ms, 2),
                "errors": self.error_count, "errors_by_status": self.errors,
                "statuses": self.statuses,
                "ratio": round(self.rps / baseline, 4) if baseline else None,
                "requests": self.requests, "ok_total": self.ok_total,
                "cpu_pct_of_core": self.cpu,
                "redis_commands_per_request": self.redis_per_request()}

    def redis_per_request(self) -> float | None:
        if self.redis_commands is None or not self.requests:
            return None
        return round(self.redis_commands / self.requests, 2)


def percentile(sorted_values: Sequence[int], q: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, max(0, round(q * len(sorted_values)) - 1))
    return float(sorted_values[index])


@dataclass(frozen=True, slots=True)
class Load:
    connections: int
    generators: int
    warmup_s: float
    seconds: float


def measure(target: str, url: str, method: str | None, load: Load, children: Children,
            watched: Mapping[str, Sequence[int]], api_key: str | None = None,
            redis_url: str | None = None) -> Phase:
    """Run the generator(s) against `url` and fold their results into one Phase."""
    start_at = time.time() + START_SLACK_S
    share, extra = divmod(load.connections, load.generators)
    gens: list[Child] = []
    for i in range(load.generators):
        conns = share + (1 if i < extra else 0)
        argv = [sys.executable, "-m", "loadtest.generator", "--url", url,
                "--connections", str(conns), "--warmup", str(load.warmup_s),
                "--seconds", str(load.seconds), "--start-at", f"{start_at:.6f}",
                "--tag", f"{target}-{os.getpid()}-{next(_RUNS)}-{i}",
                "--timeout", str(REQUEST_TIMEOUT_S)]
        if method:
            argv += ["--method", method]
        env = {"PAYROUTER_BENCH_API_KEY": api_key} if api_key else None
        gens.append(children.start(f"gen-{target}-{i}", argv, capture=True, env=env))
    pids = {**watched, "generator": [g.proc.pid for g in gens]}

    _sleep_until(start_at + load.warmup_s)
    before = CpuSample.take(pids)
    commands_before = _redis_commands(redis_url)
    _sleep_until(start_at + load.warmup_s + load.seconds)
    after = CpuSample.take(pids)
    commands_after = _redis_commands(redis_url)

    deadline = time.monotonic() + REQUEST_TIMEOUT_S + 15.0
    results: list[Result] = []
    for gen in gens:
        try:
            code = gen.proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            raise BenchError(f"{gen.name} did not finish in time:\n{gen.tail()}") from None
        assert gen.out is not None
        if code != 0:
            raise BenchError(f"{gen.name} exited with {code}:\n{gen.tail()}")
        results.append(orjson.loads(gen.out.read_bytes()))
        children.stop(gen)

    window: dict[str, int] = {}
    total: dict[str, int] = {}
    latencies: list[int] = []
    for r in results:
        for k, v in r["window_statuses"].items():
            window[k] = window.get(k, 0) + v
        for k, v in r["total_statuses"].items():
            total[k] = total.get(k, 0) + v
        latencies.extend(r["latencies_us"])
    latencies.sort()
    return Phase(
        target=target,
        rps=sum(window.values()) / load.seconds,
        p50_ms=percentile(latencies, 0.50) / 1000,
        p99_ms=percentile(latencies, 0.99) / 1000,
        errors={k: v for k, v in sorted(window.items()) if not _is_2xx(k)},
        statuses=dict(sorted(window.items())),
        ok_total=sum(v for k, v in total.items() if _is_2xx(k)),
        requests=sum(window.values()),
        cpu=cpu_share(before, after),
        generator_late_s=max(r["late_s"] for r in results),
        redis_commands=(commands_after - commands_before
                        if commands_before is not None and commands_after is not None
                        else None),
    )


def _redis_commands(url: str | None) -> int | None:
    """Commands Redis has processed since it started (INFO stats)."""
    if url is None:
        return None
    try:
        client = redis_sync.Redis.from_url(url, socket_timeout=2.0)
        try:
            return int(client.info("stats")["total_commands_processed"])
        finally:
            client.close()
    except (redis_sync.RedisError, OSError, KeyError, ValueError):
        return None


def median_phase(runs: Sequence[Phase]) -> Phase:
    """The round with the median throughput (the lower one of two middles)."""
    ordered = sorted(runs, key=lambda p: p.rps)
    return ordered[(len(ordered) - 1) // 2]


def _is_2xx(outcome: str) -> bool:
    return outcome.isdigit() and 200 <= int(outcome) < 300


def _sleep_until(wall: float) -> None:
    time.sleep(max(0.0, wall - time.time()))


# --------------------------------------------------------------------------- wrk (reference)
_WRK_RPS = re.compile(r"Requests/sec:\s+([0-9.]+)")


def wrk_rps(output: str) -> float | None:
    found = _WRK_RPS.search(output)
    return float(found.group(1)) if found else None


def run_wrk(wrk: str, url: str, load: Load, tmp: Path) -> float | None:
    """wrk's figure for the hello-world, for reference only (not used in the ratios)."""
    script = tmp / "post.lua"
    body = request_body(None, "wrk", 1).decode()
    script.write_text(f'wrk.method = "POST"\nwrk.body = {orjson.dumps(body).decode()}\n'
                      'wrk.headers["Content-Type"] = "application/json"\n')
    try:
        done = subprocess.run(
            [wrk, "-t1", f"-c{load.connections}", f"-d{max(1, round(load.seconds))}s",
             "-s", str(script), url],
            capture_output=True, text=True, timeout=load.seconds + 30, check=False,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return wrk_rps(done.stdout)


# --------------------------------------------------------------------------- the gateway
def gateway_config(tmp: Path, port: int, redis_url: str, bank_url: str,
                   keys_dir: Path) -> Path:
    path = tmp / "gateway.toml"
    path.write_text(f"""\
data_dir = {orjson.dumps(str(tmp / "data")).decode()}

[server]
host = "{HOST}"
port = {port}

[redis]
url = {orjson.dumps(redis_url).decode()}

[limits.merchant]
rps = {HIGH_LIMIT}
burst = {HIGH_LIMIT}

[limits.payer]
rps = {HIGH_LIMIT}
burst = {HIGH_LIMIT}

[rails.instant]

[rails.bank]
base_url = "{bank_url}"
keys_dir = {orjson.dumps(str(keys_dir)).decode()}
timeout_s = 10.0
""")
    return path


def create_merchant(redis_url: str, env: Mapping[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "router.cli", "merchants", "create", "--name", "bench",
         "--redis-url", redis_url],
        capture_output=True, text=True, timeout=60, check=False, env=dict(env),
    )
    for line in done.stdout.splitlines():
        name, _, value = line.partition(" ")
        if name == "api_key" and value:
            return value.strip()
    raise BenchError(f"payrouter merchants create failed ({done.returncode}): "
                     f"{done.stderr.strip()[-500:]}")


# --------------------------------------------------------------------------- report
def table(phases: Sequence[Phase], baseline: float) -> str:
    rows = [("target", "req/s", "p50 ms", "p99 ms", "errors", "ratio")]
    for p in phases:
        rows.append((p.target, f"{p.rps:,.0f}", f"{p.p50_ms:.2f}", f"{p.p99_ms:.2f}",
                     str(p.error_count), f"{p.rps / baseline:.3f}" if baseline else "-"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for n, row in enumerate(rows):
        cells = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:],
                                                                         strict=True)]
        lines.append("  ".join(cells))
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    for p in phases:
        if p.errors:
            lines.append(f"errors ({p.target}): "
                         + ", ".join(f"{k} x{v}" for k, v in p.errors.items()))
    lines.append("CPU during the window, % of one core:")
    for p in phases:
        lines.append(f"  {p.target:<12}" + "  ".join(f"{k} {v:.0f}" for k, v in p.cpu.items()))
    for p in phases:
        if p.target != "hello-world" and set(p.statuses) - {"201"} - set(p.errors):
            lines.append(f"warning ({p.target}): 2xx other than 201 (not new payments): "
                         f"{p.statuses}")
    for p in phases:
        if (per := p.redis_per_request()) is not None:
            lines.append(f"Redis commands per request ({p.target}): {per:.1f}")
    late = [p for p in phases if p.generator_late_s > 0.2]
    for p in late:
        lines.append(f"warning ({p.target}): a generator began {p.generator_late_s:.2f} s "
                     "late; the window is shorter than asked")
    return "\n".join(lines)


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
                   help="repeat hello/instant/bank; report each target's median round")
    p.add_argument("--json", type=Path, help="also write the JSON line to this file")
    p.add_argument("--no-wrk", action="store_true", help="skip wrk even if it is on PATH")
    return p


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


@contextlib.contextmanager
def _uninterruptible() -> Iterator[None]:
    """Cleanup must not be cut short by a second Ctrl-C."""
    old = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if (args.seconds <= 0 or args.warmup < 0 or args.connections < 1
            or not 1 <= args.generators <= args.connections or args.workers < 1
            or args.rounds < 1):
        print("bench_create: need --seconds > 0, --warmup >= 0, --connections >= 1, "
              "1 <= --generators <= --connections, --workers >= 1, --rounds >= 1", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _on_sigterm)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with it ignored
    load = Load(args.connections, args.generators, args.warmup, args.seconds)
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED_ENV}
    tmp = Path(tempfile.mkdtemp(prefix="prbench-"))  # short: the Redis socket lives here
    (tmp / "logs").mkdir()
    children = Children(tmp / "logs", env)
    redis = EmbeddedRedis(tmp / "redis")
    keep_logs = False
    try:
        return _bench(args, load, tmp, children, redis, env)
    except BenchError as exc:
        print(f"bench_create: {exc}\n(logs kept in {tmp / 'logs'})", file=sys.stderr)
        keep_logs = True
        return 1
    except KeyboardInterrupt:
        print("bench_create: interrupted, stopping everything", file=sys.stderr)
        return 130
    finally:
        with _uninterruptible():
            children.stop_all()
            redis.stop()
            if not keep_logs:
                shutil.rmtree(tmp, ignore_errors=True)


def _bench(args: argparse.Namespace, load: Load, tmp: Path, children: Children,
           redis: EmbeddedRedis, env: Mapping[str, str]) -> int:
    py = sys.executable
    print(f"bench_create: {load.connections} connections, {load.generators} generator "
          f"process(es), {load.warmup_s:g} s warmup + {load.seconds:g} s per target, "
          f"{os.cpu_count()} CPUs", flush=True)

    # 1. The targets: the hello-world, Redis, the bank simulator, a merchant, the gateway.
    port = free_port()
    hello = children.start("hello", [py, "-m", "loadtest.hello", "--port", str(port)])
    redis_url = redis.start()
    assert redis.process is not None
    keys_dir = tmp / "bank-keys"
    sim_port = free_port()
    sim = children.start("bank-sim", [py, "-m", "router.cli", "sim", "bank", "--port",
                                      str(sim_port), "--keys-dir", str(keys_dir)])
    sim_url = f"http://{HOST}:{sim_port}"
    wait_ready(sim, f"{sim_url}/sim/faults")
    api_key = create_merchant(redis_url, env)
    gw_port = free_port()
    config = gateway_config(tmp, gw_port, redis_url, sim_url, keys_dir)
    gateway = children.start("gateway", [py, "-m", "router.cli", "serve", "--config",
                                         str(config), "--workers", str(args.workers)])
    gw_url = f"http://{HOST}:{gw_port}"
    wait_ready(hello, f"http://{HOST}:{port}/healthz")
    wait_ready(gateway, f"{gw_url}/healthz")
    wait_ready(gateway, f"{gw_url}/readyz")
    watched = {"gateway": _group_pids(gateway.proc.pid), "redis": [redis.process.pid],
               "bank-sim": [sim.proc.pid]}

    # 2. Rounds of hello-world, instant, bank: on a noisy machine, neighbours in time
    # see the same neighbours' load; the median round of each target is reported.
    rounds: dict[str, list[Phase]] = {"hello-world": [], "instant": [], "bank": []}
    for n in range(args.rounds):
        label = f" (round {n + 1}/{args.rounds})" if args.rounds > 1 else ""
        print(f"measuring hello-world{label} ...", flush=True)
        rounds["hello-world"].append(measure("hello-world", f"http://{HOST}:{port}/", None,
                                             load, children, {"target": [hello.proc.pid]}))
        for method in ("instant", "bank"):
            print(f"measuring create payment, {method} rail{label} ...", flush=True)
            rounds[method].append(measure(method, f"{gw_url}/v1/payments", method, load,
                                          children, watched, api_key, redis_url))
    wrk = None if args.no_wrk else shutil.which("wrk")
    wrk_figure = run_wrk(wrk, f"http://{HOST}:{port}/", load, tmp) if wrk else None
    phases = [median_phase(runs) for runs in rounds.values()]
    base = phases[0]

    # 3. No double charge: one bank charge per successful bank create (every round, warmup
    # and tail included).
    ledger = _http("GET", f"{sim_url}/sim/ledger", timeout=30.0)["totals"]
    bank_ok = sum(p.ok_total for p in rounds["bank"])
    charges_ok = ledger["charges"] == bank_ok

    baseline = base.rps
    print()
    print(table(phases, baseline))
    if args.rounds > 1:
        for target, runs in rounds.items():
            lines = ", ".join(f"{p.rps:,.0f}" for p in runs)
            print(f"req/s by round ({target}): {lines}")
    if wrk_figure is not None:
        print(f"wrk, hello-world (reference only, not in the ratios): {wrk_figure:,.0f} req/s")
    print(f"bank ledger: {ledger['charges']} charges, {ledger['orders']} orders; "
          f"successful bank creates: {bank_ok} -> "
          f"{'OK (no double charge)' if charges_ok else 'MISMATCH'}")
    record = {
        "bench": "create_payment", "seconds": load.seconds, "warmup_s": load.warmup_s,
        "connections": load.connections, "generators": load.generators,
        "gateway_workers": args.workers, "cpus": os.cpu_count(), "rounds": args.rounds,
        "rps_by_round": {t: [round(p.rps, 1) for p in runs] for t, runs in rounds.items()},
        "targets": [p.as_json(baseline) for p in phases],
        "wrk_hello_rps": wrk_figure,
        "ledger": {"charges": ledger["charges"], "orders": ledger["orders"],
                   "bank_ok_total": bank_ok, "ok": charges_ok},
    }
    line = orjson.dumps(record).decode()
    print(line)
    if args.json:
        args.json.write_text(line + "\n")
    return 0 if charges_ok else 1


def _group_pids(pgid: int) -> list[int]:
    """The gateway and its worker processes (all in the group it leads)."""
    time.sleep(0.2)
    found = [pgid]
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == pgid:
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[2]) == pgid:
                found.append(int(entry.name))
    return found


if __name__ == "__main__":
    raise SystemExit(main())
