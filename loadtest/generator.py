"""The load generator: one process, asyncio + uvloop + aiohttp client, closed loop.

    python -m loadtest.generator --url http://127.0.0.1:8080/v1/payments --method instant

`--connections` keep-alive connections, each with one request in flight at a time (a
closed loop: the next request leaves when the answer has been read). It waits until the
wall-clock `--start-at` (so that several generator processes share one window), runs
`--warmup` seconds unmeasured, then `--seconds` measured, then lets the requests in flight
finish and prints one JSON line on stdout (see `Result`). Every request creates a new
payment: a unique `out_trade_no` and a distinct `payer.auth_code` ending in 1 (a charge that
succeeds at once). The API key, if any, comes from the PAYROUTER_BENCH_API_KEY variable
(not argv, which other users can read).

Counted in the window: requests that *complete* inside it, wrk's convention. Counted over
the whole run (warmup and tail included): every answer by status, which is what the bank
ledger is checked against.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict

import aiohttp
import orjson
import uvloop

from loadtest.progress import keep_writing_count, write_count

API_KEY_ENV = "PAYROUTER_BENCH_API_KEY"


class Result(TypedDict):
    """What one generator prints: the measured window and the whole run."""

    window_s: float
    window_statuses: dict[str, int]  # "201", "429", or an exception name such as "timeout"
    latencies_us: list[int]  # every request completed in the window, any status
    total_statuses: dict[str, int]  # warmup, window and tail together
    cpu_s: float  # this process's CPU time during the window
    late_s: float  # how late after --start-at the load began (0 if on time)


@dataclass(frozen=True, slots=True)
class Config:
    url: str
    method: str | None
    connections: int
    warmup_s: float
    seconds: float
    start_at: float
    tag: str
    timeout_s: float
    progress_file: Path | None = None  # answers so far, rewritten once a second


def request_body(method: str | None, tag: str, seq: int) -> bytes:
    """A quickpay payment that succeeds at once on both rails (auth_code ends in 1)."""
    method_part = f'"method":"{method}",' if method else ""
    return (
        f'{{"amount":100,"currency":"CNY","out_trade_no":"{tag}-{seq}",'
        f'"scene":"quickpay",{method_part}"description":"bench",'
        f'"payer":{{"auth_code":"13{seq:015d}1"}}}}'
    ).encode()


async def post(session: aiohttp.ClientSession, url: str, body: bytes,
               headers: dict[str, str]) -> str:
    """POST `body` and read the answer: its status ("201"), or what went wrong instead
    ("timeout", or the aiohttp exception's name)."""
    try:
        async with session.post(url, data=body, headers=headers) as resp:
            await resp.read()
            return str(resp.status)
    except TimeoutError:
        return "timeout"
    except aiohttp.ClientError as exc:
        return type(exc).__name__


async def run(cfg: Config) -> Result:
    headers = {"Content-Type": "application/json"}
    if key := os.environ.get(API_KEY_ENV):
        headers["Authorization"] = f"Bearer {key}"
    connector = aiohttp.TCPConnector(limit=cfg.connections, limit_per_host=cfg.connections)
    timeout = aiohttp.ClientTimeout(total=cfg.timeout_s)
    total: Counter[str] = Counter()
    window: Counter[str] = Counter()
    latencies: list[int] = []
    seq = 0
    perf = time.perf_counter

    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        delay = cfg.start_at - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
        late = max(0.0, -delay)
        begin = perf()
        w_start = begin + cfg.warmup_s
        w_end = w_start + cfg.seconds

        async def worker() -> None:
            nonlocal seq
            while perf() < w_end:
                seq += 1
                body = request_body(cfg.method, cfg.tag, seq)
                t0 = perf()
                outcome = await post(session, cfg.url, body, headers)
                t1 = perf()
                total[outcome] += 1
                if w_start <= t1 <= w_end:
                    window[outcome] += 1
                    latencies.append(int((t1 - t0) * 1e6))
                if not outcome.isdigit():
                    await asyncio.sleep(0.01)  # a refused connection must not spin

        async def cpu_in_window() -> float:
            await asyncio.sleep(max(0.0, w_start - perf()))
            c0 = time.process_time()
            await asyncio.sleep(max(0.0, w_end - perf()))
            return time.process_time() - c0

        cpu_task = asyncio.create_task(cpu_in_window())
        counting = (asyncio.create_task(keep_writing_count(cfg.progress_file,
                                                           lambda: sum(total.values())))
                    if cfg.progress_file else None)
        await asyncio.gather(*(worker() for _ in range(cfg.connections)))
        cpu_s = await cpu_task
        if counting is not None and cfg.progress_file is not None:
            counting.cancel()
            write_count(cfg.progress_file, sum(total.values()))

    return Result(window_s=cfg.seconds, window_statuses=dict(window), latencies_us=latencies,
                  total_statuses=dict(total), cpu_s=cpu_s, late_s=late)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m loadtest.generator", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", required=True)
    p.add_argument("--method", help="the payment's method (instant, bank); none: omitted")
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--warmup", type=float, default=2.0)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--start-at", type=float, default=0.0, help="unix time to begin at")
    p.add_argument("--tag", default="bench", help="out_trade_no prefix, unique per process")
    p.add_argument("--timeout", type=float, default=15.0, help="per request, seconds")
    p.add_argument("--progress-file", type=Path,
                   help="write the number of answers so far here, once a second")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.connections < 1 or args.seconds <= 0 or args.warmup < 0:
        print("generator: need --connections >= 1, --seconds > 0, --warmup >= 0",
              file=sys.stderr)
        return 2
    cfg = Config(url=args.url, method=args.method, connections=args.connections,
                 warmup_s=args.warmup, seconds=args.seconds, start_at=args.start_at,
                 tag=args.tag, timeout_s=args.timeout, progress_file=args.progress_file)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        result = runner.run(run(cfg))
    sys.stdout.buffer.write(orjson.dumps(result) + b"\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
