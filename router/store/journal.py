"""The journal in Redis: each shard's inbox of movements, and each merchant's chain
(list of entries, head, per-source watermarks) in the merchant's shard."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import Any, final

import orjson

from router.store import keys
from router.store.runner import Runner


class ChainOutcome(enum.Enum):
    APPENDED = "ok"
    ALREADY = "done"  # chained before (a worker died before dropping it from the inbox)
    STALE = "stale"  # the head moved: read it again


@final
class JournalStore:
    __slots__ = ("_run",)

    def __init__(self, runner: Runner) -> None:
        self._run = runner

    async def inbox(self, shard: int, count: int) -> list[tuple[str, str, bytes]]:
        """The oldest movements waiting in a shard's inbox: (inbox id, merchant, entry)."""
        rows = await self._run.read("XRANGE", keys.journal_inbox(shard), "-", "+",
                                    "COUNT", count)
        out = []
        for raw_id, flat in rows or ():
            fields = dict(zip(flat[::2], flat[1::2], strict=True))
            out.append((bytes(raw_id).decode(), bytes(fields[b"m"]).decode(),
                        bytes(fields[b"j"])))
        return out

    async def drop(self, shard: int, inbox_ids: list[str]) -> None:
        key = keys.journal_inbox(shard)
        await self._run.write(key, "XDEL", key, *inbox_ids)

    async def lease(self, shard: int, owner: str, lease_ms: int) -> bool:
        """Take (or keep) the shard's inbox for one worker for `lease_ms`."""
        key = keys.journal_lock(shard)
        got = await self._run.write(key, "SET", key, owner, "NX", "PX", lease_ms)
        if got is not None:
            return True
        current = await self._run.read("GET", key)
        if current is not None and bytes(current).decode() == owner:
            await self._run.write(key, "PEXPIRE", key, lease_ms)
            return True
        return False

    async def head(self, shard: int, merchant_id: str) -> tuple[int, str]:
        flat = await self._run.hash(keys.journal_head(shard, merchant_id))
        return int(flat.get(b"seq", b"0")), flat.get(b"hash", b"").decode()

    async def chain(self, shard: int, merchant_id: str, expected: tuple[int, str],
                    source_shard: int, run: Sequence[tuple[str, dict[str, Any]]]
                    ) -> tuple[ChainOutcome, int]:
        """Append `run` (inbox id, entry with its seq and hashes), one merchant's entries
        from one source shard in inbox order, in one script. The outcome, and how many
        entries it covers (appended, or found chained already)."""
        args: list[str | int | bytes] = [expected[0], expected[1], source_shard, merchant_id,
                                         run[-1][1]["hash"]]
        for inbox_id, entry in run:
            args += [inbox_id, orjson.dumps(entry)]
        reply = await self._run.script(
            self._run.scripts.journal_chain,
            [keys.journal(shard, merchant_id), keys.journal_head(shard, merchant_id),
             keys.journal_watermarks(shard, merchant_id), keys.journal_merchants(shard)],
            args)
        text = reply[0].decode() if isinstance(reply[0], bytes) else str(reply[0])
        return ChainOutcome(text), int(reply[1]) if len(reply) > 1 else 0

    async def entries(self, shard: int, merchant_id: str, after: int,
                      limit: int) -> list[dict[str, Any]]:
        """Entries with seq > after, at most `limit`, in order."""
        raw = await self._run.read("LRANGE", keys.journal(shard, merchant_id), after,
                                   after + limit - 1)
        return [orjson.loads(bytes(r)) for r in raw or ()]

    async def raw_entries(self, shard: int, merchant_id: str) -> list[bytes]:
        raw = await self._run.read("LRANGE", keys.journal(shard, merchant_id), 0, -1)
        return [bytes(r) for r in raw or ()]

    async def merchants(self, shard: int) -> list[str]:
        """The merchants whose chains live in `shard`."""
        raw = await self._run.read("SMEMBERS", keys.journal_merchants(shard))
        return sorted(bytes(m).decode() for m in raw or ())

    async def pending(self, shard: int) -> int:
        """Movements in the shard's inbox not chained yet."""
        return int(await self._run.read("XLEN", keys.journal_inbox(shard)))
