"""Bulk setup for the grab benchmark, through the public API: users registered with
`PUT /v1/users/{id}` and red packets created and funded at once with `POST
/v1/red_packets`, many requests in flight (bounded), a progress line a second.

One at a time, 100,000 packets would take as long as the rest of the benchmark many
times over; in flight by the hundred, setup runs at the gateway's own pace.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from loadtest.procs import BenchError

FUNDING = {"scene": "quickpay", "method": "instant", "payer": {"auth_code": "134567890123456781"}}
PACKET_EXPIRES_S = 7 * 86400  # the longest the API allows: nothing expires mid-benchmark
_PROGRESS_EVERY_S = 1.0


@dataclass(frozen=True, slots=True)
class PacketShape:
    amount: int  # fen
    count: int


def user_body(uid: str) -> bytes:
    """A verified user paid to a WeChat Pay wallet (the instant adapter in the benchmark;
    it pays every openid that does not end in 2)."""
    return orjson.dumps({"wallets": {"wechatpay": {"openid": f"o{uid}x1"}},
                         "real_name": {"status": "verified", "method": "id_card",
                                       "name": "张三"}})


def packet_body(out_no: str, sender: str, shape: PacketShape) -> bytes:
    return orjson.dumps({"out_red_packet_no": out_no, "sender": sender,
                         "amount": shape.amount, "currency": "CNY", "count": shape.count,
                         "split": "random", "expires_in_s": PACKET_EXPIRES_S,
                         "funding": FUNDING})


class Api:
    """The gateway's public API as the merchant, with at most `concurrency` requests in
    flight; a request that fails is a `BenchError` (setup must be complete)."""

    def __init__(self, base_url: str, api_key: str, concurrency: int) -> None:
        self.base_url = base_url.rstrip("/")
        self.headers = {"Authorization": f"Bearer {api_key}",
                        "Content-Type": "application/json"}
        self.concurrency = concurrency
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Api:
        connector = aiohttp.TCPConnector(limit=self.concurrency)
        self._session = aiohttp.ClientSession(connector=connector,
                                              timeout=aiohttp.ClientTimeout(total=60))
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()

    async def call(self, method: str, path: str, body: bytes | None = None,
                   expect: tuple[int, ...] = (200, 201)) -> Any:
        assert self._session is not None
        async with self._session.request(method, self.base_url + path, data=body,
                                         headers=self.headers) as resp:
            raw = await resp.read()
            if resp.status not in expect:
                raise BenchError(f"{method} {path}: {resp.status} {raw[:300]!r}")
            return orjson.loads(raw)

    async def many(self, label: str, count: int,
                   one: Callable[[int], Awaitable[str]]) -> list[str]:
        """Run `one(i)` for i in range(count), `concurrency` at a time; their results in
        order. Prints a line a second with the rate and what is left."""
        results: list[str] = [""] * count
        next_index = iter(range(count))
        done = 0

        async def worker() -> None:
            nonlocal done
            for i in next_index:
                results[i] = await one(i)
                done += 1

        begin = time.monotonic()
        workers = {asyncio.create_task(worker()) for _ in range(min(self.concurrency, count))}
        running = set(workers)
        seen, last = 0, begin
        try:
            while running:
                finished, running = await asyncio.wait(running, timeout=_PROGRESS_EVERY_S)
                for task in finished:
                    task.result()  # the first failure ends the setup
                now = time.monotonic()
                rate = (done - seen) / max(now - last, 1e-9)
                average = done / max(now - begin, 1e-9)
                eta = (count - done) / max(average, 1.0)
                print(f"  {label}: {done:,}/{count:,} ({rate:,.0f}/s, ETA {eta:.0f} s)",
                      file=sys.stderr, flush=True)
                seen, last = done, now
        finally:
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
        took = time.monotonic() - begin
        print(f"  {label}: {count:,} in {took:.1f} s ({count / max(took, 1e-9):,.0f}/s)",
              flush=True)
        return results


async def register_users(api: Api, users: Sequence[str]) -> None:
    async def one(i: int) -> str:
        await api.call("PUT", f"/v1/users/{users[i]}", user_body(users[i]), expect=(200,))
        return users[i]

    await api.many("users", len(users), one)


async def open_packets(api: Api, tag: str, count: int, senders: Sequence[str],
                       shape: PacketShape) -> list[str]:
    """`count` packets, funded at once (instant rail): every one must come back open."""
    async def one(i: int) -> str:
        body = packet_body(f"{tag}-{i}", senders[i % len(senders)], shape)
        packet = await api.call("POST", "/v1/red_packets", body, expect=(201,))
        if packet["status"] != "open":
            raise BenchError(f"packet {packet['id']} is {packet['status']}, not open")
        return str(packet["id"])

    return await api.many("packets", count, one)
