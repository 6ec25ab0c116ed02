"""Every Redis key name the router uses, in one place.

Cluster-ready by hash tags: everything a payment script touches carries the tag `{N}` of
the merchant's shard, so one script's keys always share a slot. A merchant's shard is
fixed when it is created (stored in its record) and is also written into every payment,
refund and event id, so an id alone finds its slot. Per shard there is one outbox
stream, one sweeper set, one webhook retry set and one dead-letter set; workers walk all
shards. Keys without a tag (merchant:, apikey:, q:rail:, health:, config:, policies) are
only ever used by single-key commands, so on Redis Cluster they may live in any slot.

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
    {N}jin                          stream the shard's journal inbox: every movement of money
                                           (m merchant, j entry JSON), added by the script
                                           that moves it, chained by the journal worker
    {N}j:{mid}                      list   the merchant's hash-chained journal (N: the
                                           merchant's shard), entry seq = index + 1
    {N}jh:{mid}                     hash   its head: seq, hash
    {N}jw:{mid}                     hash   per source shard, the last inbox id chained
    {N}jm                           set    merchants whose chain is in this shard
    {N}jlock                        string a journal worker's lease on the shard's inbox
    {N}sl:{link id}                 string a pay-for-me link: the payment id, expiring
    {N}slc:{pid}                    string the claim on a payment's links (one payer)
    {N}cc:{code id}                 string a checkout code (JSON: merchant, type, amount, ...)
    health:{rail}:...               hash   routing health buckets and breaker state (health.py)
    {live}s:/{live}m:{second}       hash   the dashboard's per-second figures (live.py)
    dashboard:...                   string dashboard sessions, failed logins (sessions.py)
    config:pepper                   string pepper for API-key hashes when none is configured
    config:spread                   string the shard count social ids spread over (pinned by
                                           the first gateway; store/users.py)

Social payments (router/social/) spread over the shards by their own ids, not by their
merchant's: one platform's red packets are many merchants' worth of traffic, so a packet,
its grabs and the payouts of those grabs share the tag of the packet's id (one script
grabs), and a user lives in the shard of (merchant, user id).

    {U}u:{mid}:{user id}            string a platform's user (JSON: wallets, real name)
    {S}po:{po id}                   hash   payout (d creation JSON, a amount, s, v, u, x rail
                                           state JSON, f fingerprint)
    {S}rp:{rp id}                   hash   red packet or transfer (d creation JSON, f, s, v,
                                           u, ra/rc remaining amount/count, eq equal share,
                                           mn min share, ex expiry ms, n grabs so far, to
                                           the one recipient of a transfer, bl best luck,
                                           rf refunded, ev event still to send)
    {S}rpg:{rp id}                  hash   its grabs: user -> "seq:amount:at ms:payout id"
    {S}q:g:{mid}                    string GCRA state, the merchant's limit for grabs on
                                           this shard (a grab is one script: the merchant's
                                           own bucket is in another slot)

Pre-authorisations (router/commerce/) live in their merchant's shard, like payments: a
capture's payment is in the same slot, and the id is derived from (merchant,
out_auth_no), so a retried create finds the record instead of freezing twice.

    {N}au:{auth id}                 hash   authorization (d creation JSON, f, a amount held,
                                           s, v, u, x rail state JSON, ex expiry ms, c amount
                                           captured or being captured, cp/co the capture's
                                           payment id and out_trade_no); sweeper "au:{id}"

Service providers are merchant records (`merchant:sp_...`, the key like a merchant's);
a sub-merchant is a merchant record no key reaches, its id derived from its WeChat
`sub_mchid` when it has one (commerce/providers.py), so the id is the index. A split
lives in its payment's slot (it reserves against the payment in one script).

    merchant:{mid}                  hash   + for a provider: provider "1", accounts JSON;
                                           for a sub-merchant: sub "1", sub_mchid,
                                           alipay_user_id, max_split_bp
    spsub:{sp id}                   hash   the provider's sub-merchants: mch id -> JSON of
                                           its partner ids (sub_mchid, app_auth_token)
    {N}p:{pid}                      hash   + sh: money shared by splits processing or
                                           succeeded, less what refunds took back
    {N}spl:{split id}               hash   split (d creation JSON, f, a, s, v, u, x state
                                           JSON, ret returned); sweeper "sp:{id}"
    {N}spls:{pid}                   list   the payment's split ids, in creation order
    {N}shr:{pid}                    hash   shares a refund may take back: "<order>:<split
                                           id>:<receiver>" -> amount still returnable
    {N}rtn:{rid}                    hash   a refund's split returns: share -> amount, and
                                           "s:<share>" -> done | undone

E-invoices (router/commerce/invoices.py) live in their payment's slot: the invoice is
made, and a refund that succeeds finds it, in one script with the payment.

    {N}p:{pid}                      hash   + iv: the payment's current invoice id
    {N}iv:{invoice id}              hash   invoice (d creation JSON, f request fingerprint,
                                           a amount, t tax, s, v, u, x state JSON);
                                           sweeper "iv:{id}"

Policies and merchant points (router/promotions/). Policies are one small hash every
gateway process reads whole once a second; quotas and points live in the merchant's shard.

    policies                        hash   action -> policy JSON (whitelist, quota)
    {N}pq:{action}:{mid}            hash   the merchant's quota window for an action (s
                                           start ms, n units taken)
    {N}pt:{mid}                     hash   points account: b balance, e earned, r redeemed,
                                           w last journal seq the points worker has read
    {N}ptd:{mid}:{yyyymmdd}         hash   a day's payers: payer digest -> payment id, and
                                           "#" points earned that day (expires in 2 days)
    {N}ptl:{mid}                    list   points ledger entries (JSON), newest first
    {N}ptr:{redemption id}          hash   a redemption (d JSON, b balance after), kept as
                                           long as idempotency keys, for a retried one
    {N}ptlock                       string a points worker's lease on the shard

Campaigns (router/promotions/campaign*.py) live in a shard drawn for each campaign (its
id carries it), not in a merchant's: every counter of one campaign shares its slot, so
one script checks all its limits exactly, on a cluster too.

    campaigns                       set    ids of campaigns not ended (every gateway
                                           process reads it once a second)
    {C}cmp:{cmp id}                 hash   campaign (d definition JSON, s live | ended,
                                           e ended ms, sp spent: rewards reserved or
                                           granted, b budget, fn first N, pc/pa per payer
                                           count/amount, sa/ea starts/ends ms; 0: none)
    {C}cmpy:{cmp id}                hash   payer digest -> "count:amount" of the rewards
                                           the payer holds (HLEN: payers rewarded)
    {C}cmpr:{cmp id}                hash   payment id -> "amount:status:refs:clawed:payer"
    {C}due                          zset   + "rv:{cmp id}:{pid}": a reservation to bring in
                                           line with its payment (sweeper)
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


def authorization_id(shard: int, merchant_id: str, out_auth_no: str) -> str:
    """The id of a merchant's authorization for `out_auth_no`, derived like `payment_id`
    (a create retried after its answer or its record was lost freezes nothing twice)."""
    digest = hashlib.blake2b(f"{merchant_id}\0{out_auth_no}".encode(), digest_size=16,
                             person=b"payrouter.auth").digest()
    return f"auth_{shard:02x}{_base62(int.from_bytes(digest, 'big'), ID_RANDOM_CHARS)}"


def authorization(shard: int, auth_id: str) -> str:
    return f"{{{shard}}}au:{auth_id}"


def spread_id(prefix: str, shards: int, merchant_id: str, natural_key: str) -> str:
    """The id of a merchant's object for its natural key (out_payout_no...), like
    `payment_id`, but in a shard drawn from the digest: a platform's social objects
    spread over every shard instead of sitting in its merchant's."""
    digest = hashlib.blake2b(f"{merchant_id}\0{natural_key}".encode(), digest_size=16,
                             person=b"payrouter." + prefix.encode()[:6]).digest()
    value = int.from_bytes(digest, "big")
    return f"{prefix}_{value % shards:02x}{_base62(value >> 8, ID_RANDOM_CHARS)}"


