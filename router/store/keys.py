"""Every Redis key name the router uses, in one place.

Cluster-ready by hash tags: everything a payment script touches carries the tag `{N}` of
the merchant's shard, so one script's keys always share a slot. A merchant's shard is
fixed when it is created (stored in its record) and is also written into every payment,
refund and event id, so an id alone finds its slot. Per shard there is one outbox
stream, one sweeper set, one webhook retry set and one dead-letter set; workers walk all
shards. Keys without a tag (merchant:, apikey:, q:rail:, health:, config:) are only ever
used by single-key commands, so on Redis Cluster they may live in any slot.

On a cluster the 16 shards' tags fall into 16 slots spread over the masters (slot =
CRC16 of the tag); more shards spread finer. A merchant's keys stay in one slot, so
one merchant is served by one master (docs/capacity.md).

    merchant:{mid}                  hash   name, shard, webhook secret/url, limits
    apikey:{hash}                   string merchant id (hash = keyed BLAKE2b of the key)
    {N}p:{pid}                      hash   payment (d creation blob, x rail state, s, v, u,
                                           a amount, f fingerprint, rr reserved, rf refunded)
    {N}i:{mid}:{idempotency key}    hash   idempotency claim / stored response
    {N}r:{rid}                      hash   refund (d, x, s, u, a)
    {N}ro:{pid}:{out_refund_no}     string refund id
    {N}rl:{pid}                     list   refund ids of a payment, in creation order
    {N}due                          zset   sweeper: "p:{pid}" / "r:{rid}" by due time (ms)
    {N}ob                           stream outbox of webhook events
    {N}wr                           zset   webhook retries by due time (ms)
    {N}e:{eid}                      hash   an event awaiting retry or dead-lettered
    {N}dl                           zset   dead-lettered event ids by time
    {N}q:m:{mid}                    string GCRA state, merchant limit
    {N}q:y:{mid}:{payer}            string GCRA state, payer limit
    q:rail:{name}                   string GCRA state, rail quota: global, so it is taken by
                                           a call of its own before the create script
                                    (each q: key gets ":{rps}/{burst}" appended, limits.py)
    {N}sl:{link id}                 string a pay-for-me link: the payment id, expiring
    {N}slc:{pid}                    string the claim on a payment's links (one payer)
    {N}cc:{code id}                 string a checkout code (JSON: merchant, type, amount, ...)
    health:{rail}:...               hash   routing health buckets and breaker state (health.py)
    config:pepper                   string pepper for API-key hashes when none is configured
"""

from __future__ import annotations

import hashlib
import zlib
from typing import Final

from router.clock import Clock

ID_RANDOM_CHARS: Final = 20  # about 119 bits


def shard_for(merchant_id: str, shards: int) -> int:
    return zlib.crc32(merchant_id.encode()) % shards


def new_id(clock: Clock, prefix: str, shard: int) -> str:
    """`<prefix>_<shard as 2 hex digits><random>`: the slot is readable from the id."""
    return f"{prefix}_{shard:02x}{clock.token(ID_RANDOM_CHARS)}"


def payment_id(shard: int, merchant_id: str, out_trade_no: str) -> str:
    """The id of a merchant's payment for `out_trade_no`: derived from the natural key,
    not drawn. A payment created again after its record was lost (an acknowledged write
    that a failed-over Redis never received, retried by the client) gets the same id,
    hence the same rail order number, which the rail dedupes: no second charge. It also
    makes the out_trade_no index unnecessary (the payment record is found by its id)."""
    digest = hashlib.blake2b(f"{merchant_id}\0{out_trade_no}".encode(), digest_size=16,
                             person=b"payrouter.pay").digest()
    return f"pay_{shard:02x}{_base62(int.from_bytes(digest, 'big'), ID_RANDOM_CHARS)}"


_BASE62: Final = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def _base62(value: int, length: int) -> str:
    digits = []
    for _ in range(length):
        value, digit = divmod(value, 62)
        digits.append(_BASE62[digit])
    return "".join(digits)


def shard_of(object_id: str) -> int | None:
    """The shard written into an id, or None for a malformed id."""
    _, sep, rest = object_id.partition("_")
    if not sep or len(rest) != 2 + ID_RANDOM_CHARS:
        return None
    try:
        return int(rest[:2], 16)
    except ValueError:
        return None


def shard_in(object_id: str) -> int:
    """The shard of an id the router made itself (a malformed one is a bug)."""
    shard = shard_of(object_id)
    if shard is None:
        raise ValueError(f"malformed id {object_id!r}")
    return shard


def tag(shard: int) -> str:
    return f"{{{shard}}}"


def merchant(mid: str) -> str:
    return f"merchant:{mid}"


def api_key(key_hash: str) -> str:
    return f"apikey:{key_hash}"


def payment(shard: int, pid: str) -> str:
    return f"{{{shard}}}p:{pid}"


def idempotency(shard: int, mid: str, key: str) -> str:
    return f"{{{shard}}}i:{mid}:{key}"


def refund(shard: int, rid: str) -> str:
    return f"{{{shard}}}r:{rid}"


def out_refund_no(shard: int, pid: str, orn: str) -> str:
    return f"{{{shard}}}ro:{pid}:{orn}"


def refund_list(shard: int, pid: str) -> str:
    return f"{{{shard}}}rl:{pid}"


def due(shard: int) -> str:
    return f"{{{shard}}}due"


def outbox(shard: int) -> str:
    return f"{{{shard}}}ob"


def webhook_retries(shard: int) -> str:
    return f"{{{shard}}}wr"


def event(shard: int, eid: str) -> str:
    return f"{{{shard}}}e:{eid}"


def merchant_limit(shard: int, mid: str) -> str:
    return f"{{{shard}}}q:m:{mid}"


def payer_limit(shard: int, mid: str, payer: str) -> str:
    return f"{{{shard}}}q:y:{mid}:{payer}"


def rail_limit(rail: str) -> str:
    return f"q:rail:{rail}"


def dead_letters(shard: int) -> str:
    return f"{{{shard}}}dl"


def share_link(shard: int, lid: str) -> str:
    return f"{{{shard}}}sl:{lid}"


def share_claim(shard: int, pid: str) -> str:
    return f"{{{shard}}}slc:{pid}"


def checkout_code(shard: int, cid: str) -> str:
    return f"{{{shard}}}cc:{cid}"


PEPPER: Final = "config:pepper"
