"""Redis Cluster for the hot path: one auto-pipelined connection per master.

A command goes to the master that owns its key's slot, known from `CLUSTER SLOTS`.
Each master's connection coalesces the writes of one loop turn (resp.py), so the
commands of concurrent requests are pipelined per node without any grouping by callers.

Redirects are followed where Redis guarantees that the refused command did not run:
- `MOVED slot addr`: the slot has a new owner; remember it, refresh the whole map in the
  background (a resharding or failover moves many slots), and resend there.
- `ASK slot addr`: the slot is being migrated and this key already left; resend once
  to `addr` preceded by ASKING.
- `TRYAGAIN` (a multi-key command while its keys are split by a migration),
  `CLUSTERDOWN` (slots not served, e.g. a master failed and its replica is not promoted
  yet), `LOADING` and `READONLY` (a stale map points at a replica): wait, refresh the
  map, resend, within a short budget; then fail as unavailable (503 at the gateway).

A lost connection is never retried here: the command may have run. The caller gets a
connection error (503, "retry with the same Idempotency-Key") and the map is refreshed
so that the next command finds the promoted replica.
"""

from __future__ import annotations

import asyncio
import binascii
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, final
from urllib.parse import quote, unquote

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError

from router.store.resp import Arg, FastRedis, Script

log = logging.getLogger("payrouter.cluster")

SCHEME: Final = "redis+cluster"
SLOTS: Final = 16384
_MAX_REDIRECTS: Final = 16
_RETRY_BUDGET_S: Final = 2.0  # TRYAGAIN / CLUSTERDOWN waits before answering 503
_REFRESH_MIN_GAP_S: Final = 0.2  # background refreshes at most this often
_WAITABLE: Final = frozenset({"TRYAGAIN", "CLUSTERDOWN", "LOADING", "READONLY"})
_KEYLESS: Final = frozenset({"PING", "WAIT", "SCRIPT", "TIME", "INFO", "CLUSTER", "ASKING",
                             "FLUSHALL", "DBSIZE", "ECHO"})


class ClusterUnavailable(RedisConnectionError):
    """The slot's data is not being served now (no master, migration stuck)."""


def key_slot(key: Arg) -> int:
    """The cluster slot of a key: CRC16 (XMODEM) of its hash tag, else of the whole key."""
    raw = key if isinstance(key, bytes) else str(key).encode()
    start = raw.find(b"{")
    if start != -1:
        end = raw.find(b"}", start + 1)
        if end > start + 1:
            raw = raw[start + 1:end]
    return binascii.crc_hqx(raw, 0) % SLOTS


def command_key(args: Sequence[Arg]) -> Arg | None:
    """The key that decides where a command runs (None: any node will do)."""
    name = (args[0].decode() if isinstance(args[0], bytes) else str(args[0])).upper()
    if name in _KEYLESS:
        return None
    if name in ("EVALSHA", "EVAL"):
        return args[3] if int(args[2]) > 0 else None
    if name == "XREADGROUP":
        for i, arg in enumerate(args):
            if str(arg.decode() if isinstance(arg, bytes) else arg).upper() == "STREAMS":
                return args[i + 1]
        raise ValueError("XREADGROUP without STREAMS")
    if name == "XGROUP":
        return args[2]
    return args[1]


@final
@dataclass(frozen=True, slots=True)
class ClusterURL:
    """`redis+cluster://[user:password@]host:port[,host:port...]`: any reachable node
    serves to discover the rest."""

    nodes: tuple[tuple[str, int], ...]
    username: str | None = None
    password: str | None = None

    @classmethod
    def parse(cls, url: str) -> ClusterURL:
        prefix = SCHEME + "://"
        if not url.startswith(prefix):
            raise ValueError(f"a cluster URL starts with {prefix}")
        rest = url[len(prefix):].split("/", 1)[0].split("?", 1)[0]
        userinfo, _, hosts = rest.rpartition("@")
        username = password = None
        if userinfo:
            user, sep, secret = userinfo.partition(":")
            username = unquote(user) or None
            password = unquote(secret) if sep else None
        nodes = []
        for part in hosts.split(","):
            host, sep, port = part.strip().rpartition(":")
            if not sep or not host or not port.isdigit():
                raise ValueError(f"cluster node {part!r} is not host:port")
            nodes.append((host.strip("[]"), int(port)))
        return cls(tuple(nodes), username, password)

    def node_url(self, address: str) -> str:
        auth = ""
        if self.password is not None:
            auth = f"{quote(self.username or '', safe='')}:{quote(self.password, safe='')}@"
        return f"redis://{auth}{address}"


