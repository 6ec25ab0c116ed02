"""The hot path's Redis client: ordering under auto-pipelining, errors, script reload,
lost connections — against the real redis-server, on asyncio's loop and on uvloop."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis
import uvloop
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from router.sandbox.embedded import EmbeddedRedis
from router.store.resp import FastRedis, Script


async def test_concurrent_calls_get_their_own_replies(redis_url: str) -> None:
    fast = FastRedis(redis_url)
    try:
        await asyncio.gather(*(fast.call("SET", f"k{i}", i) for i in range(500)))
        values = await asyncio.gather(*(fast.call("GET", f"k{i}") for i in range(500)))
        assert values == [str(i).encode() for i in range(500)]
        assert await fast.call("GET", "missing") is None
    finally:
        await fast.aclose()


async def test_error_reply_raises_and_the_connection_goes_on(redis_url: str) -> None:
    fast = FastRedis(redis_url)
    try:
        await fast.call("SET", "s", "text")
        with pytest.raises(ResponseError):
            await fast.call("INCR", "s")
        assert await fast.call("PING") == b"PONG"
    finally:
        await fast.aclose()


async def test_script_reloaded_after_flush(redis_url: str, redis_client: aioredis.Redis) -> None:
    fast = FastRedis(redis_url)
    script = Script("return tonumber(ARGV[1]) + 1")
    try:
        assert await fast.evalsha(script, [], [41]) == 42
        await redis_client.script_flush()
        assert await fast.evalsha(script, [], [1]) == 2
    finally:
        await fast.aclose()


async def test_lost_connection_fails_pending_calls_then_reconnects(
    redis_url: str, redis_client: aioredis.Redis
) -> None:
    fast = FastRedis(redis_url)
    try:
        await fast.call("CLIENT", "SETNAME", "fast-under-test")
        blocked = asyncio.ensure_future(fast.call("BLPOP", "never", 5))
        await asyncio.sleep(0)  # let the command be written before the kill
        clients = await redis_client.client_list()
        victim = next(c for c in clients if c.get("name") == "fast-under-test")
        await redis_client.client_kill_filter(_id=victim["id"])
        with pytest.raises(RedisConnectionError):
            await blocked
        assert await fast.call("PING") == b"PONG"  # a new connection
    finally:
        await fast.aclose()


def test_works_on_uvloop(redis_server: EmbeddedRedis) -> None:
    async def main() -> list[bytes]:
        fast = FastRedis(redis_server.url)
        try:
            return list(await asyncio.gather(*(fast.call("ECHO", f"v{i}") for i in range(50))))
        finally:
            await fast.aclose()

    assert uvloop.run(main()) == [f"v{i}".encode() for i in range(50)]


def test_unreachable_redis_is_a_connection_error() -> None:
    async def main() -> None:
        fast = FastRedis("redis://127.0.0.1:1/0")
        await fast.call("PING")

    with pytest.raises(RedisConnectionError):
        uvloop.run(main())
