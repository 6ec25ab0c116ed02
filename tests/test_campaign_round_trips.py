"""Campaigns on the hot path's Redis budget: live campaigns a payment does not match
cost it nothing (the create still makes two round trips); a payment that matches one
makes exactly one more, the reservation, and its grant follows off the request's path.
Counted with MONITOR, as tests/test_round_trips.py does."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from router.store.resp import Script
from router.store.scripts import script_source
from tests.campaigns import MovableClock, new_campaign, pay, reward_of, start
from tests.conftest import Sim
from tests.helpers import Client, Gateway
from tests.test_round_trips import _top_level_commands

SHA = {name: Script(script_source(name)).sha
       for name in ("create_payment", "transition", "campaign_reserve", "campaign_settle")}
COUNT = 10


@pytest.fixture
async def quiet_gateway(redis_url: str, bank_sim: Sim, tmp_path: Path,
                        http: aiohttp.ClientSession) -> AsyncIterator[Gateway]:
    """No background loops: only requests (and what they set off) talk to Redis. The
    campaigns are made through this process, so its cache knows them at once."""
    gw = await start(redis_url, bank_sim, tmp_path, http, MovableClock(), background=False)
    yield gw
    await gw.close()


async def _scripts_of(redis_url: str, client: Client, tag: str) -> Counter[str]:
    async def create() -> None:
        for i in range(COUNT):
            await pay(client, f"{tag}-{i}", {"openid": f"o-{tag}-{i}"})

    commands = await _top_level_commands(redis_url, create)
    names = {sha: name for name, sha in SHA.items()}
    return Counter(names.get(c[1], c[0]) if c[0].upper() == "EVALSHA" else c[0].upper()
                   for c in commands)


async def test_campaigns_a_payment_does_not_match_cost_nothing(
        quiet_gateway: Gateway, redis_url: str) -> None:
    client, _ = await quiet_gateway.merchant()
    for method in ("bank", "alipay"):  # live, but for other methods: no match
        await new_campaign(client, conditions={"methods": [method]})
    await new_campaign(client, "cashback", conditions={"min_amount": 5000})
    assert reward_of(await pay(client, "warm", {"openid": "o-warm"})) is None
    seen = await _scripts_of(redis_url, client, "none")
    assert seen == {"create_payment": COUNT, "transition": COUNT}, seen


async def test_a_matching_payment_makes_one_more_round_trip(
        quiet_gateway: Gateway, redis_url: str) -> None:
    client, _ = await quiet_gateway.merchant()
    await new_campaign(client, conditions={"methods": ["bank"]})
    await new_campaign(client, conditions={"methods": ["instant"]})
    assert reward_of(await pay(client, "warm", {"openid": "o-warm"})) is not None
    seen = await _scripts_of(redis_url, client, "one")
    # Per create: the reservation, the create and its transition on the request's path;
    # the grant (campaign_settle) after the answer, so some may land after the count.
    assert seen["campaign_reserve"] == seen["create_payment"] == seen["transition"] == COUNT
    assert seen["campaign_settle"] <= COUNT
    assert set(seen) <= {"campaign_reserve", "create_payment", "transition",
                         "campaign_settle"}, seen
