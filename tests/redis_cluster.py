"""Helpers that treat a single Redis and a Redis Cluster alike, for assertions."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from loadtest.redis_cluster import ClusterNode, LocalCluster
from router.store.cluster import ClusterURL
from router.store.link import is_cluster_url

__all__ = ["ClusterNode", "LocalCluster", "flush_all", "redis_py_client"]


async def flush_all(url: str) -> None:
    """Empty a single server, or every master of a cluster."""
    if not is_cluster_url(url):
        client = aioredis.Redis.from_url(url)
        await client.flushall()
        await client.aclose()
        return
    host, port = ClusterURL.parse(url).nodes[0]
    seed = aioredis.Redis(host=host, port=port)
    try:
        slots = await seed.execute_command("CLUSTER", "SLOTS")
    finally:
        await seed.aclose()
    masters = {(m[0].decode() or host, int(m[1])) for _, _, m, *_ in slots}
    await asyncio.gather(*(_flush(h, p) for h, p in masters))


async def _flush(host: str, port: int) -> None:
    client = aioredis.Redis(host=host, port=port)
    await client.flushall()
    await client.aclose()


def redis_py_client(url: str) -> aioredis.Redis | aioredis.RedisCluster:
    """A redis-py client for assertions in tests, for either topology."""
    if not is_cluster_url(url):
        return aioredis.Redis.from_url(url)
    host, port = ClusterURL.parse(url).nodes[0]
    return aioredis.RedisCluster(host=host, port=port)
