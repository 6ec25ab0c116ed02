"""Journal entries: the movement (written by the script that moves the money, into its
shard's inbox) and the chained entry (with its place in the merchant's chain).

`hash = SHA-256(prev ‖ canonical entry)`, hex; `prev` of the first entry is 64 zeros.
The canonical entry is the entry's own fields (all but `prev` and `hash`) as JSON with
sorted keys and no spaces, so anyone can recompute a chain from the API's answers.
"""

from __future__ import annotations

import hashlib
from typing import Any, Final, Literal

import orjson

from router.domain import iso

GENESIS: Final = "0" * 64
Kind = Literal["charge", "refund", "payout", "capture", "split", "split_return", "cashback",
               "points"]


def movement(kind: Kind, ref: str, amount: int, currency: str, at_ms: int, rail: str,
             rail_no: str, rail_refund_no: str | None = None) -> bytes:
    """A movement as the money-moving script appends it to the inbox (no seq yet)."""
    body: dict[str, Any] = {"kind": kind, "ref": ref, "amount": amount,
                            "currency": currency, "at": iso(at_ms), "rail": rail,
                            "rail_no": rail_no}
    if rail_refund_no:
        body["rail_refund_no"] = rail_refund_no
    return orjson.dumps(body)


def canonical(entry: dict[str, Any]) -> bytes:
    own = {k: v for k, v in entry.items() if k not in ("prev", "hash")}
    return orjson.dumps(own, option=orjson.OPT_SORT_KEYS)


def entry_hash(prev: str, entry: dict[str, Any]) -> str:
    return hashlib.sha256(prev.encode() + canonical(entry)).hexdigest()


def chained(raw_movement: bytes, seq: int, prev: str) -> dict[str, Any]:
    """The movement as the `seq`-th entry of its chain, after `prev`."""
    entry: dict[str, Any] = {"seq": seq, **orjson.loads(raw_movement)}
    entry["prev"] = prev
    entry["hash"] = entry_hash(prev, entry)
    return entry
