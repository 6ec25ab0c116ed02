"""Webhook event bodies, built at the moment of the state change they report."""

from __future__ import annotations

import time
from typing import Any

import orjson

from router.domain import iso
from router.store import keys


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def event(shard: int, event_type: str, data: dict[str, Any], at_ms: int) -> tuple[str, bytes]:
    """(event id, JSON body) of one event; the body is delivered byte for byte every time."""
    eid = keys.new_id("evt", shard)
    body = orjson.dumps(
        {"id": eid, "object": "event", "type": event_type, "created_at": iso(at_ms),
         "data": data}
    )
    return eid, body
