"""How every store module talks to Redis: scripts and writes that honour the durability
profile, and plain reads.

Strict durability (`wait_replicas` > 0) means no write is acknowledged before it reached
that many replicas: every write path of every store module goes through `script` or
`write` here, so none can skip the `WAIT`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, final

from redis.exceptions import ConnectionError as RedisConnectionError

from router.store.link import RedisLink
from router.store.resp import Arg, Script
from router.store.scripts import Scripts

log = logging.getLogger("payrouter.store")


class StoreUnavailable(RedisConnectionError):
    """The store answered, but not with data it must have (answered 503)."""


class ReplicationShortfall(RedisConnectionError):
    """Strict durability: a change reached fewer replicas than `wait_replicas` in time."""


@final
class Runner:
    __slots__ = ("idem_ttl_s", "link", "replicas", "scripts", "wait_timeout_ms")

    def __init__(self, link: RedisLink, *, idem_ttl_s: int, replicas: int = 0,
                 wait_timeout_ms: int = 100) -> None:
        self.link = link
        self.scripts = Scripts.load()
        self.idem_ttl_s = idem_ttl_s
        self.replicas = replicas
        self.wait_timeout_ms = wait_timeout_ms

    async def script(self, script: Script, keys: Sequence[Arg], args: Sequence[Arg]) -> Any:
        """Run a script where `keys[0]` lives; durable per the profile once it returns."""
        reply = await self.link.evalsha(script, keys, args)
        await self._durable(keys[0])
        return reply

    async def write(self, key: str, *command: Arg) -> Any:
        """One writing command on `key` (its first argument after the name must be `key`,
        so it is routed there); durable per the profile once it returns."""
        reply = await self.link.call(*command)
        await self._durable(key)
        return reply

    async def read(self, *command: Arg) -> Any:
        """One reading command, routed by its key."""
        return await self.link.call(*command)

    async def hash(self, key: str) -> dict[bytes, bytes]:
        flat = await self.link.call("HGETALL", key)
        return dict(zip(flat[::2], flat[1::2], strict=True))

    async def _durable(self, key: Arg) -> None:
        if not self.replicas:
            return
        # WAIT covers every earlier write of this (shared) connection, so concurrent
        # requests' WAITs complete together. On a cluster it goes to the master that ran
        # the write.
        acked = await self.link.call_at(key, "WAIT", self.replicas, self.wait_timeout_ms)
        if int(acked) < self.replicas:
            # Not acknowledged: the change is on the master only and could be lost with
            # it. Answer "unavailable" rather than promise it; the caller's retry (same
            # Idempotency-Key) finds the change once it is replicated.
            log.warning("only %s of %s replicas acknowledged within %s ms", acked,
                        self.replicas, self.wait_timeout_ms)
            raise ReplicationShortfall(
                f"{acked} of {self.replicas} replicas acknowledged the change")
