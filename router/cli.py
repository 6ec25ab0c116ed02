"""`payrouter serve | sim | merchants | listen | bench`: the command line."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import logging
import multiprocessing
import signal
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from aiohttp import web
from msgspec.structs import replace

from router import sandbox
from router.app import create_app
from router.config_file import load
from router.ledger import cli as ledger_cli
from router.merchants import MerchantDirectory, load_pepper
from router.sandbox.embedded import EmbeddedRedis, EmbeddedRedisError
from router.sandbox.listen import listener_app
from router.settings import Settings, SettingsError
from router.store.link import open_link
from router.store.store import Store

log = logging.getLogger("payrouter")


def _run(coro_fn: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run on uvloop when available (it is a dependency on Linux and macOS)."""
    try:
        import uvloop

        loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = uvloop.new_event_loop
    except ImportError:  # pragma: no cover - Windows
        loop_factory = None
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(coro_fn())


async def _until_signalled() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


async def _serve_until_signalled(runner: web.AppRunner, host: str, port: int,
                                 banner: str) -> None:
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    print(banner, flush=True)
    try:
        await _until_signalled()
    finally:
        await runner.cleanup()


async def _start_gateway(settings: Settings, *, reuse_port: bool) -> web.AppRunner:
    runner = web.AppRunner(create_app(settings), access_log=None, shutdown_timeout=10.0)
    await runner.setup()
    await web.TCPSite(runner, settings.server.host, settings.server.port,
                      reuse_port=reuse_port or None).start()
    return runner


