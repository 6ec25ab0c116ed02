"""The dashboard's figures (`GET /v1/admin/dashboard`), summed from Redis over every
gateway process: nothing here comes from this process's memory alone.

Rates come from the per-second buckets every process adds to (ops/live.py,
store/live.py); breaker states from the health book's records, webhook figures from the
outbox, both in Redis too. A second is read once it is complete, `SETTLE_S` after it
ended (processes hand a second over 20 ms after it ends); seconds old enough never change
again and are kept here, so a poll reads only the last few seconds from Redis.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Final, final

import orjson
from aiohttp import web

from router.ops.live import CREATES, LATENCY_BOUNDS_MS, RED_PACKET_GRABS, percentile_ms
from router.routing.health import BreakerState
from router.store import codec, keys

if TYPE_CHECKING:
    from router.services import Services

WINDOW_S: Final = 180  # what the charts show
RATE_WINDOW_S: Final = 5  # the headline rates: the mean of the last five complete seconds
SETTLE_S: Final = 2  # the newest second shown ended at least a second ago
CACHE_AFTER_S: Final = 4  # seconds older than this are final: every process has added to them
TOP_MERCHANTS: Final = 5
NEWEST_DEAD_LETTERS: Final = 5
_LATENCY_BUCKETS: Final = len(LATENCY_BOUNDS_MS) + 1


@final
class DashboardFigures:
    """One per process: the complete seconds it has read already."""

    __slots__ = ("_final_seconds",)

    def __init__(self) -> None:
        self._final_seconds: dict[int, dict[str, int]] = {}

    async def snapshot(self, svc: Services, now: float | None = None) -> dict[str, Any]:
        now = time.time() if now is None else now
        last = int(now) - SETTLE_S
        seconds = list(range(last - WINDOW_S + 1, last + 1))
        rails = svc.rails.names()
        buckets, breakers, webhooks, merchants = await asyncio.gather(
            self._buckets(svc, seconds, int(now) - CACHE_AFTER_S),
            _breakers(svc, rails), _webhooks(svc),
            _top_merchants(svc, seconds[-RATE_WINDOW_S:]))
        recent = buckets[-RATE_WINDOW_S:]
        counters = _counter_rates(recent)
        return {
            "object": "dashboard",
            "at": last,
            "window_s": WINDOW_S,
            "rate_window_s": RATE_WINDOW_S,
            "creates_per_s": counters[CREATES],
            "counters": counters,
            "series": {
                "start": seconds[0],
                "creates_per_s": [b.get(f"c:{CREATES}", 0) for b in buckets],
                "red_packet_grabs_per_s": [b.get(f"c:{RED_PACKET_GRABS}", 0) for b in buckets],
            },
            "rails": [_rail(rail, buckets, breakers[rail]) for rail in rails],
            "webhooks": webhooks,
            "red_packets": {"grabs_per_s": counters[RED_PACKET_GRABS]},
            "campaigns": campaign_budgets(svc),
            "merchants": merchants,
        }

    async def _buckets(self, svc: Services, seconds: list[int],
                       final_before: int) -> list[dict[str, int]]:
        cache = self._final_seconds
        for second in [s for s in cache if s < seconds[0]]:
            del cache[second]
        wanted = [s for s in seconds if s not in cache]
        fetched = await svc.store.live.figures(wanted) if wanted else {}
        for second, fields in fetched.items():
            if second <= final_before:
                cache[second] = fields
        return [cache.get(s) or fetched.get(s) or {} for s in seconds]


def campaign_budgets(svc: Services) -> list[dict[str, Any]]:
    """Campaign budgets, each `{"id", "name", "currency", "budget", "spent"}` (minor units),
    for every live campaign with a budget: from the process's cache of live campaigns,
    whose spent figures are read from each campaign's shard once a second
    (router/promotions/campaign_cache.py), so a poll costs no Redis call for them."""
    return svc.campaigns.live.budgets()


def _counter_rates(recent: list[dict[str, int]]) -> dict[str, float]:
    """Every counter fed in the rate window, per second; creates and grabs always."""
    totals: dict[str, int] = {CREATES: 0, RED_PACKET_GRABS: 0}
    for bucket in recent:
        for name, count in bucket.items():
            if name.startswith("c:"):
                totals[name[2:]] = totals.get(name[2:], 0) + count
    return {name: round(total / len(recent), 2) for name, total in sorted(totals.items())}


def _rail_second(bucket: dict[str, int], rail: str) -> tuple[int, int, list[int]]:
    prefix = f"r:{rail}:"
    latency = [bucket.get(f"{prefix}l{i}", 0) for i in range(_LATENCY_BUCKETS)]
    return bucket.get(prefix + "ok", 0), bucket.get(prefix + "failed", 0), latency


def _success_rate(ok: int, failed: int) -> float | None:
    return round(ok / (ok + failed), 4) if ok + failed else None


def _rail(rail: str, buckets: list[dict[str, int]],
          breaker: dict[str, Any]) -> dict[str, Any]:
    per_second = [_rail_second(b, rail) for b in buckets]
    recent = per_second[-RATE_WINDOW_S:]
    ok, failed = sum(s[0] for s in recent), sum(s[1] for s in recent)
    latency = [sum(s[2][i] for s in recent) for i in range(_LATENCY_BUCKETS)]
    return {
        "rail": rail,
        **breaker,
        "calls_per_s": round((ok + failed) / len(recent), 2),
        "success_rate": _success_rate(ok, failed),
        "p50_ms": percentile_ms(latency, 0.5),
        "p99_ms": percentile_ms(latency, 0.99),
        "series": {
            "calls_per_s": [s[0] + s[1] for s in per_second],
            "success_rate": [_success_rate(s[0], s[1]) for s in per_second],
            "p99_ms": [percentile_ms(s[2], 0.99) for s in per_second],
        },
    }


async def _breakers(svc: Services, rails: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Each rail's breaker as the health book last wrote it to Redis."""
    rails = list(rails)
    stored = await asyncio.gather(*(svc.store.health.breaker(rail) for rail in rails))
    return {rail: {"breaker": state or BreakerState.CLOSED.value,
                   "breaker_since": since or None}
            for rail, (state, since, _) in zip(rails, stored, strict=True)}


