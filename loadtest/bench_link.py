"""What cluster routing costs the client: `python -m loadtest.bench_link [--calls N]`.

Starts a local 3-master / 3-replica Redis Cluster and sends the same script call
(two keys of one slot, as the payment scripts do) through a plain one-node client
(`FastRedis`, straight to the master of that slot) and through the cluster client
(`FastCluster`: slot lookup, redirect handling, one connection per master), alternating,
with the same concurrency. Prints the client's CPU per call and calls/s for each; the
difference is the price of cluster routing on the hot path.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import uvloop

from loadtest.redis_cluster import LocalCluster
from router.store.cluster import FastCluster, key_slot
from router.store.link import RedisLink
from router.store.resp import FastRedis, Script

_SCRIPT = Script("return redis.call('HGET', KEYS[1], ARGV[1])")
_KEYS = ("{1}p:bench", "{1}due")


async def _measure(link: RedisLink, calls: int, concurrency: int) -> tuple[float, float]:
    """(client CPU µs per call, calls per second)."""
    async def worker(count: int) -> None:
        for _ in range(count):
            await link.evalsha(_SCRIPT, _KEYS, ["s"])

    await worker(100)  # connect, load the script
    per_worker = calls // concurrency
    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker(per_worker) for _ in range(concurrency)))
    done = per_worker * concurrency
    return ((time.process_time() - cpu) / done * 1e6,
            done / (time.perf_counter() - started))


async def _compare(cluster: LocalCluster, calls: int, concurrency: int, rounds: int) -> None:
    routed = FastCluster(cluster.url)
    await routed.refresh()
    direct = FastRedis(f"redis://{routed.slot_owner(key_slot(_KEYS[0]))}")
    try:
        for n in range(rounds):
            for name, link in (("one node", direct), ("cluster", routed)):
                cpu_us, rate = await _measure(link, calls, concurrency)
                print(f"round {n + 1}  {name:9} {cpu_us:6.1f} µs client CPU/call  "
                      f"{rate:9,.0f} calls/s", flush=True)
    finally:
        await direct.aclose()
        await routed.aclose()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m loadtest.bench_link",
                                description=__doc__.split("\n")[0])
    p.add_argument("--calls", type=int, default=40_000, help="per measurement")
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--rounds", type=int, default=2)
    args = p.parse_args(argv)
    cluster = LocalCluster(Path(tempfile.mkdtemp(prefix="prlink-")))
    try:
        print("bench_link: starting a local Redis Cluster (3 masters, 3 replicas) ...",
              flush=True)
        cluster.start()
        uvloop.run(_compare(cluster, args.calls, args.concurrency, args.rounds))
    finally:
        cluster.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