def child_id(prefix: str, parent_id: str, part: str) -> str:
    """An id derived from its parent's and `part` (a grab from its packet and user, the
    payout of a grab from the grab), in the parent's shard: derived, so a retried script
    writes the same object."""
    digest = hashlib.blake2b(f"{parent_id}\0{part}".encode(), digest_size=16,
                             person=b"payrouter." + prefix.encode()[:6]).digest()
    random = _base62(int.from_bytes(digest, "big"), ID_RANDOM_CHARS)
    return f"{prefix}_{shard_in(parent_id):02x}{random}"


def user_shard(merchant_id: str, user_id: str, shards: int) -> int:
    return zlib.crc32(f"{merchant_id}\0{user_id}".encode()) % shards


def user(shard: int, mid: str, uid: str) -> str:
    return f"{{{shard}}}u:{mid}:{uid}"


def payout(shard: int, po_id: str) -> str:
    return f"{{{shard}}}po:{po_id}"


def red_packet(shard: int, rp_id: str) -> str:
    return f"{{{shard}}}rp:{rp_id}"


def grabs(shard: int, rp_id: str) -> str:
    return f"{{{shard}}}rpg:{rp_id}"


def grab_limit(shard: int, mid: str) -> str:
    return f"{{{shard}}}q:g:{mid}"


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


