"""`payrouter journal verify` and `payrouter reconcile`: the commands that read the
journal from outside a gateway (they take `serve`'s --config / --redis-url)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from msgspec.structs import replace

from router.config_file import load
from router.ledger.verify import Verdict, verify_chain
from router.settings import Settings, SettingsError
from router.store.link import open_link
from router.store.store import Store


def add_commands(sub: Any) -> None:
    j = sub.add_parser("journal", help="the hash-chained journal of money movements")
    jsub = j.add_subparsers(dest="action", required=True)
    v = jsub.add_parser("verify", help="recompute every chain; exit 1 naming the first "
                                       "entry that does not verify")
    _store_options(v)
    v.add_argument("--merchant", help="only this merchant's chain")
    v.set_defaults(func=verify)

    r = sub.add_parser("reconcile", help="compare a rail's bill of a day with the journal; "
                                         "exit 1 when they differ")
    _store_options(r)
    r.add_argument("--rail", required=True, help="a configured rail (as in [rails.*])")
    r.add_argument("--date", required=True, help="the bill's day, YYYY-MM-DD (China time)")
    r.add_argument("--merchant", help="only this merchant's journal")
    r.set_defaults(func=reconcile_command)


def _store_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, help="TOML settings file (as for serve)")
    p.add_argument("--redis-url", help="the gateway's Redis")
    p.add_argument("--data-dir", default=".payrouter",
                   help="sandbox data directory: its embedded Redis when no URL is given")


def settings_of(args: argparse.Namespace) -> Settings | str:
    """The settings, with a Redis URL (or why there is none)."""
    try:
        settings = load(args.config)
    except SettingsError as exc:
        return str(exc)
    url = args.redis_url or settings.redis.url
    if url is None:
        socket = Path(args.data_dir) / "redis" / "redis.sock"
        if not socket.exists():
            return ("give --redis-url or a --config with [redis] url (or run it beside a "
                    "sandbox 'payrouter serve', whose Redis is in --data-dir)")
        url = f"unix://{socket.resolve()}"
    return replace(settings, redis=replace(settings.redis, url=url))


def with_store(args: argparse.Namespace,
               body: Callable[[Store, Settings], Awaitable[int]]) -> int:
    settings = settings_of(args)
    if isinstance(settings, str):
        print(f"payrouter: {settings}", file=sys.stderr)
        return 2
    assert settings.redis.url is not None

    async def run() -> int:
        store = Store(open_link(settings.redis.url or ""), shards=settings.redis.shards,
                      idem_ttl_s=settings.idempotency.ttl_s)
        try:
            return await body(store, settings)
        finally:
            await store.aclose()

    return asyncio.run(run())


def verify(args: argparse.Namespace) -> int:
    async def body(store: Store, settings: Settings) -> int:
        found: list[tuple[str, int]] = []
        for shard in range(settings.redis.shards):
            found += [(m, shard) for m in await store.journal.merchants(shard)
                      if args.merchant in (None, m)]
        if args.merchant and not found:
            print(f"payrouter: no journal for {args.merchant}", file=sys.stderr)
            return 1
        pending = sum([await store.journal.pending(s) for s in range(settings.redis.shards)])
        bad = 0
        for merchant_id, shard in found:
            verdict = verify_chain(await store.journal.raw_entries(shard, merchant_id),
                                   await store.journal.head(shard, merchant_id))
            _print(merchant_id, verdict)
            bad += verdict.broken_at is not None
        print(f"{len(found)} chain(s), {bad} broken; {pending} movement(s) not chained yet")
        return 1 if bad else 0

    return with_store(args, body)


def reconcile_command(args: argparse.Namespace) -> int:
    from router.ledger.reconcile_run import run_reconcile

    return with_store(args, lambda store, settings: run_reconcile(store, settings, args))


def _print(merchant_id: str, verdict: Verdict) -> None:
    if verdict.broken_at is None:
        print(f"{merchant_id}: OK, {verdict.entries} entries, head {verdict.head}")
    else:
        print(f"{merchant_id}: BROKEN at seq {verdict.broken_at}: {verdict.reason} "
              f"({verdict.entries} entries verify before it)")
