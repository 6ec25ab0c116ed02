"""A naive payment gateway: the reference the benchmark compares the router's create path with.

    python -m loadtest.naive_peer --port 8090 --redis-url redis://127.0.0.1:6379/1 --api-key K

What a gateway written in an afternoon looks like: aiohttp on uvloop, redis-py's asyncio
client, one Lua script per create (idempotency claim, a per-merchant fixed-window rate
limit, the payment hash, an outbox entry). `POST /v1/payments` with `Authorization: Bearer
K` and a JSON body with `amount`, `currency` and `out_trade_no` answers 201 with the
payment, already `succeeded`: no rail, no routing, no state machine. Naive on purpose: one
configured key, one merchant, a replayed `Idempotency-Key` gets the first answer whatever
its body, no one reads the outbox. `GET /healthz` pings Redis. SIGINT or SIGTERM stops it.
"""

from __future__ import annotations

import argparse
import asyncio
import hmac
import time
import uuid
from dataclasses import dataclass

import orjson
import uvloop
from aiohttp import web
from redis.asyncio import Redis
from redis.commands.core import AsyncScript

from loadtest.hello import serve_until_signal

MERCHANT = "naive"
IDEMPOTENCY_TTL_S = 86_400
# KEYS: 1 payment, 2 this second's rate window, 3 outbox, 4 idempotency claim (only when
# the request has a key). ARGV: 1 id, 2 merchant, 3 amount, 4 currency, 5 out_trade_no,
# 6 limit per second, 7 the answer to store for replays, 8 idempotency ttl.
CREATE_LUA = """
if KEYS[4] then
  local earlier = redis.call('GET', KEYS[4])
  if earlier then return {'replay', earlier} end
end
local used = redis.call('INCR', KEYS[2])
if used == 1 then redis.call('EXPIRE', KEYS[2], 2) end
if used > tonumber(ARGV[6]) then return {'limited', ''} end
if KEYS[4] then redis.call('SET', KEYS[4], ARGV[7], 'EX', ARGV[8]) end
redis.call('HSET', KEYS[1], 'id', ARGV[1], 'merchant', ARGV[2], 'amount', ARGV[3],
           'currency', ARGV[4], 'out_trade_no', ARGV[5], 'status', 'succeeded')
redis.call('XADD', KEYS[3], '*', 'type', 'payment.succeeded', 'payment', ARGV[1])
return {'created', ARGV[7]}
"""


def error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def parse(body: bytes) -> tuple[int, str, str] | None:
    """(amount, currency, out_trade_no), or None if the body is not a valid payment."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(data, dict):
        return None
    amount, currency, out_trade_no = (data.get("amount"), data.get("currency"),
                                      data.get("out_trade_no"))
    if (isinstance(amount, int) and not isinstance(amount, bool) and amount > 0
            and isinstance(currency, str) and isinstance(out_trade_no, str)):
        return amount, currency, out_trade_no
    return None


@dataclass
class Peer:
    redis: Redis
    create_script: AsyncScript
    api_key: str
    rate_limit: int

    async def create(self, request: web.Request) -> web.Response:
        auth = request.headers.get("Authorization", "")
        if not hmac.compare_digest(auth.encode(), f"Bearer {self.api_key}".encode()):
            return error(401, "invalid API key")
        payment = parse(await request.read())
        if payment is None:
            return error(400, "need amount (a positive integer), currency, out_trade_no")
        amount, currency, out_trade_no = payment
        payment_id = f"pay_{uuid.uuid4().hex}"
        answer = orjson.dumps({"id": payment_id, "status": "succeeded", "amount": amount,
                               "currency": currency, "out_trade_no": out_trade_no})
        keys = [f"pay:{payment_id}", f"rate:{MERCHANT}:{int(time.time())}", "outbox"]
        if idempotency_key := request.headers.get("Idempotency-Key"):
            keys.append(f"idem:{MERCHANT}:{idempotency_key}")
        outcome, body = await self.create_script(
            keys, [payment_id, MERCHANT, amount, currency, out_trade_no, self.rate_limit,
                   answer, IDEMPOTENCY_TTL_S])
        if outcome == b"limited":
            return error(429, "rate limited")
        status = 201 if outcome == b"created" else 200
        return web.Response(body=body, status=status, content_type="application/json")

    async def healthz(self, request: web.Request) -> web.Response:
        await self.redis.ping()
        return web.json_response({"ok": True})

    async def close(self, app: web.Application) -> None:
        await self.redis.aclose()


async def serve(host: str, port: int, redis_url: str, api_key: str, rate_limit: int) -> None:
    redis = Redis.from_url(redis_url)
    peer = Peer(redis, redis.register_script(CREATE_LUA), api_key, rate_limit)
    app = web.Application()
    app.add_routes([web.post("/v1/payments", peer.create), web.get("/healthz", peer.healthz)])
    app.on_cleanup.append(peer.close)
    await serve_until_signal(app, host, port, "naive_peer")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m loadtest.naive_peer", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--redis-url", required=True)
    p.add_argument("--api-key", required=True)
    p.add_argument("--rate-limit", type=int, default=1_000_000,
                   help="creates per second per merchant (default: out of a benchmark's way)")
    args = p.parse_args(argv)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(serve(args.host, args.port, args.redis_url, args.api_key, args.rate_limit))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