async def _webhooks(svc: Services) -> dict[str, Any]:
    counts, newest = await asyncio.gather(
        svc.store.outbox.counts(), svc.store.outbox.newest_dead_letters(NEWEST_DEAD_LETTERS))
    letters = await asyncio.gather(*(_dead_letter(svc, eid, at) for eid, at in newest))
    return {"backlog": counts.queued + counts.retrying, "queued": counts.queued,
            "retrying": counts.retrying, "dead_letters": counts.dead,
            "newest_dead_letters": [letter for letter in letters if letter is not None]}


async def _dead_letter(svc: Services, event_id: str, at_ms: float) -> dict[str, Any] | None:
    """A dead letter as the operator needs it: whose, where to, about what. The strings
    are the merchant's own (name, URL, description, metadata): the page shows them as
    text, never as markup."""
    shard = keys.shard_of(event_id)
    stored = await svc.store.outbox.stored_event(shard, event_id) if shard is not None else None
    if stored is None:
        return None  # redelivered meanwhile
    merchant = await svc.merchants.get(stored.merchant_id)
    event = orjson.loads(codec.unpack(stored.body))
    data = event.get("data") or {}
    return {"id": event_id, "type": event.get("type"), "dead_at_ms": int(at_ms),
            "merchant": {"id": stored.merchant_id, "name": merchant.name if merchant else None},
            "url": stored.url or (merchant.webhook_url if merchant else None),
            "object_id": data.get("id"), "description": data.get("description"),
            "metadata": data.get("metadata") or {}}


async def _top_merchants(svc: Services, seconds: list[int]) -> list[dict[str, Any]]:
    creates = await svc.store.live.merchant_creates(seconds)
    top = sorted(creates.items(), key=lambda item: (-item[1], item[0]))[:TOP_MERCHANTS]
    found = await asyncio.gather(*(svc.merchants.get(mid) for mid, _ in top))
    return [{"id": mid, "name": merchant.name if merchant else None,
             "creates_per_s": round(count / len(seconds), 2)}
            for (mid, count), merchant in zip(top, found, strict=True)]


FIGURES: Final = web.AppKey("dashboard_figures", DashboardFigures)
