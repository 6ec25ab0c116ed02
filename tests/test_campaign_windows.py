"""Weekly windows, in the campaign's timezone: a payment created at a window's start is
in it, one created at its end is not, to the millisecond, in Asia/Shanghai (the default)
and in a timezone with summer time; and a campaign's own period (starts_at, ends_at)."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tests.campaigns import (
    MovableClock,
    campaign_gateway,
    clock,
    new_campaign,
    pay,
    reward_of,
)
from tests.helpers import Client, Gateway

pytestmark = pytest.mark.both_topologies

__all__ = ["campaign_gateway", "clock"]  # fixtures

MS = timedelta(milliseconds=1)
LONG_AGO = "2020-01-01T00:00:00Z"


async def earns(client: Client, clock: MovableClock, at: datetime, otn: str) -> bool:
    clock.freeze(at)
    return reward_of(await pay(client, otn, {"openid": f"o-{otn}"})) is not None


async def test_shanghai_mornings_on_wednesdays(campaign_gateway: Gateway,
                                               clock: MovableClock) -> None:
    client, _ = await campaign_gateway.merchant()
    await new_campaign(client, starts_at=LONG_AGO, conditions={
        "windows": [{"days": [3], "start": "07:00", "end": "10:00"}]})
    zone = ZoneInfo("Asia/Shanghai")
    wednesday = datetime(2031, 1, 1, tzinfo=zone)  # 2031-01-01 is a Wednesday
    opens, closes = wednesday.replace(hour=7), wednesday.replace(hour=10)
    assert not await earns(client, clock, opens - MS, "sh-1")
    assert await earns(client, clock, opens, "sh-2")
    assert await earns(client, clock, closes - MS, "sh-3")
    assert not await earns(client, clock, closes, "sh-4")
    assert not await earns(client, clock, opens + timedelta(days=1, hours=1), "sh-5")  # Thu
    # The same instant, read in UTC, is Tuesday 23:00: only the local time counts.
    assert opens.astimezone(ZoneInfo("UTC")).hour == 23


async def test_evenings_to_midnight_in_new_york_across_summer_time(
        campaign_gateway: Gateway, clock: MovableClock) -> None:
    client, _ = await campaign_gateway.merchant()
    await new_campaign(client, starts_at=LONG_AGO, conditions={
        "timezone": "America/New_York", "windows": [{"start": "17:00", "end": "24:00"}]})
    zone = ZoneInfo("America/New_York")
    for month, otn in ((1, "ny-w"), (7, "ny-s")):  # UTC-5 in winter, UTC-4 in summer
        day = datetime(2031, month, 15, tzinfo=zone)
        opens, midnight = day.replace(hour=17), day + timedelta(days=1)
        assert not await earns(client, clock, opens - MS, f"{otn}-1")
        assert await earns(client, clock, opens, f"{otn}-2")
        assert await earns(client, clock, midnight - MS, f"{otn}-3")
        assert not await earns(client, clock, midnight, f"{otn}-4")


async def test_a_campaign_runs_from_starts_at_until_ends_at(campaign_gateway: Gateway,
                                                            clock: MovableClock) -> None:
    client, _ = await campaign_gateway.merchant()
    begin = datetime(2031, 3, 1, 12, tzinfo=ZoneInfo("UTC"))
    clock.freeze(begin - timedelta(days=1))
    made = await new_campaign(client, starts_at=begin.isoformat(),
                              ends_at=(begin + timedelta(hours=1)).isoformat())
    assert made["status"] == "scheduled"
    assert not await earns(client, clock, begin - MS, "p-1")
    assert await earns(client, clock, begin, "p-2")
    assert await earns(client, clock, begin + timedelta(hours=1) - MS, "p-3")
    assert not await earns(client, clock, begin + timedelta(hours=1), "p-4")
    shown = await client.get(f"/v1/campaigns/{made['id']}")
    assert shown.body["status"] == "ended" and shown.body["spent"] == 200