def _worker(settings: Settings) -> None:
    """One extra gateway process sharing the port (SO_REUSEPORT)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    async def main() -> None:
        runner = await _start_gateway(settings, reuse_port=True)
        try:
            await _until_signalled()
        finally:
            await runner.cleanup()

    _run(main)


# --------------------------------------------------------------------------- serve
def serve(args: argparse.Namespace) -> int:
    try:
        settings = _overrides(load(args.config), args)
    except SettingsError as exc:
        print(f"payrouter: {exc}", file=sys.stderr)
        return 2
    sandbox_mode = args.config is None
    embedded: EmbeddedRedis | None = None
    if settings.redis.url is None:
        fsync = "always" if settings.redis.durability == "strict" else "everysec"
        embedded = EmbeddedRedis(settings.data_dir / "redis", appendfsync=fsync)
        try:
            url = embedded.start()
        except EmbeddedRedisError as exc:
            print(f"payrouter: {exc}", file=sys.stderr)
            return 1
        settings = replace(settings, redis=replace(settings.redis, url=url))
    try:
        _run(lambda: _serve(settings, sandbox_mode))
    finally:
        if embedded is not None:
            embedded.stop()
    return 0


def _overrides(settings: Settings, args: argparse.Namespace) -> Settings:
    server = settings.server
    if args.host:
        server = replace(server, host=args.host)
    if args.port is not None:
        server = replace(server, port=args.port)
    if args.workers is not None:
        server = replace(server, workers=max(1, args.workers))
    settings = replace(settings, server=server)
    if args.redis_url:
        settings = replace(settings, redis=replace(settings.redis, url=args.redis_url))
    if args.data_dir:
        settings = replace(settings, data_dir=Path(args.data_dir))
    return settings


async def _serve(settings: Settings, sandbox_mode: bool) -> None:
    sims: list[web.AppRunner] = []
    if sandbox_mode:
        settings, sims = await sandbox.start_simulators(settings)
    settings = sandbox.admin_token(settings)
    demo = await _demo(settings) if settings.sandbox else None
    ctx = multiprocessing.get_context("spawn")
    workers = [ctx.Process(target=_worker, args=(settings,), daemon=True)
               for _ in range(settings.server.workers - 1)]
    for proc in workers:
        proc.start()
    gateway = await _start_gateway(settings, reuse_port=settings.server.workers > 1)
    _banner(settings, demo, sandbox_mode)
    try:
        await _until_signalled()
    finally:
        print("payrouter: shutting down (in-flight requests finish first)", flush=True)
        for proc in workers:
            proc.terminate()
        await gateway.cleanup()
        for proc in workers:
            proc.join(15)
        for sim in sims:
            await sim.cleanup()


async def _demo(settings: Settings) -> sandbox.DemoMerchant:
    assert settings.redis.url is not None
    store = _store(settings.redis.url, settings)
    try:
        pepper = await load_pepper(store.merchants, settings.key_pepper)
        merchants = MerchantDirectory(store.merchants, pepper, settings.redis.shards)
        return await sandbox.demo_merchant(settings, merchants)
    finally:
        await store.aclose()


def _store(url: str, settings: Settings) -> Store:
    return Store(open_link(url), shards=settings.redis.shards,
                 idem_ttl_s=settings.idempotency.ttl_s)


def _banner(settings: Settings, demo: sandbox.DemoMerchant | None, sandbox_mode: bool) -> None:
    base = f"http://{settings.server.host}:{settings.server.port}"
    lines = [f"payrouter: listening on {base} ({settings.server.workers} process(es))"]
    lines.append(f"  redis:          {settings.redis.url}")
    for rail in settings.rails:
        lines.append(f"  rail {rail.name + ':':<11}{rail.base_url or '(in process)'}")
    assert settings.admin_token is not None
    lines.append(f"  admin token:    {settings.admin_token.reveal()}")
    lines.append(f"  dashboard:      {base}/dashboard (log in with the admin token)")
    if demo is not None:
        lines.append(f"  demo merchant {demo.id}, API key: {demo.api_key}")
        lines.append(f"  try: curl -s {base}/v1/payments -H 'Authorization: Bearer "
                     f"{demo.api_key}' -d '{{\"amount\":100,\"currency\":\"CNY\","
                     f"\"out_trade_no\":\"try-1\",\"scene\":\"quickpay\",\"method\":\"bank\","
                     f"\"payer\":{{\"auth_code\":\"134567890123456781\"}}}}'")
    if sandbox_mode:
        lines.append(f"  sandbox mode: data in {settings.data_dir.resolve()}; Ctrl-C stops")
    print("\n".join(lines), flush=True)


# --------------------------------------------------------------------------- sim
def sim(args: argparse.Namespace) -> int:
    keys_dir = Path(args.keys_dir) if args.keys_dir else Path("sandbox-keys") / args.rail
    try:
        app = sandbox.simulator_app(args.rail, keys_dir, args.time_scale)
    except ValueError as exc:
        print(f"payrouter: {exc}", file=sys.stderr)
        return 2

    _run(lambda: _serve_until_signalled(
        web.AppRunner(app, access_log=None, handler_cancellation=True), args.host, args.port,
        f"payrouter: {args.rail} simulator on http://{args.host}:{args.port} "
        f"(keys in {keys_dir.resolve()})"))
    return 0


# --------------------------------------------------------------------------- merchants
def merchants(args: argparse.Namespace) -> int:
    try:
        settings = load(args.config)
        if args.redis_url:
            settings = replace(settings, redis=replace(settings.redis, url=args.redis_url))
    except SettingsError as exc:
        print(f"payrouter: {exc}", file=sys.stderr)
        return 2
    if settings.redis.url is None:
        print("payrouter: give --redis-url or a --config with [redis] url "
              "(the embedded Redis runs only inside 'payrouter serve')", file=sys.stderr)
        return 2
    url = settings.redis.url

    async def main() -> None:
        store = _store(url, settings)
        try:
            pepper = await load_pepper(store.merchants, settings.key_pepper)
            directory = MerchantDirectory(store.merchants, pepper, settings.redis.shards)
            merchant, api_key = await directory.create(args.name, args.webhook_secret)
        finally:
            await store.aclose()
        print(f"merchant {merchant.id}\napi_key {api_key}\n"
              f"webhook_secret {merchant.webhook_secret.reveal()}")

    _run(main)
    return 0


# --------------------------------------------------------------------------- listen
def listen(args: argparse.Namespace) -> int:
    demo_file = Path(args.data_dir) / sandbox.DEMO_FILE

    def secret() -> str | None:
        if args.secret is not None or not demo_file.exists():
            return str(args.secret) if args.secret is not None else None
        found = json.loads(demo_file.read_text()).get("webhook_secret")
        return str(found) if found else None

    app = listener_app(secret)

    _run(lambda: _serve_until_signalled(
        web.AppRunner(app, access_log=None), args.host, args.port,
        f"payrouter: listening for webhooks on http://{args.host}:{args.port}/"))
    return 0


# --------------------------------------------------------------------------- bench
def bench(args: argparse.Namespace) -> int:
    """The performance suite lives in `loadtest/` (its tools in the `bench` extra): imported
    only when asked for."""
    try:
        suite = importlib.import_module("loadtest.suite")
    except ImportError as exc:
        print(f"payrouter: bench needs the load tools (pip install -e '.[bench]' in a "
              f"checkout): {exc}", file=sys.stderr)
        return 2
    return int(suite.main(args.bench_args))


# --------------------------------------------------------------------------- main
def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="payrouter", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("serve", help="run the gateway (no --config: sandbox mode)")
    s.add_argument("--config", type=Path, help="TOML settings file")
    s.add_argument("--host")
    s.add_argument("--port", type=int)
    s.add_argument("--workers", type=int, help="processes sharing the port")
    s.add_argument("--redis-url", help="use this Redis instead of the embedded one")
    s.add_argument("--data-dir", help="where embedded Redis and sandbox files live")
    s.set_defaults(func=serve)

    m = sub.add_parser("sim", help="run one rail simulator")
    m.add_argument("rail", choices=sandbox.SIMULATED_RAILS)
    m.add_argument("--port", type=int, required=True)
    m.add_argument("--host", default="127.0.0.1")
    m.add_argument("--keys-dir", help="credential bundle (written when absent)")
    m.add_argument("--time-scale", type=float, default=1.0,
                   help="multiplies the simulator's delays (e.g. 0.1 for fast tests)")
    m.set_defaults(func=sim)

    w = sub.add_parser("listen", help="receive, verify and print webhooks (for trying)")
    w.add_argument("--port", type=int, default=9000)
    w.add_argument("--host", default="127.0.0.1")
    w.add_argument("--secret", help="webhook secret (default: the sandbox demo merchant's)")
    w.add_argument("--data-dir", default=".payrouter", help="sandbox data directory")
    w.set_defaults(func=listen)

    c = sub.add_parser("merchants", help="manage merchants")
    csub = c.add_subparsers(dest="action", required=True)
    create = csub.add_parser("create", help="create a merchant and print its API key once")
    create.add_argument("--name", required=True)
    create.add_argument("--webhook-secret")
    create.add_argument("--config", type=Path)
    create.add_argument("--redis-url")
    create.set_defaults(func=merchants)

    ledger_cli.add_commands(sub)

    # Its options belong to loadtest.suite, which parses them (see main).
    b = sub.add_parser("bench", add_help=False,
                       help="run the performance suite, write bench-report.* "
                            "(payrouter bench --help)")
    b.set_defaults(func=bench, bench_args=[])
    return p


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    p = parser()
    args, rest = p.parse_known_args(argv)
    if args.command == "bench":
        args.bench_args = rest
    elif rest:
        p.error(f"unrecognized arguments: {' '.join(rest)}")
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    raise SystemExit(main())