@final
class FastCluster:
    """The cluster counterpart of FastRedis: `call`, `call_at`, `evalsha`, `ping`."""

    cluster = True

    __slots__ = ("_background", "_lock", "_nodes", "_refreshed_at", "_slots", "_timeout_s",
                 "_url")

    def __init__(self, url: str, timeout_s: float = 5.0) -> None:
        self._url = ClusterURL.parse(url)
        self._timeout_s = timeout_s
        self._slots: list[str] | None = None  # slot -> "host:port" of its master
        self._nodes: dict[str, FastRedis] = {}
        self._lock: asyncio.Lock | None = None
        self._refreshed_at = 0.0
        self._background: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ routing
    def _node(self, address: str) -> FastRedis:
        node = self._nodes.get(address)
        if node is None:
            node = self._nodes[address] = FastRedis(self._url.node_url(address),
                                                    self._timeout_s)
        return node

    def slot_owner(self, slot: int) -> str:
        """The master address the current map gives for `slot` ("" if none, or no map)."""
        return self._slots[slot] if self._slots is not None else ""

    def masters(self) -> list[str]:
        """Addresses of the masters in the current map."""
        return sorted(set(self._slots or ()))

    async def refresh(self) -> None:
        """Read the slot map from the first node that answers."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        asked_at = time.monotonic()
        async with self._lock:
            if self._refreshed_at > asked_at:  # someone refreshed while we waited
                return
            candidates = [*self.masters(), *(f"{h}:{p}" for h, p in self._url.nodes),
                          *self._nodes]
            errors = []
            for address in dict.fromkeys(candidates):
                try:
                    reply = await self._node(address).call("CLUSTER", "SLOTS")
                except RedisError as exc:
                    errors.append(f"{address}: {exc}")
                    continue
                self._slots = _slot_map(reply, address)
                self._refreshed_at = time.monotonic()
                return
            raise RedisConnectionError("no Redis Cluster node answered: " + "; ".join(errors))

    def _refresh_soon(self) -> None:
        if self._background is not None and not self._background.done():
            return
        if time.monotonic() - self._refreshed_at < _REFRESH_MIN_GAP_S:
            return
        self._background = asyncio.get_running_loop().create_task(self._quiet_refresh())

    async def _quiet_refresh(self) -> None:
        try:
            await self.refresh()
        except RedisError as exc:
            log.warning("cluster map refresh failed: %s", exc)

    async def _address(self, key: Arg | None) -> str:
        slots = self._slots
        if slots is None:
            await self.refresh()
            slots = self._slots
            assert slots is not None
        address = slots[key_slot(key)] if key is not None else next(
            (a for a in slots if a), "")
        if not address:
            self._refresh_soon()
            raise ClusterUnavailable("Redis Cluster: no master serves this slot now")
        return address

    async def _execute(self, key: Arg | None,
                       op: Callable[[FastRedis, bool], Awaitable[Any]]) -> Any:
        address = await self._address(key)
        asking = False
        deadline = 0.0
        pause = 0.02
        redirects = 0  # in a row, without a wait: a loop in the map if it grows
        while redirects < _MAX_REDIRECTS:
            redirects += 1
            try:
                return await op(self._node(address), asking)
            except ResponseError as err:
                message = str(err)
                kind, _, detail = message.partition(" ")
                asking = False
                if kind == "MOVED":
                    slot, target = detail.split()
                    if self._slots is not None:
                        self._slots[int(slot)] = target
                    self._refresh_soon()
                    address = target
                elif kind == "ASK":
                    address = detail.split()[1]
                    asking = True
                elif kind in _WAITABLE:
                    now = time.monotonic()
                    deadline = deadline or now + _RETRY_BUDGET_S
                    if now >= deadline:
                        raise ClusterUnavailable(f"Redis Cluster: {message}") from None
                    await asyncio.sleep(pause)
                    pause = min(pause * 2, 0.25)
                    redirects = 0
                    if kind != "TRYAGAIN":
                        with contextlib.suppress(RedisError):
                            await self.refresh()
                    address = await self._address(key)
                else:
                    raise
            except RedisConnectionError:
                self._refresh_soon()
                raise
        raise ClusterUnavailable("Redis Cluster: too many redirects")

    # ------------------------------------------------------------------ commands
    async def call(self, *args: Arg) -> Any:
        return await self._execute(
            command_key(args),
            lambda node, asking: node.call_asking(*args) if asking else node.call(*args))

    async def call_at(self, key: Arg, *args: Arg) -> Any:
        return await self._execute(
            key, lambda node, asking: node.call_asking(*args) if asking else node.call(*args))

    async def evalsha(self, script: Script, keys: Sequence[Arg], args: Sequence[Arg]) -> Any:
        return await self._execute(
            keys[0] if keys else None,
            lambda node, asking: node.evalsha(script, keys, args, asking=asking))

    async def ping(self) -> None:
        """Ready when a node (the first of the known ones that answers) says the cluster
        serves every slot."""
        if self._slots is None:
            await self.refresh()
        candidates = [*self.masters(), *(f"{h}:{p}" for h, p in self._url.nodes)]
        for address in dict.fromkeys(candidates):
            try:
                info = await self._node(address).call("CLUSTER", "INFO")
            except RedisError:
                continue
            if b"cluster_state:ok" not in bytes(info):
                raise ClusterUnavailable("Redis Cluster state is not ok")
            return
        raise RedisConnectionError("no Redis Cluster node answered")

    async def aclose(self) -> None:
        if self._background is not None:
            self._background.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._background
        for node in self._nodes.values():
            await node.aclose()
        self._nodes.clear()


def _slot_map(reply: list[Any], asked: str) -> list[str]:
    """CLUSTER SLOTS → the master address of every slot ("" where none serves it)."""
    slots = [""] * SLOTS
    for start, end, master, *_ in reply:
        host = master[0].decode() if isinstance(master[0], bytes) else str(master[0])
        # An empty host means "the address you asked me on" (NAT, unknown endpoint).
        address = f"{host}:{int(master[1])}" if host and host != "?" else (
            f"{asked.rsplit(':', 1)[0]}:{int(master[1])}")
        if ":" in host and not host.startswith("["):
            address = f"[{host}]:{int(master[1])}"
        for slot in range(int(start), int(end) + 1):
            slots[slot] = address
    return slots
