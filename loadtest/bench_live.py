"""What the dashboard's live figures cost a gateway process: `python -m loadtest.bench_live`.

    python -m loadtest.bench_live [--seconds 300] [--merchants 50] [--redis-url URL]

Measures, against a real redis-server (embedded unless `--redis-url`):

- the request path: nanoseconds per `payment_created`, `rail_call` and `count`;
- the once-a-second flush of one process: its CPU time in the process, Redis's CPU time
  for the script (INFO commandstats) and the bytes the bucket holds, for a busy second
  (4 rails with 10 latency buckets each, 3 counters, `--merchants` merchants creating);
- the dashboard's read of a whole window (180 s, a first poll) and of its last few seconds
  (every later poll: older seconds are kept in the process).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

import redis as redis_sync

from router.ops.dashboard import CACHE_AFTER_S, WINDOW_S
from router.ops.live import LATENCY_BOUNDS_MS, LiveStats
from router.sandbox.embedded import EmbeddedRedis
from router.store.link import open_link
from router.store.live import figures_bucket, merchants_bucket
from router.store.store import Store

RAILS = ("bank", "wechatpay", "alipay", "instant")
CALLS = 1_000_000


def per_call_ns(action: Any) -> float:
    """Nanoseconds per call of `action`, less the loop's and the call's own overhead."""
    def loop(fn: Any) -> float:
        started = time.perf_counter()
        for _ in range(CALLS):
            fn()
        return (time.perf_counter() - started) * 1e9 / CALLS

    return loop(action) - loop(lambda: None)


def busy_second(stats: LiveStats, merchants: int) -> None:
    """A second of a busy process: 2,000 creates over `merchants`, calls on every rail."""
    for i in range(2000):
        stats.payment_created(f"mch_{i % merchants:020d}")
    for rail in RAILS:
        for i in range(len(LATENCY_BOUNDS_MS[:10])):
            stats.rail_call(rail, i % 7 != 0, LATENCY_BOUNDS_MS[i] / 1000)
    stats.count("red_packet.grabs", 40)
    stats.count("payouts.sent", 12)


def evalsha_usec(client: redis_sync.Redis) -> float:
    stats: dict[str, Any] = client.info("commandstats")
    return float(stats.get("cmdstat_evalsha", {}).get("usec", 0))


async def measure(url: str, seconds: int, merchants: int) -> dict[str, float]:
    store = Store(open_link(url), shards=16, idem_ttl_s=60)
    client = redis_sync.Redis.from_url(url)
    stats = LiveStats()
    base = int(time.time()) - seconds - 10
    try:
        busy_second(stats, merchants)
        await stats.flush(store.live, base - 1)  # loads the script
        flush_cpu = 0.0
        redis_before = evalsha_usec(client)
        for second in range(base, base + seconds):
            busy_second(stats, merchants)
            cpu = time.process_time()
            await stats.flush(store.live, second)
            flush_cpu += time.process_time() - cpu
        redis_usec = evalsha_usec(client) - redis_before
        bucket_bytes = sum(int(client.memory_usage(key) or 0) for key in (
            figures_bucket(base), merchants_bucket(base)))

        window = list(range(base + seconds - WINDOW_S, base + seconds))
        started = time.perf_counter()
        await store.live.figures(window)
        cold_ms = (time.perf_counter() - started) * 1000
        started = time.perf_counter()
        for _ in range(20):
            await store.live.figures(window[-CACHE_AFTER_S:])
        warm_ms = (time.perf_counter() - started) * 1000 / 20
    finally:
        client.close()
        await store.aclose()
    return {"flush_cpu_us": 1e6 * flush_cpu / seconds, "flush_redis_us": redis_usec / seconds,
            "bucket_bytes": bucket_bytes, "read_window_ms": cold_ms, "read_recent_ms": warm_ms}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m loadtest.bench_live",
                                description=__doc__.split("\n")[0])
    p.add_argument("--seconds", type=int, default=300, help="flushes to measure")
    p.add_argument("--merchants", type=int, default=50, help="distinct merchants per second")
    p.add_argument("--redis-url", help="a Redis to use (default: an embedded one)")
    args = p.parse_args(argv)

    stats = LiveStats()
    print(f"request path, ns per call:  payment_created "
          f"{per_call_ns(lambda: stats.payment_created('mch_1')):.0f}  rail_call "
          f"{per_call_ns(lambda: stats.rail_call('bank', True, 0.004)):.0f}  count "
          f"{per_call_ns(lambda: stats.count('red_packet.grabs')):.0f}", flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        embedded = None if args.redis_url else EmbeddedRedis(Path(tmp) / "redis")
        url = args.redis_url or (embedded.start() if embedded else "")
        try:
            found = asyncio.run(measure(url, args.seconds, args.merchants))
        finally:
            if embedded is not None:
                embedded.stop()
    print(f"flush, per second and process: {found['flush_cpu_us']:.0f} µs gateway CPU, "
          f"{found['flush_redis_us']:.0f} µs Redis CPU, one script; a second's buckets "
          f"hold {found['bucket_bytes']:,} bytes")
    print(f"dashboard read: whole window ({WINDOW_S} s) {found['read_window_ms']:.1f} ms, "
          f"recent seconds ({CACHE_AFTER_S}) {found['read_recent_ms']:.2f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
