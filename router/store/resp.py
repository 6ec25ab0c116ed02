"""A lean Redis client for the hot path, with automatic pipelining.

Every command is written to one shared connection and its reply matched in order (Redis
answers a connection's commands in the order sent). Commands issued during one turn of
the event loop are written together, in one `write` at the end of that turn, so the
Redis calls of concurrent requests share one round trip without any caller batching:
auto-pipelining. Encoding (`hiredis.pack_command`) and parsing (`hiredis.Reader`) are
in C; nothing else sits between a caller and the socket.

It is for short, non-blocking commands only (scripts, reads): one slow command here
would delay every reply behind it, so the router uses no blocking commands at all (the
webhook workers poll the outbox). redis-py remains for its exception types and for
managing the embedded server.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections import deque
from collections.abc import Sequence
from typing import Any, Final, cast, final
from urllib.parse import parse_qs, unquote, urlparse

import hiredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError

Arg = bytes | str | int | float

_CONNECT_TIMEOUT_S: Final = 5.0


@final
class _Protocol(asyncio.Protocol):
    """One connection: writes coalesced per loop turn, replies matched in order."""

    __slots__ = ("_closed", "_flush_scheduled", "_loop", "_out", "_reader", "_sent_at",
                 "_timeout_s", "_transport", "_waiters")

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout_s: float) -> None:
        self._loop = loop
        self._timeout_s = timeout_s
        self._reader = hiredis.Reader()
        self._waiters: deque[asyncio.Future[Any]] = deque()
        self._sent_at: deque[float] = deque()  # when each waiter's command was queued
        self._out: list[bytes] = []
        self._flush_scheduled = False
        self._transport: asyncio.Transport | None = None
        self._closed: asyncio.Future[None] = loop.create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement the interface without subclassing it.
        self._transport = cast(asyncio.Transport, transport)
        self._loop.call_later(self._timeout_s / 2, self._watch)

    def data_received(self, data: bytes) -> None:
        self._reader.feed(data)
        while (reply := self._reader.gets()) is not False:
            waiter = self._waiters.popleft()
            self._sent_at.popleft()
            if waiter.done():  # its caller was cancelled; the reply is dropped
                continue
            if isinstance(reply, hiredis.ReplyError):
                waiter.set_exception(_error(str(reply)))
            else:
                waiter.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        error = RedisConnectionError(f"connection to Redis lost: {exc or 'closed'}")
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(error)
        self._sent_at.clear()
        if not self._closed.done():
            self._closed.set_result(None)

    @property
    def alive(self) -> bool:
        return self._transport is not None and not self._transport.is_closing()

    def send(self, packed: bytes) -> asyncio.Future[Any]:
        if not self.alive:
            raise RedisConnectionError("connection to Redis is closed")
        waiter: asyncio.Future[Any] = self._loop.create_future()
        self._waiters.append(waiter)
        self._sent_at.append(self._loop.time())
        self._out.append(packed)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)
        return waiter

    def _flush(self) -> None:
        self._flush_scheduled = False
        if self._transport is not None and self._out:
            self._transport.write(b"".join(self._out))
        self._out.clear()

    def _watch(self) -> None:
        """One timer per connection, not one per command: when the oldest command has
        waited longer than the timeout, Redis is hanging — drop the connection, which
        fails every waiting call (the gateway answers 503) and reconnects on the next."""
        if self._transport is None:
            return
        if self._sent_at and self._loop.time() - self._sent_at[0] > self._timeout_s:
            self._transport.abort()
            return
        self._loop.call_later(self._timeout_s / 2, self._watch)

    async def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            await self._closed


def _pack(args: tuple[Arg, ...]) -> bytes:
    """RESP-encode one command (hiredis's stub types the argument as a 1-tuple)."""
    packed: bytes = hiredis.pack_command(args)  # type: ignore[arg-type]
    return packed


def _error(message: str) -> ResponseError:
    if message.startswith("NOSCRIPT"):
        return NoScriptError(message)
    return ResponseError(message)


@final
class Script:
    """A Lua script known by its SHA1; loaded into Redis on first NOSCRIPT."""

    __slots__ = ("sha", "source")

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest()


@final
class FastRedis:
    """The hot path's Redis: `await fast.call(...)`, `await fast.evalsha(script, ...)`.

    One server (or one node of a cluster, driven by `router.store.cluster`)."""

    cluster = False  # keys of different slots may share a command (see RedisLink)

    __slots__ = ("_connecting", "_db", "_host", "_password", "_path", "_port", "_protocol",
                 "_timeout_s", "_username")

    def __init__(self, url: str, timeout_s: float = 5.0) -> None:
        self._timeout_s = timeout_s
        parsed = urlparse(url)
        query = parse_qs(parsed.query)
        self._path: str | None = None
        self._host = parsed.hostname or "127.0.0.1"
        self._port = parsed.port or 6379
        if parsed.scheme == "unix":
            self._path = unquote(parsed.path)
        elif parsed.scheme not in ("redis", ""):
            raise ValueError(f"unsupported Redis URL scheme {parsed.scheme!r}")
        self._username = unquote(parsed.username) if parsed.username else None
        self._password = unquote(parsed.password) if parsed.password else None
        db = query.get("db", [parsed.path.strip("/") if parsed.scheme != "unix" else "0"])[0]
        self._db = int(db or 0)
        self._protocol: _Protocol | None = None
        self._connecting: asyncio.Lock | None = None

    async def _connection(self) -> _Protocol:
        protocol = self._protocol
        if protocol is not None and protocol.alive:
            return protocol
        if self._connecting is None:
            self._connecting = asyncio.Lock()
        async with self._connecting:
            if self._protocol is None or not self._protocol.alive:
                self._protocol = await self._connect()
            return self._protocol

    async def _connect(self) -> _Protocol:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(_CONNECT_TIMEOUT_S):
                if self._path is not None:
                    _, protocol = await loop.create_unix_connection(
                        lambda: _Protocol(loop, self._timeout_s), self._path)
                else:
                    _, protocol = await loop.create_connection(
                        lambda: _Protocol(loop, self._timeout_s), self._host, self._port)
        except (OSError, TimeoutError) as exc:
            raise RedisConnectionError(f"cannot connect to Redis: {exc}") from None
        if self._password is not None:
            auth: tuple[Arg, ...] = ("AUTH", self._password)
            if self._username is not None:
                auth = ("AUTH", self._username, self._password)
            await protocol.send(_pack(auth))
        if self._db:
            await protocol.send(_pack(("SELECT", self._db)))
        return protocol

    async def call(self, *args: Arg) -> Any:
        protocol = self._protocol
        if protocol is None or not protocol.alive:
            protocol = await self._connection()
        return await protocol.send(_pack(args))

    async def call_at(self, key: Arg, *args: Arg) -> Any:
        """A command without keys that must run where `key` lives (WAIT, SCRIPT LOAD):
        on one server, anywhere."""
        return await self.call(*args)

    async def call_asking(self, *args: Arg) -> Any:
        """`args` preceded by ASKING on the same connection, in the same write (the
        redirect of a slot being migrated, see cluster.py)."""
        protocol = self._protocol
        if protocol is None or not protocol.alive:
            protocol = await self._connection()
        asking = protocol.send(_pack(("ASKING",)))
        reply = protocol.send(_pack(args))
        _, result = await asyncio.gather(asking, reply)
        return result

    async def evalsha(self, script: Script, keys: Sequence[Arg], args: Sequence[Arg], *,
                      asking: bool = False) -> Any:
        run = self.call_asking if asking else self.call
        try:
            return await run("EVALSHA", script.sha, len(keys), *keys, *args)
        except NoScriptError:
            # A restarted or flushed Redis forgot the script: load it, then retry once.
            await self.call("SCRIPT", "LOAD", script.source)
            return await run("EVALSHA", script.sha, len(keys), *keys, *args)

    async def ping(self) -> None:
        await self.call("PING")

    async def aclose(self) -> None:
        if self._protocol is not None:
            with contextlib.suppress(Exception):
                await self._protocol.close()
            self._protocol = None
