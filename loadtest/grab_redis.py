"""What the grab benchmark reads from Redis itself: memory, commands by kind, the
commands the gateway sends per grab (a MONITOR sample), and the packets' totals.

The gateway's own answers say what it claims; Redis says what it did. Commands run by a
script show in MONITOR as coming from `lua`; everything else is a round trip from a
client, which is how a grab's round trips are told from the work its scripts do.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import redis

from router.store import keys
from router.store.scripts import Scripts

_CHUNK = 2000  # commands per pipeline when reading every packet


def client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=30.0)


def used_memory(r: redis.Redis) -> int:
    return int(r.info("memory")["used_memory"])


def command_calls(r: redis.Redis) -> dict[str, int]:
    """Calls per command since Redis started (INFO commandstats); the commands scripts
    run are counted too. (Not its `usec`: that is wall time, which a Redis sharing a busy
    core inflates; /proc's CPU time is the figure to trust.)"""
    stats: dict[str, dict[str, Any]] = r.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()}


def calls_between(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    delta = {name: after[name] - before.get(name, 0) for name in after}
    return dict(sorted(((k, v) for k, v in delta.items() if v > 0), key=lambda kv: -kv[1]))


def outbox_backlog(r: redis.Redis, shards: int) -> int:
    """Events not yet taken off the outbox streams (every shard)."""
    pipe = r.pipeline(transaction=False)
    for shard in range(shards):
        pipe.xlen(keys.outbox(shard))
    return sum(int(n) for n in pipe.execute())


def wait_outbox_empty(r: redis.Redis, shards: int, timeout_s: float) -> int:
    """Wait (bounded) until the webhook worker has taken every event; what is left."""
    deadline = time.monotonic() + timeout_s
    left = outbox_backlog(r, shards)
    while left and time.monotonic() < deadline:
        time.sleep(0.2)
        left = outbox_backlog(r, shards)
    return left


# --------------------------------------------------------------------------- packets
@dataclass(frozen=True, slots=True)
class PacketTotals:
    """Summed over packets, as Redis holds them."""

    packets: int
    granted_amount: int  # amount - remaining_amount
    grabs_counted: int  # count - remaining_count
    grab_entries: int  # entries in the packets' grab hashes
    grab_sum: int  # the amounts in those entries
    grabbed: list[str]  # the packets with at least one grab


def packet_totals(r: redis.Redis, packet_ids: Sequence[str], amount: int,
                  count: int) -> PacketTotals:
    """What every packet says it gave, by its counters and by its grab entries."""
    granted = counted = entries = grab_sum = 0
    grabbed: list[str] = []
    for start in range(0, len(packet_ids), _CHUNK):
        chunk = packet_ids[start:start + _CHUNK]
        pipe = r.pipeline(transaction=False)
        for pid in chunk:
            shard = keys.shard_in(pid)
            pipe.hmget(keys.red_packet(shard, pid), "ra", "rc")
            pipe.hvals(keys.grabs(shard, pid))
        replies = pipe.execute()
        for pid, (ra, rc), grabs in zip(chunk, replies[::2], replies[1::2], strict=True):
            if grabs:
                grabbed.append(pid)
            granted += amount - int(ra)
            counted += count - int(rc)
            entries += len(grabs)
            grab_sum += sum(int(g.split(b":")[1]) for g in grabs)
    return PacketTotals(len(packet_ids), granted, counted, entries, grab_sum, grabbed)


# --------------------------------------------------------------------------- memory
KIND_NAMES = {"rp": "packet", "rpg": "grab hash", "po": "payout", "p": "payment",
              "u": "user", "due": "due set", "j": "journal chain", "jin": "journal inbox",
              "ob": "outbox", "e": "event", "i": "idempotency", "q": "rate limit"}


def kind_of(key: bytes) -> str:
    """A key's kind: its name without the shard tag, up to the first colon ("{3}po:..."
    is "payout")."""
    text = key.decode(errors="replace")
    if text.startswith("{"):
        text = text.partition("}")[2]
    prefix = text.partition(":")[0]
    return KIND_NAMES.get(prefix, prefix)


def memory_by_kind(r: redis.Redis) -> dict[str, int]:
    """MEMORY USAGE summed per kind of key, over every key (SCAN, pipelined)."""
    totals: dict[str, int] = {}
    batch: list[bytes] = []

    def flush() -> None:
        pipe = r.pipeline(transaction=False)
        for key in batch:
            pipe.memory_usage(key, samples=0)
        for key, size in zip(batch, pipe.execute(), strict=True):
            kind = kind_of(key)
            totals[kind] = totals.get(kind, 0) + int(size or 0)
        batch.clear()

    for key in r.scan_iter(count=1000):
        batch.append(key)
        if len(batch) >= _CHUNK:
            flush()
    if batch:
        flush()
    return totals


def grown_by_kind(before: dict[str, int], after: dict[str, int],
                  per: int) -> dict[str, float]:
    """What each kind of key grew by, per object added (largest first)."""
    grown = {k: (after.get(k, 0) - before.get(k, 0)) / max(1, per)
             for k in set(before) | set(after)}
    return dict(sorted(((k, round(v, 1)) for k, v in grown.items() if abs(v) >= 0.5),
                       key=lambda kv: -kv[1]))


def key_sizes(r: redis.Redis, full: dict[str, Any],
              samples: Sequence[dict[str, Any]]) -> dict[str, float]:
    """MEMORY USAGE per kind of key, averaged over the sampled packets (each as
    `GET /v1/red_packets/{id}` shows it): the packet hash, its funding payment, its grab
    hash per entry, a grab's payout record; and the grab hash of the `full` packet (every
    share taken) per entry, which is what one more grab costs a packet."""
    full_hash = r.memory_usage(keys.grabs(keys.shard_in(full["id"]), full["id"]), samples=0)
    packet = payment = grab_hash = payout = entries = payouts = 0
    for body in samples:
        pid = body["id"]
        shard = keys.shard_in(pid)
        packet += r.memory_usage(keys.red_packet(shard, pid), samples=0) or 0
        pay = body["payment"]["id"]
        payment += r.memory_usage(keys.payment(keys.shard_in(pay), pay), samples=0) or 0
        if body["grabs"]:
            grab_hash += r.memory_usage(keys.grabs(shard, pid), samples=0) or 0
            entries += len(body["grabs"])
        for g in body["grabs"][:5]:
            po = g["payout"]["id"]
            payout += r.memory_usage(keys.payout(keys.shard_in(po), po), samples=0) or 0
            payouts += 1
    n = max(1, len(samples))
    return {"packet hash": packet / n, "funding payment": payment / n,
            "grab hash, per entry (sampled packets)": grab_hash / max(1, entries),
            "grab hash, per entry (a full packet)": (full_hash or 0) / max(1, len(full["grabs"])),
            "payout record": payout / max(1, payouts)}


# --------------------------------------------------------------------------- monitor
USER_READ_FOR_GRAB = "GET user, before its grab"
USER_READ_OTHER = "GET user, other"


class Monitor:
    """MONITOR on its own connection, in a thread: counts what clients sent (by command,
    EVALSHA by script name) and what scripts ran. A read of a user's record counts for a
    grab when that user's grab script follows it; other reads of users (the background
    workers') are counted apart."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.sent: Counter[str] = Counter()  # round trips from clients
        self.in_scripts = 0  # commands run inside scripts
        self._user_reads: Counter[str] = Counter()  # by user, not yet followed by a grab
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="redis-monitor", daemon=True)
        scripts = Scripts.load()
        self._names = {getattr(scripts, f).sha: f for f in Scripts.__dataclass_fields__}
        self._ready = threading.Event()
        self.error: str | None = None

    def __enter__(self) -> Monitor:
        self._thread.start()
        if not self._ready.wait(5.0):
            raise RuntimeError(f"MONITOR did not start: {self.error}")
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10.0)
        self.sent[USER_READ_OTHER] += sum(self._user_reads.values())
        self._user_reads.clear()

    def _run(self) -> None:
        try:
            with _connect(self.url) as sock:
                sock.sendall(b"MONITOR\r\n")
                self._ready.set()
                for line in _lines(sock, self._stop):
                    self._count(line)
        except OSError as exc:
            self.error = str(exc)
            self._ready.set()

    def _count(self, line: bytes) -> None:
        # +1700000000.123456 [0 unix:/path/redis.sock] "evalsha" "<sha>" ...
        head, _, command = line.partition(b"] ")
        if head.endswith(b" lua"):
            self.in_scripts += 1
            return
        words = [w.strip(b'"').decode(errors="replace") for w in command.split(b" ", 9)]
        if not words or not words[0]:
            return
        name = words[0].upper()
        arg = words[1] if len(words) > 1 else ""
        if name == "GET" and "}u:" in arg:
            self._user_reads[arg.rpartition(":")[2]] += 1
            return
        if name in ("EVALSHA", "EVALSHA_RO"):
            name = f"EVALSHA {_script_name(words, self._names)}"
            user = words[8] if name == "EVALSHA rp_grab" else ""
            if self._user_reads[user] > 0:
                self._user_reads[user] -= 1
                self.sent[USER_READ_FOR_GRAB] += 1
        self.sent[name] += 1


def _script_name(words: list[str], names: dict[str, str]) -> str:
    """The grab script by the shape of its keys (its SHA changes whenever the shared
    library does, and the gateway may have loaded another revision); others by SHA."""
    if len(words) > 7 and words[2] == "5" and "}rpg:" in words[4] and "}q:g:" in words[7]:
        return "rp_grab"
    return names.get(words[1], words[1][:12]) if len(words) > 1 else "?"


@contextlib.contextmanager
def _connect(url: str) -> Iterator[socket.socket]:
    parts = urlsplit(url)
    if parts.scheme == "unix":
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(parts.path)
    else:
        sock = socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379))
    sock.settimeout(0.2)
    try:
        yield sock
    finally:
        sock.close()


def _lines(sock: socket.socket, stop: threading.Event) -> Iterator[bytes]:
    pending = b""
    while not stop.is_set():
        try:
            data = sock.recv(1 << 16)
        except TimeoutError:
            continue
        if not data:
            return
        pending += data
        *complete, pending = pending.split(b"\r\n")
        yield from complete
