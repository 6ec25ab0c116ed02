"""The baseline: the smallest aiohttp app on uvloop, answering `POST /` with a small JSON body.

    python -m loadtest.hello --port 8089

It reads the request body (as the gateway does) and answers 200 `{"ok":true}`.
`GET /healthz` answers too, for the benchmark's readiness poll. SIGINT or SIGTERM stops it.
"""

from __future__ import annotations

import argparse
import asyncio
import signal

import uvloop
from aiohttp import web

_BODY = b'{"ok":true}'


async def _post(request: web.Request) -> web.Response:
    await request.read()
    return web.Response(body=_BODY, content_type="application/json")


async def _healthz(request: web.Request) -> web.Response:
    return web.Response(body=_BODY, content_type="application/json")


def app() -> web.Application:
    application = web.Application()
    application.add_routes([web.post("/", _post), web.get("/healthz", _healthz)])
    return application


async def serve_until_signal(application: web.Application, host: str, port: int,
                             name: str) -> None:
    """Serve `application` on host:port until SIGINT or SIGTERM, then clean it up."""
    runner = web.AppRunner(application, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    print(f"{name}: listening on http://{host}:{port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m loadtest.hello", description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    args = p.parse_args(argv)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(serve_until_signal(app(), args.host, args.port, "hello"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
