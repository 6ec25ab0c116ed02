"""A merchant's webhook receiver for tests: a real aiohttp server on 127.0.0.1 that
records every request it gets in an asyncio.Queue, answering with scripted statuses."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web
from multidict import CIMultiDictProxy

from router.sandbox.embedded import free_port


@dataclass(frozen=True)
class Delivery:
    method: str
    path: str
    headers: CIMultiDictProxy[str]
    body: bytes
    answered: int  # the status this receiver answered with

    @property
    def event(self) -> dict[str, Any]:
        parsed: dict[str, Any] = orjson.loads(self.body)
        return parsed

    @property
    def signature(self) -> str:
        return self.headers["Payrouter-Signature"]


HANG = 0  # a scripted "status": the receiver holds the request until `release` is set


class Receiver:
    """`statuses` are answered in order, then `default_status` for every later request."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.queue: asyncio.Queue[Delivery] = asyncio.Queue()
        self.statuses: deque[int] = deque()
        self.default_status = 200
        self.release = asyncio.Event()

    def url(self, path: str = "/hooks") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        status = self.statuses.popleft() if self.statuses else self.default_status
        self.queue.put_nowait(Delivery(request.method, request.path, request.headers, body,
                                       status))
        if status == HANG:
            await self.release.wait()
            status = 200
        headers = {"Location": self.url("/moved")} if 300 <= status < 400 else None
        return web.Response(status=status, text="ok" if status < 300 else "nope",
                            headers=headers)

    async def next(self, within: float = 5.0) -> Delivery:
        """The next request received; fails the test if none comes in `within` seconds."""
        try:
            return await asyncio.wait_for(self.queue.get(), within)
        except TimeoutError:
            raise AssertionError(f"no webhook delivery within {within} s") from None

    async def next_of(self, event_type: str, within: float = 5.0) -> Delivery:
        """The next delivery of `event_type`, skipping others."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while True:
            delivery = await self.next(max(deadline - loop.time(), 0.01))
            if delivery.event["type"] == event_type:
                return delivery


@asynccontextmanager
async def webhook_receiver() -> AsyncIterator[Receiver]:
    port = free_port()
    receiver = Receiver(port)
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", receiver.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield receiver
    finally:
        receiver.release.set()
        await runner.cleanup()
