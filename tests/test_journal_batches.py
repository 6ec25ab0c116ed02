"""The journal worker chains a batch in one round trip: a backlog drains a batch per pass,
two merchants interleaved; and workers that overlap (a lease that lapsed) still give every
movement exactly once, in inbox order, in its merchant's chain."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import orjson
import pytest

from router.ledger.chainer import JournalChainer
from router.ledger.entries import GENESIS, entry_hash, movement
from router.merchants import Merchant
from router.store import keys
from router.store.link import open_link
from tests.conftest import BankSim, gateway_settings
from tests.helpers import Gateway, start_gateway

pytestmark = pytest.mark.both_topologies

PER_MERCHANT = 600  # more than one batch (1,000) of the two together
SOURCE = 0  # the shard whose inbox the movements wait in


@pytest.fixture
async def quiet(redis_url: str, bank_sim: BankSim, tmp_path: Path,
                http: aiohttp.ClientSession) -> AsyncIterator[Gateway]:
    """A gateway whose own workers do not run: the test's workers are the only ones."""
    gw = await start_gateway(gateway_settings(redis_url, bank_sim, tmp_path), http,
                             background=False)
    yield gw
    await gw.close()


async def backlog(gw: Gateway, redis_url: str) -> list[Merchant]:
    """Two merchants' movements, interleaved, waiting in one inbox."""
    svc = gw.services
    mids = [(await gw.merchant(f"Shop {i}"))[1]["id"] for i in range(2)]
    merchants = [m for m in [await svc.merchants.get(mid) for mid in mids] if m]
    link = open_link(redis_url)
    inbox = keys.journal_inbox(SOURCE)
    for n in range(PER_MERCHANT):
        for m in merchants:
            raw = movement("charge", f"pay_{m.id}_{n}", n + 1, "CNY", 1_000 + n, "instant",
                           f"{n}_1")
            await link.call_at(inbox, "XADD", inbox, "*", "m", m.id, "j", raw)
    await link.aclose()
    return merchants


async def assert_chained_in_order(gw: Gateway, merchants: list[Merchant]) -> None:
    journal = gw.services.store.journal
    assert await journal.pending(SOURCE) == 0
    for m in merchants:
        entries = [orjson.loads(r) for r in await journal.raw_entries(m.shard, m.id)]
        assert [e["seq"] for e in entries] == list(range(1, PER_MERCHANT + 1))
        assert [e["ref"] for e in entries] == [f"pay_{m.id}_{n}" for n in range(PER_MERCHANT)]
        prev = GENESIS
        for entry in entries:
            assert entry["prev"] == prev and entry["hash"] == entry_hash(prev, entry)
            prev = entry["hash"]


def worker(gw: Gateway, owner: str) -> JournalChainer:
    svc = gw.services
    return JournalChainer(svc.store, svc.merchants, svc.settings.redis.shards, svc.clock, owner)


async def test_a_backlog_drains_a_full_batch_per_pass(quiet: Gateway, redis_url: str) -> None:
    merchants = await backlog(quiet, redis_url)
    one = worker(quiet, "w")
    assert [await one.chain_once() for _ in range(3)] == [1000, 200, 0]
    await assert_chained_in_order(quiet, merchants)


async def test_overlapping_workers_chain_each_movement_once_in_order(
        quiet: Gateway, redis_url: str) -> None:
    merchants = await backlog(quiet, redis_url)
    # One owner name: each holds the lease at once, as if it had lapsed between them.
    workers = [worker(quiet, "same-owner") for _ in range(3)]
    for _ in range(400):
        await asyncio.gather(*(w.chain_once() for w in workers))
        if await quiet.services.store.journal.pending(SOURCE) == 0:
            break
    await assert_chained_in_order(quiet, merchants)


async def test_entries_chained_but_not_dropped_are_not_chained_again(
        quiet: Gateway, redis_url: str) -> None:
    merchants = await backlog(quiet, redis_url)
    one = worker(quiet, "w")
    rows = await quiet.services.store.journal.inbox(SOURCE, 150)
    assert len(await one._chain_batch(SOURCE, rows)) == 150  # then it died: no drop
    for _ in range(6):
        await one.chain_once()
    await assert_chained_in_order(quiet, merchants)
