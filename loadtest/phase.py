"""One measurement: load generator processes against a target, CPU and Redis watched.

`run_window` is the shared part: start the generator processes with a common wall-clock
start, sample CPU (and Redis commands) over the measured window, collect their JSON.
`measure` uses it with the closed-loop `loadtest.generator` and folds the results into a
`Phase`; the suite uses it with `loadtest.openloop` too.
"""

from __future__ import annotations

import itertools
import os
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis as redis_sync

from loadtest.cpu import CpuSample, cpu_seconds, cpu_share
from loadtest.generator import API_KEY_ENV, Result
from loadtest.procs import Child, Children
from loadtest.progress import Progress, read_counts
from router.store import keys

START_SLACK_S = 2.5  # generators are told to begin this long after they are spawned
REQUEST_TIMEOUT_S = 15.0  # per request, in the generator (the bank rail's timeout is 10 s)
_RUNS = itertools.count(1)  # makes every out_trade_no of a benchmark unique, across rounds
# The gateway's queues (`backlog`) at a window's start and end; None where unread.
Backlog = tuple[dict[str, int] | None, dict[str, int] | None]


def unique_tag(target: str, index: int = 0) -> str:
    """An out_trade_no prefix no other generator of this benchmark uses."""
    return f"{target}-{os.getpid()}-{next(_RUNS)}-{index}"


@dataclass(frozen=True, slots=True)
class Load:
    connections: int
    generators: int
    warmup_s: float
    seconds: float


@dataclass
class Window:
    results: list[Any]  # each generator's JSON
    cpu: dict[str, float]  # % of one core per process, over the measured window
    cpu_s: dict[str, float]  # CPU seconds per watched process, over the measured window
    redis_commands: int | None  # processed by Redis during the window
    backlog: Backlog = (None, None)


@dataclass(frozen=True, slots=True)
class GenSpec:
    name: str
    argv: list[str]


def run_window(children: Children, gens: Sequence[GenSpec], start_at: float, load: Load,
               watched: Mapping[str, Sequence[int]], api_key: str | None,
               redis_url: str | None) -> Window:
    """Start `gens` (each told to begin at `start_at`), watch the window, collect them."""
    env = {API_KEY_ENV: api_key} if api_key else None
    counts = [children.logs / f"{g.name}.count" for g in gens]
    started: list[Child] = [
        children.start(g.name, [*g.argv, "--progress-file", str(count)], capture=True, env=env)
        for g, count in zip(gens, counts, strict=True)]
    pids = {**watched, "generator": [g.proc.pid for g in started]}
    watch = Watch(gens[0].name, start_at, load, counts)

    watch.until(start_at + load.warmup_s)
    before = CpuSample.take(pids)
    commands_before, queued_before = redis_commands(redis_url), backlog(redis_url)
    watch.until(start_at + load.warmup_s + load.seconds)
    after = CpuSample.take(pids)
    commands_after, queued_after = redis_commands(redis_url), backlog(redis_url)

    deadline = time.monotonic() + REQUEST_TIMEOUT_S + 15.0
    results = [children.collect(g, deadline) for g in started]
    watch.finish()  # each generator wrote its last count before it exited
    commands = (commands_after - commands_before
                if commands_before is not None and commands_after is not None else None)
    return Window(results, cpu_share(before, after), cpu_seconds(before, after), commands,
                  (queued_before, queued_after))


class Watch:
    """A progress line while the generators run: seconds done of warmup + window, their
    answers per second (from the counts they write), the time left."""

    def __init__(self, name: str, start_at: float, load: Load, counts: list[Path]) -> None:
        self.start_at = start_at
        self.counts = counts
        self.progress = Progress(f"  {name}", load.warmup_s + load.seconds, "s")
        self.warmup_s = load.warmup_s
        self.last = (time.monotonic(), 0)

    def until(self, wall: float) -> None:
        while (left := wall - time.time()) > 0:
            time.sleep(min(1.0, left))
            now, answered = time.monotonic(), read_counts(self.counts)
            rate = (answered - self.last[1]) / max(1e-9, now - self.last[0])
            self.last = (now, answered)
            done = max(0.0, time.time() - self.start_at)
            phase = ("starting" if time.time() < self.start_at
                     else "warmup" if done < self.warmup_s else "measuring")
            self.progress.show(min(done, self.progress.total), rate,
                               self.progress.total - done, f"{answered:,} answers, {phase}")

    def finish(self) -> None:
        answered = read_counts(self.counts)
        self.progress.finish(f"{answered:,} answers ({answered / self.progress.total:,.0f}/s "
                             "over warmup and window, the last answers included)")