def journal_inbox(shard: int) -> str:
    return f"{{{shard}}}jin"


def journal(shard: int, mid: str) -> str:
    return f"{{{shard}}}j:{mid}"


def journal_head(shard: int, mid: str) -> str:
    return f"{{{shard}}}jh:{mid}"


def journal_watermarks(shard: int, mid: str) -> str:
    return f"{{{shard}}}jw:{mid}"


def journal_merchants(shard: int) -> str:
    return f"{{{shard}}}jm"


def journal_lock(shard: int) -> str:
    return f"{{{shard}}}jlock"


def dead_letters(shard: int) -> str:
    return f"{{{shard}}}dl"


def share_link(shard: int, lid: str) -> str:
    return f"{{{shard}}}sl:{lid}"


def share_claim(shard: int, pid: str) -> str:
    return f"{{{shard}}}slc:{pid}"


def checkout_code(shard: int, cid: str) -> str:
    return f"{{{shard}}}cc:{cid}"


def provider_subs(provider_id: str) -> str:
    return f"spsub:{provider_id}"


def split(shard: int, split_id: str) -> str:
    return f"{{{shard}}}spl:{split_id}"


def payment_splits(shard: int, pid: str) -> str:
    return f"{{{shard}}}spls:{pid}"


def shares(shard: int, pid: str) -> str:
    return f"{{{shard}}}shr:{pid}"


def refund_returns(shard: int, rid: str) -> str:
    return f"{{{shard}}}rtn:{rid}"


def invoice(shard: int, invoice_id: str) -> str:
    return f"{{{shard}}}iv:{invoice_id}"


def policy_quota(shard: int, action: str, mid: str) -> str:
    return f"{{{shard}}}pq:{action}:{mid}"


def points(shard: int, mid: str) -> str:
    return f"{{{shard}}}pt:{mid}"


def points_day(shard: int, mid: str, day: str) -> str:
    return f"{{{shard}}}ptd:{mid}:{day}"


def points_ledger(shard: int, mid: str) -> str:
    return f"{{{shard}}}ptl:{mid}"


def points_redemption(shard: int, redemption_id: str) -> str:
    return f"{{{shard}}}ptr:{redemption_id}"


def points_lock(shard: int) -> str:
    return f"{{{shard}}}ptlock"


def campaign(shard: int, cid: str) -> str:
    return f"{{{shard}}}cmp:{cid}"


def campaign_payers(shard: int, cid: str) -> str:
    return f"{{{shard}}}cmpy:{cid}"


def campaign_holds(shard: int, cid: str) -> str:
    return f"{{{shard}}}cmpr:{cid}"


def campaign_coupons(shard: int, cid: str) -> str:
    """A coupon campaign's coupons: id → "status:payment:user" (coupon_reserve.lua)."""
    return f"{{{shard}}}cmpc:{cid}"


ACTIVE_CAMPAIGNS: Final = "campaigns"
POLICIES: Final = "policies"
PEPPER: Final = "config:pepper"
SPREAD: Final = "config:spread"
