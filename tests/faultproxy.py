"""A TCP proxy between the gateway and Redis that can misbehave on purpose: pass traffic,
add latency, swallow it (a Redis that hangs), or reset every connection (one that died)."""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import urlparse


class FaultProxy:
    def __init__(self, upstream_url: str) -> None:
        self.upstream = urlparse(upstream_url)
        self.mode = "pass"  # pass | blackhole | reset
        self.latency_s = 0.0
        self._server: asyncio.Server | None = None
        self._conns: set[asyncio.StreamWriter] = set()
        self.port = 0
        self.refused = asyncio.Event()  # set when "reset" turned a connection away

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        self.reset_all()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def reset_all(self) -> None:
        for writer in list(self._conns):
            writer.transport.abort()
        self._conns.clear()

    async def _open_upstream(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.upstream.scheme == "unix":
            return await asyncio.open_unix_connection(self.upstream.path)
        return await asyncio.open_connection(self.upstream.hostname, self.upstream.port)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.mode == "reset":
            writer.transport.abort()
            self.refused.set()
            return
        up_reader, up_writer = await self._open_upstream()
        self._conns.update({writer, up_writer})
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer),
                             return_exceptions=True)
        for w in (writer, up_writer):
            self._conns.discard(w)
            with contextlib.suppress(Exception):
                w.close()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            if self.mode == "blackhole":
                continue  # swallowed: the other side waits forever
            if self.latency_s:
                await asyncio.sleep(self.latency_s)  # the fault being injected
            writer.write(data)
            await writer.drain()
        writer.close()
