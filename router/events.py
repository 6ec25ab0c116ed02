"""Webhook event bodies, built at the moment of the state change they report."""

from __future__ import annotations

import orjson

from router.clock import Clock
from router.domain import iso
from router.store import keys


def event(clock: Clock, shard: int, event_type: str, data: bytes,
          at_ms: int) -> tuple[str, bytes]:
    """(event id, JSON body) of one event around `data`, an object already serialised
    (the payment or refund as its API answer has it). The body is delivered byte for
    byte on every try."""
    eid = keys.new_id(clock, "evt", shard)
    head = orjson.dumps({"id": eid, "object": "event", "type": event_type,
                         "created_at": iso(at_ms)})
    return eid, head[:-1] + b',"data":' + data + b"}"