# --------------------------------------------------------------------------- closed loop
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
    cpu_s: dict[str, float]  # per watched process, over the window
    generator_late_s: float
    redis_commands: int | None = None  # processed by Redis during the window
    backlog: Backlog = (None, None)  # the gateway's queues at the window's start and end

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
                "cpu_pct_of_core": self.cpu, "cpu_us_per_request": self.cpu_us_per_request(),
                "redis_commands_per_request": self.redis_per_request(),
                "backlog": {"start": self.backlog[0], "end": self.backlog[1]}}

    def cpu_us_per_request(self) -> dict[str, float]:
        """Each watched process's CPU time per request completed in the window (µs): what a
        create costs the gateway, Redis, the bank simulator, the generator."""
        if not self.requests:
            return {}
        return {name: round(1e6 * used / self.requests, 1) for name, used in self.cpu_s.items()}

    def redis_per_request(self) -> float | None:
        if self.redis_commands is None or not self.requests:
            return None
        return round(self.redis_commands / self.requests, 2)


def percentile(sorted_values: Sequence[int], q: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, max(0, round(q * len(sorted_values)) - 1))
    return float(sorted_values[index])


def measure(target: str, url: str, method: str | None, load: Load, children: Children,
            watched: Mapping[str, Sequence[int]], api_key: str | None = None,
            redis_url: str | None = None) -> Phase:
    """Run the closed-loop generator(s) against `url` and fold their results into a Phase."""
    start_at = time.time() + START_SLACK_S
    share, extra = divmod(load.connections, load.generators)
    gens: list[GenSpec] = []
    for i in range(load.generators):
        conns = share + (1 if i < extra else 0)
        argv = [sys.executable, "-m", "loadtest.generator", "--url", url,
                "--connections", str(conns), "--warmup", str(load.warmup_s),
                "--seconds", str(load.seconds), "--start-at", f"{start_at:.6f}",
                "--tag", unique_tag(target, i), "--timeout", str(REQUEST_TIMEOUT_S)]
        if method:
            argv += ["--method", method]
        gens.append(GenSpec(f"gen-{target}-{i}", argv))
    window = run_window(children, gens, start_at, load, watched, api_key, redis_url)
    results: list[Result] = window.results

    in_window: dict[str, int] = {}
    total: dict[str, int] = {}
    latencies: list[int] = []
    for r in results:
        for k, v in r["window_statuses"].items():
            in_window[k] = in_window.get(k, 0) + v
        for k, v in r["total_statuses"].items():
            total[k] = total.get(k, 0) + v
        latencies.extend(r["latencies_us"])
    latencies.sort()
    return Phase(
        target=target,
        rps=sum(in_window.values()) / load.seconds,
        p50_ms=percentile(latencies, 0.50) / 1000,
        p99_ms=percentile(latencies, 0.99) / 1000,
        errors={k: v for k, v in sorted(in_window.items()) if not is_2xx(k)},
        statuses=dict(sorted(in_window.items())),
        ok_total=sum(v for k, v in total.items() if is_2xx(k)),
        requests=sum(in_window.values()),
        cpu=window.cpu,
        cpu_s=window.cpu_s,
        generator_late_s=max(r["late_s"] for r in results),
        redis_commands=window.redis_commands,
        backlog=window.backlog,
    )


def redis_commands(url: str | None) -> int | None:
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


def backlog(url: str | None) -> dict[str, int] | None:
    """What waits in the gateway's queues, over every shard (ids carry at most 256): webhook
    events not yet delivered (the outbox streams) and money movements not yet chained (the
    journal inboxes). A queue that grows over a window is work the rate does not pay for."""
    if url is None:
        return None
    try:
        client = redis_sync.Redis.from_url(url, socket_timeout=2.0)
        try:
            pipe = client.pipeline(transaction=False)
            for shard in range(256):
                pipe.xlen(keys.outbox(shard))
                pipe.xlen(keys.journal_inbox(shard))
            lengths = [int(n) for n in pipe.execute()]
        finally:
            client.close()
    except (redis_sync.RedisError, OSError, ValueError):
        return None
    return {"webhooks": sum(lengths[0::2]), "journal": sum(lengths[1::2])}


def median_phase(runs: Sequence[Phase]) -> Phase:
    """The round with the median throughput (the lower one of two middles)."""
    ordered = sorted(runs, key=lambda p: p.rps)
    return ordered[(len(ordered) - 1) // 2]


def is_2xx(outcome: str) -> bool:
    return outcome.isdigit() and 200 <= int(outcome) < 300
