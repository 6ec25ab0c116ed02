"""The router's one Redis interface, for a single server or a cluster.

Everything the gateway stores goes through a `RedisLink`: short, non-blocking commands
and scripts, auto-pipelined. `open_link` picks the implementation from the URL:
`redis://` and `unix://` give one server (resp.FastRedis); `redis+cluster://` gives
Redis Cluster (cluster.FastCluster), where every command of one call must stay within
one slot; the key design (keys.py) guarantees that.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from router.store.cluster import SCHEME, FastCluster
from router.store.resp import Arg, FastRedis, Script


class RedisLink(Protocol):
    @property
    def cluster(self) -> bool: ...

    async def call(self, *args: Arg) -> Any: ...

    async def call_at(self, key: Arg, *args: Arg) -> Any: ...

    async def evalsha(self, script: Script, keys: Sequence[Arg], args: Sequence[Arg]) -> Any:
        ...

    async def ping(self) -> None: ...

    async def aclose(self) -> None: ...


def is_cluster_url(url: str) -> bool:
    return url.startswith(SCHEME + "://")


def open_link(url: str, timeout_s: float = 5.0) -> RedisLink:
    """A client for `url`; it connects on first use."""
    if is_cluster_url(url):
        return FastCluster(url, timeout_s)
    return FastRedis(url, timeout_s)
