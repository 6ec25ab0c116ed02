"""Webhook event bodies, built at the moment of the state change they report."""

from __future__ import annotations

import time

import orjson

from router.domain import iso
from router.store import keys


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def event(shard: int, event_type: str, data: bytes, at_ms: int) -> tuple[str, bytes]:
    """(event id, JSON body) of one event around `data`, an object already serialised
    (the payment or refund as its API answer has it). The body is delivered byte for
    byte on every try."""
    eid = keys.new_id("evt", shard)
    head = orjson.dumps({"id": eid, "object": "event", "type": event_type,
                         "created_at": iso(at_ms)})
    return eid, head[:-1] + b',"data":' + data + b"}"
