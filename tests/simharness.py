"""What the simulator tests of every rail share: a simulator on loopback driven through
its adapter, and a merchant endpoint that records the notifications it receives."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from typing import Any, Protocol

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from multidict import CIMultiDict

from adapters.base import HttpRequest, HttpResponse, Operation, RailError, RailResult


class _Adapter(Protocol):
    def build(self, op: Operation) -> HttpRequest | RailResult: ...

    def parse(self, op: Operation, response: HttpResponse) -> RailResult: ...


class Receiver:
    """A notification endpoint: records each request; answers from `scripted`, then
    with `default` (each a rail's idea of "received" or "send again")."""

    def __init__(self, scripted: list[web.Response], default: web.Response,
                 wait_s: float) -> None:
        self.scripted = scripted
        self.default = default
        self.wait_s = wait_s
        self.queue: asyncio.Queue[tuple[CIMultiDict[str], bytes]] = asyncio.Queue()
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.queue.put_nowait((CIMultiDict(request.headers), await request.read()))
        answer = self.scripted.pop(0) if self.scripted else self.default
        return web.Response(status=answer.status, body=answer.body)

    async def next(self) -> tuple[CIMultiDict[str], bytes]:
        return await asyncio.wait_for(self.queue.get(), self.wait_s)


class SimHarness:
    """One running simulator plus a client speaking to it through `self.adapter`."""

    adapter: Any

    def __init__(self, server: TestServer, session: aiohttp.ClientSession,
                 stack: AsyncExitStack, wait_s: float) -> None:
        self._stack = stack  # closes helper servers with the simulator
        self.server = server
        self.session = session
        self.wait_s = wait_s

    async def exchange(self, request: HttpRequest) -> HttpResponse:
        async with self.session.request(
            request.method,
            request.url,
            headers=dict(request.headers),
            data=request.body or None,
            timeout=aiohttp.ClientTimeout(total=self.wait_s),
        ) as resp:
            return HttpResponse(resp.status, CIMultiDict(resp.headers), await resp.read())

    async def call(self, op: Operation, adapter: _Adapter | None = None) -> RailResult:
        adapter = adapter or self.adapter
        request = adapter.build(op)
        assert isinstance(request, HttpRequest)
        return adapter.parse(op, await self.exchange(request))

    async def refused(self, op: Operation, adapter: _Adapter | None = None) -> RailError:
        with pytest.raises(RailError) as info:
            await self.call(op, adapter)
        return info.value

    async def sim(self, method: str, path: str, payload: object = None) -> tuple[int, Any]:
        """A `/sim/*` control; `payload` goes as JSON, or as it is when it is a string."""
        body: dict[str, Any] = {"data": payload} if isinstance(payload, str) else {"json": payload}
        async with self.session.request(method, self.server.make_url(path), **body) as resp:
            return resp.status, await resp.json(content_type=None)

    async def ledger(self) -> Any:
        return (await self.sim("GET", "/sim/ledger"))[1]

    async def faults(self, **faults: float) -> None:
        status, answer = await self.sim("POST", "/sim/faults", faults)
        assert status == 200, answer

    async def serve_receiver(self, receiver: Receiver) -> Receiver:
        app = web.Application()
        app.router.add_post("/notify", receiver.handle)
        server = TestServer(app, host="127.0.0.1", port=0)
        await server.start_server()
        self._stack.push_async_callback(server.close)
        receiver.url = str(server.make_url("/notify"))
        return receiver
