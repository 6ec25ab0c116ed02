"""Recompute a merchant's chain from its stored entries: the first entry whose `prev`,
`seq` or `hash` does not follow from the entries before it is where it was changed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import final

import orjson

from router.ledger.entries import GENESIS, entry_hash


@final
@dataclass(frozen=True, slots=True)
class Verdict:
    entries: int
    head: str  # the last good hash (GENESIS for an empty chain)
    broken_at: int | None = None  # seq of the first entry that does not verify
    reason: str = ""


def verify_chain(raw_entries: list[bytes], stored_head: tuple[int, str]) -> Verdict:
    prev = GENESIS
    for index, raw in enumerate(raw_entries):
        seq = index + 1
        try:
            entry = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return Verdict(index, prev, seq, "not valid JSON")
        if entry.get("seq") != seq:
            return Verdict(index, prev, seq, f"seq {entry.get('seq')!r} where {seq} belongs")
        if entry.get("prev") != prev:
            return Verdict(index, prev, seq, "prev is not the previous entry's hash")
        if entry.get("hash") != entry_hash(prev, entry):
            return Verdict(index, prev, seq, "hash does not match the entry")
        prev = entry["hash"]
    count = len(raw_entries)
    if stored_head != (count, prev if count else ""):
        return Verdict(count, prev, count + 1 if stored_head[0] > count else count,
                       f"the head says seq {stored_head[0]}, the chain has {count} entries")
    return Verdict(count, prev)
