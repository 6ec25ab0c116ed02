"""The grab benchmark's correctness checks: money must add up under load, or the figures
mean nothing. Each check is `{"name", "ok", "detail"}`; any that fails fails the run.

Three witnesses are compared: what the clients were told (the driver's 201 answers and
their amounts), what each packet's counters say (remaining amount and count), and the
grab entries each packet holds, in Redis and through `GET /v1/red_packets/{id}`.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from typing import Any

import redis

from loadtest.grab_redis import packet_totals
from loadtest.grab_setup import Api, PacketShape
from loadtest.grab_stack import SocialStack, payouts_by_outcome

EMPTY = "409 red_packet_empty"


def check(name: str, ok: bool, detail: str) -> dict[str, Any]:
    return {"name": name, "ok": ok, "detail": detail}


async def check_hot_packet(stack: SocialStack, packet_id: str, shape: PacketShape,
                           race: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The race's answers against the packet: exactly `count` wins summing to `amount`,
    every other grabber told it is empty, and the packet showing the same winners."""
    answers: dict[str, int] = race["total_statuses"]
    racers = sum(answers.values())
    wins, empty = answers.get("201", 0), answers.get(EMPTY, 0)
    others = {k: v for k, v in answers.items() if k not in ("201", EMPTY)}
    granted: list[int] = race["granted"]
    async with Api(stack.gateway_url, stack.api_key, 1) as api:
        body: dict[str, Any] = await api.call("GET", f"/v1/red_packets/{packet_id}")
    grabs = body["grabs"]
    shown = sum(g["amount"] for g in grabs)
    paid = sum(1 for g in grabs if g["payout"]["status"] == "succeeded")
    return [
        check("hot packet: exactly count grabs won", wins == shape.count,
              f"{wins} x 201 of {racers:,} racers (count {shape.count})"),
        check("hot packet: every other racer got red_packet_empty",
              empty == racers - shape.count and not others,
              f"{empty:,} x {EMPTY}" + (f"; other answers {others}" if others else "")),
        check("hot packet: the won amounts sum to the packet's amount",
              sum(granted) == shape.amount and len(granted) == wins,
              f"{sum(granted):,} of {shape.amount:,} in {len(granted)} wins"),
        check("hot packet: GET shows the winners' grabs, finished",
              len(grabs) == shape.count and shown == shape.amount
              and body["status"] == "finished" and body["remaining_amount"] == 0
              and {g["user"] for g in grabs} == set(race["winners"]),
              f"{len(grabs)} grabs summing to {shown:,}, status {body['status']}, "
              f"remaining {body['remaining_amount']}"),
        check("hot packet: every grab's payout succeeded", paid == len(grabs),
              f"{paid} of {len(grabs)} payouts succeeded"),
    ], body


async def check_packets(stack: SocialStack, r: redis.Redis, packet_ids: Sequence[str],
                        shape: PacketShape, granted: int, wins: int, payouts: int,
                        sample: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every packet's counters against its grab entries and against what the clients
    were told (`wins` 201 answers granting `granted` in all); a sample through the API;
    all `payouts` (every grab of the run) ended and succeeded. Returns the checks and
    the sampled packets."""
    totals = packet_totals(r, packet_ids, shape.amount, shape.count)
    picked = random.Random(2).sample(totals.grabbed, min(sample, len(totals.grabbed)))
    async with Api(stack.gateway_url, stack.api_key, 32) as api:
        bodies: list[dict[str, Any]] = list(await asyncio.gather(
            *(api.call("GET", f"/v1/red_packets/{pid}") for pid in picked)))
    bad = [b["id"] for b in bodies
           if sum(g["amount"] for g in b["grabs"]) + b["remaining_amount"] != shape.amount
           or len(b["grabs"]) + b["remaining_count"] != shape.count
           or b["remaining_amount"] < b["remaining_count"]]
    ended = payouts_by_outcome(stack.gateway_url)
    return [
        check("packets: counters agree with the grabs they hold",
              totals.granted_amount == totals.grab_sum
              and totals.grabs_counted == totals.grab_entries,
              f"{totals.packets:,} packets: amount given {totals.granted_amount:,} by "
              f"counters, {totals.grab_sum:,} by entries; grabs {totals.grabs_counted:,} "
              f"by counters, {totals.grab_entries:,} entries"),
        check("packets: the grabs held are exactly the 201 answers",
              totals.grab_entries == wins and totals.grab_sum == granted,
              f"{wins:,} x 201 granting {granted:,}; held {totals.grab_entries:,} "
              f"granting {totals.grab_sum:,}"),
        check("packets: a sample via the API adds up (grabs + remaining == amount)",
              not bad and len(bodies) > 0,
              f"{len(bodies)} grabbed packets read" + (f"; wrong: {bad[:5]}" if bad else "")),
        check("payouts: every grab's payout ended, succeeded",
              ended.get("succeeded", 0) == payouts and set(ended) <= {"succeeded"},
              f"{ended} for {payouts:,} grabs"),
    ], bodies
