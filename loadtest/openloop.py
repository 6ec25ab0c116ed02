"""The open-loop load driver: requests leave on a fixed schedule, answered or not.

    python -m loadtest.openloop --url http://127.0.0.1:8080/v1/payments --method instant \\
        --rate 700 --seconds 20 [--warmup 2] [--max-requests N] > result.json

Request i is due at start + i / rate. The driver sends it then, whether or not earlier
requests have been answered (they are not waited for: no coordinated omission), and its
latency is measured from that *intended* send time, so a server stall counts against
every request that should have left during it. Latencies go into HdrHistograms (3
significant digits); the uncorrected latency (from the moment the request really left)
and the driver's own lag (how late it sent) are recorded as well.

Each request is the closed-loop generator's: a quickpay payment with a fresh
`out_trade_no` (`--method` picks the rail; without it, the body is sent as is, e.g. to
the hello-world). The API key comes from PAYROUTER_BENCH_API_KEY. Only loopback URLs are
accepted. The run is bounded: `--warmup` + `--seconds` of schedule, at most
`--max-requests` requests, then at most `--timeout` for the last answers.

stdout: one JSON object (see `result`); stderr: a progress line per second (sent rate vs
the intended rate, answers, in flight, errors, p99 of the last second). If the driver
could not send at the intended rate (`achieved_rate` below 97 % of `rate`, or requests
dropped at `--max-in-flight`), `kept_up` is false and a warning says so.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import uvloop

from loadtest.generator import API_KEY_ENV, post, request_body
from loadtest.loopback import is_loopback_url
from loadtest.progress import keep_writing_count, write_count
from loadtest.recorder import Recorder, summary_ms

KEEP_UP = 0.97  # below this share of the intended rate, the driver did not keep up
LAG_WARN_MS = 10.0  # a send lag p99 above this: the driver's own delay is in the latencies
TICK_S = 0.001  # the scheduler wakes at most this often; requests due meanwhile leave together


@dataclass(frozen=True, slots=True)
class Config:
    url: str
    method: str | None
    rate: float
    seconds: float
    warmup_s: float
    max_requests: int
    connections: int
    max_in_flight: int
    timeout_s: float
    start_at: float
    tag: str
    progress: bool
    api_key: str | None = None
    progress_file: Path | None = None  # answers so far, rewritten once a second

    @property
    def planned(self) -> int:
        return min(self.max_requests, math.floor(self.rate * (self.warmup_s + self.seconds)))


def default_connections(rate: float) -> int:
    """Enough keep-alive connections for 100 ms of answers at `rate` (Little's law), 64 at
    least; connections open only as they are needed."""
    return max(64, min(4096, math.ceil(rate * 0.1)))


async def run(cfg: Config) -> dict[str, Any]:
    headers = {"Content-Type": "application/json"}
    if cfg.api_key:
        headers["Authorization"] = f"Bearer {cfg.api_key}"
    connector = aiohttp.TCPConnector(limit=cfg.connections, limit_per_host=cfg.connections)
    timeout = aiohttp.ClientTimeout(total=cfg.timeout_s)
    interval = 1.0 / cfg.rate
    last_due = (cfg.planned - 1) * interval if cfg.planned else 0.0
    rec = Recorder(cfg.warmup_s, min(cfg.warmup_s + cfg.seconds, last_due + interval))
    perf = time.perf_counter
    tasks: set[asyncio.Task[None]] = set()

    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        delay = cfg.start_at - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
        late = max(0.0, -delay) if cfg.start_at > 0 else 0.0
        t0 = perf()

        async def one(seq: int, intended: float) -> None:
            actual = perf() - t0
            rec.sent(intended, actual)
            outcome = await post(session, cfg.url, request_body(cfg.method, cfg.tag, seq),
                                 headers)
            rec.done(intended, actual, perf() - t0, outcome)

        progress = (asyncio.create_task(_progress(cfg, rec, t0)) if cfg.progress else None)
        counting = (asyncio.create_task(keep_writing_count(
            cfg.progress_file, lambda: sum(rec.total_statuses.values())))
            if cfg.progress_file else None)
        cpu0 = time.process_time()
        seq, planned = 0, cfg.planned
        while seq < planned:
            # Wake once per tick at most (the loop's timers have 1 ms resolution): spinning
            # on sub-millisecond sleeps would cost the driver more CPU than its requests.
            await asyncio.sleep(max(TICK_S, seq * interval - (perf() - t0)))
            now = perf() - t0
            while seq < planned and seq * interval <= now:  # everything due: send it
                if rec.in_flight >= cfg.max_in_flight:
                    rec.not_sent(seq * interval)
                else:
                    task = asyncio.create_task(one(seq + 1, seq * interval))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                seq += 1
        if tasks:
            await asyncio.wait(set(tasks), timeout=cfg.timeout_s + 5.0)
        cpu_s = time.process_time() - cpu0
        if counting is not None and cfg.progress_file is not None:
            counting.cancel()
            write_count(cfg.progress_file, sum(rec.total_statuses.values()))
        if progress is not None:
            progress.cancel()
            print(file=sys.stderr, flush=True)
    return result(cfg, rec, late, cpu_s)


async def _progress(cfg: Config, rec: Recorder, t0: float) -> None:
    end = "\r" if sys.stderr.isatty() else "\n"
    total = cfg.warmup_s + cfg.seconds
    while True:
        await asyncio.sleep(1.0)
        now = time.perf_counter() - t0
        second = rec.seconds.get(int(now) - 1)
        if second is None:
            continue
        lat = second.latency
        p99 = (f"{lat.get_value_at_percentile(99) / 1000:.1f} ms"
               if lat.get_total_count() else "-")
        phase = "warmup" if now < cfg.warmup_s else "measuring"
        print(f"[{min(now, total):5.0f}/{total:.0f} s {phase}] sent {second.sent:,}/s "
              f"(intended {cfg.rate:,.0f}/s)  answered {second.completed:,}/s  "
              f"in flight {rec.in_flight:,}  errors {second.errors:,}  p99 {p99}   ",
              end=end, file=sys.stderr, flush=True)


def result(cfg: Config, rec: Recorder, late_s: float, cpu_s: float) -> dict[str, Any]:
    span = max(rec.window_end - rec.window_start, 1e-9)
    achieved = rec.sent_in_window / span
    dropped = rec.total_statuses.get("not_sent", 0)
    kept_up = achieved >= KEEP_UP * cfg.rate and dropped == 0
    errors = {k: v for k, v in sorted(rec.window_statuses.items())
              if not (k.isdigit() and int(k) < 400)}
    return {
        "url": cfg.url, "method": cfg.method, "rate": cfg.rate,
        "achieved_rate": round(achieved, 1),
        "completed_rate": round(rec.answered_in_window / span, 1),
        "kept_up": kept_up, "window_s": round(span, 3), "warmup_s": cfg.warmup_s,
        "planned": cfg.planned, "connections": cfg.connections,
        "peak_in_flight": rec.max_in_flight, "late_s": round(late_s, 3),
        "cpu_s": round(cpu_s, 3),
        "latency_ms": summary_ms(rec.corrected),
        "uncorrected_latency_ms": summary_ms(rec.uncorrected),
        "send_lag_ms": summary_ms(rec.lag),
        "window_statuses": dict(sorted(rec.window_statuses.items())),
        "total_statuses": dict(sorted(rec.total_statuses.items())),
        "errors": sum(errors.values()), "errors_by_status": errors,
        "series": rec.series(),
        "histogram": rec.corrected.encode().decode(),
    }


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m loadtest.openloop", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", required=True, help="loopback only")
    p.add_argument("--method", help="the payment's method (instant, bank); none: omitted")
    p.add_argument("--rate", type=float, required=True, help="requests per second")
    p.add_argument("--seconds", type=float, default=10.0, help="measured schedule")
    p.add_argument("--warmup", type=float, default=2.0, help="unmeasured schedule first")
    p.add_argument("--max-requests", type=int, default=1_000_000,
                   help="stop scheduling after this many (default 1,000,000)")
    p.add_argument("--connections", type=int,
                   help="keep-alive pool size (default: 100 ms of the rate, at least 64)")
    p.add_argument("--max-in-flight", type=int, default=20_000,
                   help="above this, a due request is dropped and counted as not_sent")
    p.add_argument("--timeout", type=float, default=10.0, help="per request, seconds")
    p.add_argument("--start-at", type=float, default=0.0, help="unix time to begin at")
    p.add_argument("--tag", default="openloop", help="out_trade_no prefix, unique per run")
    p.add_argument("--no-progress", action="store_true", help="no progress line on stderr")
    p.add_argument("--progress-file", type=Path,
                   help="write the number of answers so far here, once a second")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if not is_loopback_url(args.url):
        print(f"openloop: refusing {args.url!r}: load goes to loopback addresses only "
              "(localhost, 127.0.0.0/8, ::1)", file=sys.stderr)
        return 2
    if (args.rate <= 0 or args.seconds <= 0 or args.warmup < 0 or args.max_requests < 1
            or args.timeout <= 0 or args.max_in_flight < 1
            or (args.connections is not None and args.connections < 1)):
        print("openloop: need --rate > 0, --seconds > 0, --warmup >= 0, --max-requests >= 1, "
              "--timeout > 0, --max-in-flight >= 1, --connections >= 1", file=sys.stderr)
        return 2
    cfg = Config(url=args.url, method=args.method, rate=args.rate, seconds=args.seconds,
                 warmup_s=args.warmup, max_requests=args.max_requests,
                 connections=args.connections or default_connections(args.rate),
                 max_in_flight=args.max_in_flight, timeout_s=args.timeout,
                 start_at=args.start_at, tag=args.tag, progress=not args.no_progress,
                 api_key=os.environ.get(API_KEY_ENV), progress_file=args.progress_file)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        out = runner.run(run(cfg))
    lag_p99 = out["send_lag_ms"].get("p99", 0.0)
    if lag_p99 > LAG_WARN_MS:
        print(f"openloop: WARNING: the driver sent late (send lag p99 {lag_p99:.1f} ms): "
              "its own delay is part of the latencies", file=sys.stderr)
    if not out["kept_up"]:
        print(f"openloop: WARNING: the driver did not keep up: sent {out['achieved_rate']:,.0f}"
              f"/s of {cfg.rate:,.0f}/s intended (dropped at --max-in-flight: "
              f"{out['total_statuses'].get('not_sent', 0)}); the server was under-driven",
              file=sys.stderr)
    sys.stdout.buffer.write(orjson.dumps(out) + b"\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
