"""The router's one Redis interface, for a single server or a cluster.

Everything the gateway stores goes through a `RedisLink`: short, non-blocking commands
and scripts, auto-pipelined. `open_link` picks the implementation from the URL:
`redis://` and `unix://` give one server (resp.FastRedis); `redis+cluster://` gives
Redis Cluster (cluster.FastCluster), where every command of one call must stay within
one slot; the key design (keys.py) guarantees that.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Iterable, Sequence
from typing import Any, Protocol, TypeVar

from router.store.cluster import SCHEME, FastCluster
from router.store.resp import Arg, FastRedis, Script


class RedisLink(Protocol):
    @property
    def cluster(self) -> bool:
        """True when keys of different slots may not share a command."""
        ...

    async def call(self, *args: Arg) -> Any:
        """One command, sent where its key lives; the raw hiredis reply."""
        ...

    async def call_at(self, key: Arg, *args: Arg) -> Any:
        """A command without keys (WAIT) sent to the node where `key` lives."""
        ...

    async def evalsha(self, script: Script, keys: Sequence[Arg], args: Sequence[Arg]) -> Any:
        """A script by SHA (loaded on NOSCRIPT), sent where `keys[0]` lives."""
        ...

    async def ping(self) -> None:
        """Raise unless Redis can serve requests now (readiness)."""
        ...

    async def aclose(self) -> None: ...


T = TypeVar("T")
log = logging.getLogger("payrouter.store")
_QUIET_S = 5.0  # a failing shard is logged at most this often per kind of call
_last_logged: dict[str, float] = {}


async def per_shard(calls: Iterable[Awaitable[T]], what: str) -> list[T | None]:
    """Run one call per shard together; a shard whose master is down (or failing over)
    gives None, with a warning, instead of holding up the shards that answer."""
    results = await asyncio.gather(*calls, return_exceptions=True)
    out: list[T | None] = []
    for result in results:
        if isinstance(result, BaseException):
            if not isinstance(result, Exception):
                raise result  # cancellation and the like
            now = time.monotonic()
            if now - _last_logged.get(what, -_QUIET_S) >= _QUIET_S:
                _last_logged[what] = now
                log.warning("%s: a shard failed (others went on): %s", what, result)
            out.append(None)
        else:
            out.append(result)
    return out


def is_cluster_url(url: str) -> bool:
    return url.startswith(SCHEME + "://")


def open_link(url: str, timeout_s: float = 5.0) -> RedisLink:
    """A client for `url`; it connects on first use."""
    if is_cluster_url(url):
        return FastCluster(url, timeout_s)
    return FastRedis(url, timeout_s)
