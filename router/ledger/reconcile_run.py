"""`payrouter reconcile`: fetch the bill through the rail's adapter, read the journal,
print every difference (with progress on stderr, as it may read many chains)."""

from __future__ import annotations

import argparse
import re
import sys
import time
from typing import Any

import aiohttp
import orjson

from adapters import registry
from adapters.base import AdapterConfig, RailError
from adapters.commerce_ops import BillDownload, BillLine
from router.ledger.reconcile import bill_lines, compare, journal_lines
from router.ops.metrics import Metrics
from router.rails.client import RailClient
from router.routing.health import HealthBook
from router.settings import Settings
from router.store.store import Store

_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


async def run_reconcile(store: Store, settings: Settings, args: argparse.Namespace) -> int:
    rail = settings.rail(args.rail)
    if rail is None:
        names = ", ".join(r.name for r in settings.rails) or "none"
        print(f"payrouter: no rail {args.rail!r} is configured (configured: {names})",
              file=sys.stderr)
        return 2
    if not _DAY.fullmatch(args.date):
        print("payrouter: --date must be YYYY-MM-DD", file=sys.stderr)
        return 2
    started = time.monotonic()
    try:
        bill = await fetch_bill(settings, args.rail, args.date)
    except RailError as err:
        print(f"payrouter: the {args.rail} rail gave no bill: {err.code}: {err.message}",
              file=sys.stderr)
        return 2
    _progress(f"bill: {len(bill)} line(s) for {args.date}", started)
    entries = await journal_entries(store, settings.redis.shards, args.merchant, started)
    mismatches = compare(bill_lines(bill), journal_lines(entries, args.rail, args.date))
    for m in mismatches:
        print(f"{m.kind.value}: {m.what} {m.number}  bill={_amount(m.bill_amount)}  "
              f"journal={_amount(m.journal_amount)}  {m.ref}")
    print(f"{args.rail} {args.date}: {len(bill)} bill line(s), "
          f"{len(journal_lines(entries, args.rail, args.date))} journal entrie(s), "
          f"{len(mismatches)} difference(s)")
    return 1 if mismatches else 0


async def fetch_bill(settings: Settings, rail_name: str, day: str) -> tuple[BillLine, ...]:
    rail = settings.rail(rail_name)
    assert rail is not None
    adapters = registry.load([AdapterConfig(rail.name, rail.base_url, rail.keys_dir,
                                            rail.options)])
    async with aiohttp.ClientSession() as session:
        client = RailClient(session, adapters, {rail.name: rail.timeout_s}, Metrics(),
                            HealthBook(adapters, settings.routing.breaker))
        where = await client.call(rail_name, BillDownload(day))
        if where.bill is not None:
            return where.bill
        got = await client.call(rail_name, BillDownload(day, where.rail_reference))
        return got.bill or ()


async def journal_entries(store: Store, shards: int, merchant: str | None,
                          started: float) -> list[dict[str, Any]]:
    """Every entry, chained or still waiting in an inbox."""
    entries: list[dict[str, Any]] = []
    for shard in range(shards):
        for merchant_id in await store.journal.merchants(shard):
            if merchant in (None, merchant_id):
                entries += [orjson.loads(r)
                            for r in await store.journal.raw_entries(shard, merchant_id)]
        entries += [orjson.loads(raw) for _, mid, raw in await store.journal.inbox(shard, 100_000)
                    if merchant in (None, mid)]
        _progress(f"journal: shard {shard + 1}/{shards}, {len(entries)} entrie(s)", started)
    return entries


def _progress(line: str, started: float) -> None:
    print(f"[{time.monotonic() - started:6.1f} s] {line}", file=sys.stderr)


def _amount(value: int | None) -> str:
    return "-" if value is None else str(value)
