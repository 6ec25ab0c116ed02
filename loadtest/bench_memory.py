"""Redis memory per payment, measured: `python -m loadtest.bench_memory [--payments N]`.

Starts an embedded redis-server and a gateway in this process (instant rail, webhook and
sweeper workers off so outbox entries stay to be measured), creates N payments each with
an Idempotency-Key, then asks Redis `MEMORY USAGE` for every key a payment leaves:
the payment record, its idempotency entry, its share of the outbox stream and of the
journal inbox; then runs the journal worker and the points worker once each (as a
gateway's background would) and measures the charge's journal entry and what a payer's
first payment of the day leaves in points (its ledger entry, its mark in the day's
payers, and that movement's own journal entry). Everything on 127.0.0.1 or a unix
socket; stops by itself.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import aiohttp
import redis.asyncio as aioredis
import uvloop
from aiohttp import web

from router.app import create_app
from router.merchants import Merchant
from router.sandbox.embedded import EmbeddedRedis, free_port
from router.security import Secret
from router.services import SERVICES
from router.settings import (
    LimitSettings,
    RailSettings,
    RateLimit,
    RedisSettings,
    ServerSettings,
    Settings,
)
from router.store import keys

ADMIN = "bench-admin"
UNLIMITED = RateLimit(1e9, 10**9)


async def measure(redis_url: str, data_dir: Path, count: int) -> dict[str, float]:
    port = free_port()
    settings = Settings(
        server=ServerSettings(port=port),
        redis=RedisSettings(url=redis_url),
        rails=(RailSettings(name="instant"),),
        limits=LimitSettings(merchant=UNLIMITED, payer=UNLIMITED),
        data_dir=data_dir,
        admin_token=Secret(ADMIN),
    )
    runner = web.AppRunner(create_app(settings, background=False), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    base = f"http://127.0.0.1:{port}"
    redis = aioredis.Redis.from_url(redis_url)
    try:
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{base}/v1/admin/merchants", json={"name": "memory"},
                                 headers={"Authorization": f"Bearer {ADMIN}"}) as resp:
                merchant = await resp.json()
            auth = {"Authorization": f"Bearer {merchant['api_key']}"}
            ids: list[tuple[str, str, str]] = []
            for i in range(count):
                otn, idem = f"order-20261121-{i:06d}", f"0f8fad5b-d9cb-469f-a165-{i:012d}"
                body = {"amount": 1000, "currency": "CNY", "out_trade_no": otn,
                        "scene": "quickpay", "method": "instant", "description": "Coffee",
                        "payer": {"auth_code": f"1345678901{i:08d}"}}
                async with http.post(f"{base}/v1/payments", json=body,
                                     headers={**auth, "Idempotency-Key": idem}) as resp:
                    payment = await resp.json()
                    assert resp.status == 201, payment
                ids.append((payment["id"], otn, idem))
                if (i + 1) % 500 == 0:
                    print(f"  {i + 1}/{count} payments", file=sys.stderr, flush=True)
        figures = await _usage(redis, merchant["id"], ids)
        return await _journal_and_points(runner.app, redis, merchant["id"], figures)
    finally:
        await redis.aclose()
        await runner.cleanup()


async def _usage(redis: aioredis.Redis, mid: str,
                 ids: list[tuple[str, str, str]]) -> dict[str, float]:
    shard = keys.shard_of(ids[0][0]) or 0
    # No out_trade_no index: payment ids derive from it (keys.payment_id).
    totals = {"payment": 0, "idempotency entry": 0}
    for pid, _, idem in ids:
        totals["payment"] += await redis.memory_usage(keys.payment(shard, pid), samples=0) or 0
        totals["idempotency entry"] += await redis.memory_usage(
            keys.idempotency(shard, mid, idem), samples=0) or 0
    per = {name: total / len(ids) for name, total in totals.items()}
    stream = keys.outbox(shard)
    per["outbox entry (until delivered)"] = (
        (await redis.memory_usage(stream, samples=0) or 0) / max(1, await redis.xlen(stream)))
    return per


async def _journal_and_points(app: web.Application, redis: aioredis.Redis, mid: str,
                              per: dict[str, float]) -> dict[str, float]:
    """`per` with the journal's and the points' bytes per payment, after their workers
    ran (as a gateway's background would), and the totals."""
    svc = app[SERVICES]
    shard = (await svc.merchants.get(mid) or _missing(mid)).shard
    inbox, chain = keys.journal_inbox(shard), keys.journal(shard, mid)
    inbox_entry = (await redis.memory_usage(inbox, samples=0) or 0) / max(
        1, await redis.xlen(inbox))
    while await svc.journal.chain_once():
        pass
    charges = await redis.llen(chain)
    chained = await redis.memory_usage(chain, samples=0) or 0
    await svc.promotions.points_worker.catch_up()
    while await svc.journal.chain_once():
        pass
    earned = await redis.llen(chain) - charges
    day_keys = [k async for k in redis.scan_iter(match=keys.points_day(shard, mid, "*"))]
    points = sum([await redis.memory_usage(k, samples=0) or 0
                  for k in [keys.points_ledger(shard, mid), *day_keys]])
    steady = per["payment"] + per["idempotency entry"] + chained / max(1, charges)
    out = {"payment": per["payment"], "idempotency entry": per["idempotency entry"],
           "journal entry, the charge (kept)": chained / max(1, charges),
           "total, settled": steady,
           "outbox entry (until delivered)": per["outbox entry (until delivered)"],
           "journal inbox entry (until chained)": inbox_entry}
    out["total, until its event is delivered"] = (
        steady + out["outbox entry (until delivered)"] + inbox_entry)
    out["points: ledger entry, the day's payer mark"] = points / max(1, earned)
    out["journal entry, the points (kept)"] = (
        ((await redis.memory_usage(chain, samples=0) or 0) - chained) / max(1, earned))
    out["total, settled, a payer's first payment that day"] = (
        steady + out["points: ledger entry, the day's payer mark"]
        + out["journal entry, the points (kept)"])
    return out


def _missing(mid: str) -> Merchant:
    raise RuntimeError(f"merchant {mid} vanished")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--payments", type=int, default=1000)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="prmem-") as tmp:
        server = EmbeddedRedis(Path(tmp) / "redis")
        url = server.start()
        try:
            figures = uvloop.run(measure(url, Path(tmp) / "data", max(1, args.payments)))
        finally:
            server.stop()
    print(f"Redis memory per payment ({args.payments} payments, MEMORY USAGE):")
    for name, value in figures.items():
        print(f"  {name:<50} {value:7.0f} bytes")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
