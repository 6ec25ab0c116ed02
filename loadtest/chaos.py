"""Chaos run with a money checker: `python -m loadtest.chaos [--payments N] [--kills K]
[--red-packets N] [--transfers M]`.

Starts Redis, the bank, WeChat Pay and Alipay simulators (standalone child processes with
faults: errors, timeouts, latency, dropped and duplicated notifications, on every call,
payouts included) and gateway processes sharing one Redis. Two loads run at once:

- payments (`chaos_payments.py`): a client creates payments across rails and scenes,
  retrying connection errors, 5xx and `409 idempotency_key_in_use` with the same
  Idempotency-Key and body, as real clients do, while a killer SIGKILLs gateways at
  random moments and restarts them;
- red packets and transfers (`chaos_social.py`): verified users whose wallets pay out on
  the WeChat Pay and Alipay simulators (some refused for good, some with the answer
  lost), packets funded by quick pay with expiries of a few seconds, grab storms (users
  repeating themselves among them), transfers accepted, declined or left to expire, and
  gateways SIGKILLed in the middle of grab storms and just after expiries.

After the loads and the grace period, the checkers compare the router's records with
every simulator's ledger. Payments: double charges; lost acknowledged payments (a 2xx
the client got whose payment is now missing, is another payment, or went backwards);
mismatches (the router and the ledger disagree about the money, or a ledger order no
payment names); not final (still `processing`, or `requires_action` when paid or quick
pay). Red packets and transfers (`chaos_social_check.py`), per packet: money (payouts
paid plus refunds to the sender equal what its payment took), double payouts, lost grabs,
stuck (not ended: packet, payout or refund), limits (count and amount).

A third load (`chaos_commerce.py`) holds, captures, voids and lets expire Alipay
pre-authorisations, and has a service provider split its sub-merchant's WeChat Pay
payments and refund some, gateways SIGKILLed the moment a capture, void or split goes out;
its checker (`chaos_commerce_check.py`) holds each authorization and split against the
ledgers. Last, once every movement is chained (`payrouter journal verify`, which must
pass), each merchant's journal must add up to the ledgers kind by kind: charges,
refunds, payouts, splits and their returns (`chaos_journal.py`).

With `--redis-cluster` the gateways share a 3-master / 3-replica Redis Cluster instead
of one Redis, in the strict durability profile (each change waits for its replica), and
`--redis-kills N` SIGKILLs a random master N times during the load; each time the run
waits for a replica to take over, then restarts the killed node, which rejoins as a
replica.

Campaigns (`chaos_campaigns.py`, `--campaigns N`): before the load, discount and
cashback campaigns with small budgets on the merchant; a share of the payments name a
payer, some paid ones are refunded; its checker (`chaos_campaigns_check.py`) holds each
campaign's spent against the rewards its payments still hold, its limits, the payouts
and the discounted charges.

Every count must be 0; the exit status is 1 otherwise. Everything runs on 127.0.0.1.
The client's choices and the kill times follow `--seed`; the simulators' fault dice and
the timing are not reproducible.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import aiohttp
import orjson

from adapters.simkit.faults import Faults
from loadtest.chaos_campaigns import (
    CampaignLoad,
    make_campaigns,
    plan_campaigns,
    settle_campaigns,
)
from loadtest.chaos_campaigns_check import CampaignChecker
from loadtest.chaos_commerce import (
    ADMIN_TOKEN,
    PARTNER_TABLE,
    CommerceLoad,
    onboard,
    shop_api,
)
from loadtest.chaos_commerce_check import (
    CommerceChecker,
    settle_commerce,
)
from loadtest.chaos_commerce_plan import CommercePlan, plan_commerce
from loadtest.chaos_journal import (
    Books,
    JournalChecker,
    read_journal,
    wait_chained,
)
from loadtest.chaos_payments import Client, History, Planned, check, plan, run_load, settle
from loadtest.chaos_report import Report, print_report
from loadtest.chaos_social import SocialLoad, register
from loadtest.chaos_social_check import SocialChecker, settle_social
from loadtest.chaos_social_plan import Api, SocialPlan, plan_social
from loadtest.chaos_stack import (
    GatewayKiller,
    Gateways,
    load_killer,
    redis_killer,
    start_simulators,
    write_config,
)
from loadtest.progress import Progress
from loadtest.redis_cluster import LocalCluster
from loadtest.stack import Workspace, create_merchant, run_guarded

PROG = "loadtest.chaos"
REQUEST_TIMEOUT_S = 10.0
JOURNAL_WAIT_S = 30.0  # after the grace: at most this long for every movement to be chained

# What every simulator is set to by default (`--error-rate` etc. change it).
CHAOS_FAULTS = Faults(error_rate=0.05, timeout_rate=0.03, latency_ms=5.0,
                      latency_jitter_ms=5.0, drop_notify_rate=0.2, duplicate_notify_rate=0.2)


@dataclass
class Options:
    payments: int = 200
    kills: int = 3
    seed: int = 1
    seconds: float = 20.0
    gateways: int = 3  # one stays up while two are killed, so kills keep their moment
    concurrency: int = 32
    grace_s: float = 30.0
    time_scale: float = 0.1
    native_share: float = 0.3
    faults: Faults = CHAOS_FAULTS
    redis_cluster: bool = False
    redis_kills: int = 0
    red_packets: int = 12
    transfers: int = 8
    storm_kills: int = 2
    expiry_kills: int = 2
    authorizations: int = 8
    split_payments: int = 6
    commerce_kills: int = 2
    campaigns: int = 4


async def show_load(planned: list[Planned], social: SocialPlan, commerce: CommercePlan,
                    history: History, api: Api, kills: Counter[str], opts: Options) -> None:
    """A line a second while the loads run (until cancelled): payments answered, packets
    and commerce items driven, their rate, what is left of the schedule, retries and
    kills so far."""
    progress = Progress("chaos load", len(planned) + len(social.packets) + commerce.items,
                        "items")
    last = (progress.elapsed, 0)
    while True:
        await asyncio.sleep(1.0)
        done = (sum(1 for p in planned if p.answers)
                + sum(1 for p in social.packets if p.done) + commerce.done)
        rate = (done - last[1]) / max(1e-9, progress.elapsed - last[0])
        last = (progress.elapsed, done)
        left = progress.total - done
        eta = max(opts.seconds - progress.elapsed, left / rate if rate > 0 else 0.0)
        grabs = sum(len(p.acks) for p in social.packets)
        progress.show(done, rate, eta,
                      f"{history.requests + api.requests:,} requests, "
                      f"{history.retries + api.retries:,} retries, {grabs} grabs, "
                      f"kills {dict(kills)}")


# --------------------------------------------------------------------------- the run
async def chaos(work: Workspace, opts: Options) -> Report:
    if not opts.redis_cluster:
        return await chaos_on(work, opts, work.redis.start(), None)
    cluster = LocalCluster(work.tmp / "cluster")
    try:
        await asyncio.to_thread(cluster.start)
        return await chaos_on(work, opts, cluster.url, cluster)
    finally:
        work.children.stop_all()  # the gateways first, then the nodes they use
        cluster.stop()


async def chaos_on(work: Workspace, opts: Options, redis_url: str,
                   cluster: LocalCluster | None) -> Report:
    sims = start_simulators(work, opts.faults, opts.time_scale)
    api_key = create_merchant(redis_url, work.env)
    config = write_config(work, redis_url, sims, wait_replicas=1 if cluster else 0,
                          admin_token=ADMIN_TOKEN, partner_tables={PARTNER_TABLE: "wechatpay"})
    gateways = Gateways(work, config, opts.gateways)
    gateways.start_all()
    history = History()
    planned = plan(opts.payments, opts.seed, opts.native_share)
    social = plan_social(opts.seed, opts.red_packets, opts.transfers, opts.seconds,
                         opts.storm_kills, opts.expiry_kills)
    commerce = plan_commerce(opts.seed, opts.authorizations, opts.split_payments,
                             opts.seconds, opts.commerce_kills)
    killer = GatewayKiller(gateways, opts.seed + 4)
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        client = Client(session, gateways, api_key, sims, history, opts.seed)
        api = Api(session, gateways.urls, api_key, opts.seed)
        if social.packets:
            await register(api, social)
        campaigns = plan_campaigns(planned, opts.campaigns, opts.seed)
        await make_campaigns(api, campaigns, opts.seed)
        partners = await onboard(session, gateways.urls)
        shop = shop_api(session, gateways.urls, partners, opts.seed)
        loads = [
            load_killer(killer, opts.kills, opts.seconds, opts.seed),
            run_load(client, planned, opts.seconds, opts.concurrency),
            SocialLoad(api, killer, opts.seed).run(social),
            CommerceLoad(api, shop, partners, killer, opts.seed).run(commerce),
            CampaignLoad(api, campaigns, opts.seed).run(opts.seconds),
        ]
        if cluster is not None:
            loads.append(redis_killer(cluster, opts.redis_kills, opts.seconds, opts.seed,
                                      killer.kills))
        shown = asyncio.create_task(show_load(planned, social, commerce, history, api,
                                              killer.kills, opts))
        await asyncio.gather(*loads)
        shown.cancel()
        print(f"chaos load: {sum(1 for p in planned if p.answers):,} of {len(planned):,} "
              f"payments answered, {sum(1 for p in social.packets if p.id)} of "
              f"{len(social.packets)} packets and transfers created, "
              f"{history.requests + api.requests:,} requests "
              f"({history.retries + api.retries:,} retries), kills {dict(killer.kills)}",
              file=sys.stderr, flush=True)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + opts.grace_s
        found = await settle(client, planned, opts.grace_s)
        seen = await settle_social(api, social.packets, max(1.0, deadline - loop.time()))
        bought = await settle_commerce(api, shop, commerce, max(1.0, deadline - loop.time()))
        rewards = await settle_campaigns(
            api, campaigns, max(1.0, deadline - loop.time()),
            lambda got: not CampaignChecker({}, campaigns).report(got).violations["spent"])
        verified = await wait_chained(redis_url, work.env, JOURNAL_WAIT_S)
        journals = {"merchant": await read_journal(api), "shop": await read_journal(shop)}
        ledgers = {}
        for rail, (url, _) in sims.items():
            async with session.get(f"{url}/sim/ledger") as resp:
                ledgers[rail] = orjson.loads(await resp.read())
    wallets = {person.id: person.identity for person in social.people}
    campaign_report = CampaignChecker(ledgers, campaigns).report(rewards)
    social_checker = SocialChecker(ledgers, wallets)
    social_checker.claimed.update(campaign_report.payout_numbers)  # the cashbacks'
    social_report = social_checker.report(social.packets, seen)
    commerce_report = CommerceChecker(ledgers).report(commerce, bought)
    counts, problems = check(planned, found, ledgers, [
        *social_report.funding_orders, *commerce_report.orders["merchant"],
        *commerce_report.orders["shop"]])
    journal = JournalChecker(ledgers, verified)
    funding = [s.packet["payment"] for s in seen.values() if s.packet and s.packet["payment"]]
    journal.merchant("merchant", *journals["merchant"], Books(
        [*(p for p in found.values() if p), *funding, *commerce_report.payments["merchant"]],
        payouts=True))
    journal.merchant("shop", *journals["shop"], Books(commerce_report.payments["shop"],
                                                      splits=commerce_report.split_rows))
    statuses = Counter(p["status"] if p else "missing" for p in found.values())
    return Report(
        payments=len(planned), requests=history.requests, retries=history.retries,
        acknowledged=sum(1 for p in planned if p.acks), kills=killer.kills["load"],
        storm_kills=killer.kills["grab storm"], expiry_kills=killer.kills["expiry"],
        redis_kills=killer.kills["redis"], kill_late_s=round(killer.late_s, 1),
        final_statuses=dict(sorted(statuses.items())),
        ledger_orders=sum(len(ledger["orders"]) for ledger in ledgers.values()),
        double_charges=counts["double_charges"],
        lost_acknowledged=counts["lost_acknowledged"], mismatches=counts["mismatches"],
        not_final=counts["not_final"], problems=problems, social=social_report.to_json(),
        commerce_kills=killer.kills["commerce"], commerce=commerce_report.to_json(),
        journal=journal.finish().to_json(), campaigns=campaign_report.to_json())


def parse(argv: Sequence[str] | None) -> tuple[Options, bool]:
    p = argparse.ArgumentParser(prog=f"python -m {PROG}", description=__doc__.split("\n")[0])
    p.add_argument("--payments", type=int, default=200)
    p.add_argument("--kills", type=int, default=3, help="gateway SIGKILLs during the load")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--seconds", type=float, default=20.0,
                   help="how long the load lasts (payments are spread over it)")
    p.add_argument("--gateways", type=int, default=3,
                   help="gateway processes (kills leave one up)")
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--grace", type=float, default=30.0,
                   help="at most this long for every payment to settle after the load")
    p.add_argument("--time-scale", type=float, default=0.1, help="the simulators' delays")
    p.add_argument("--error-rate", type=float, default=CHAOS_FAULTS.error_rate)
    p.add_argument("--timeout-rate", type=float, default=CHAOS_FAULTS.timeout_rate)
    p.add_argument("--latency-ms", type=float, default=CHAOS_FAULTS.latency_ms)
    p.add_argument("--drop-notify-rate", type=float, default=CHAOS_FAULTS.drop_notify_rate)
    p.add_argument("--duplicate-notify-rate", type=float,
                   default=CHAOS_FAULTS.duplicate_notify_rate)
    p.add_argument("--redis-cluster", action="store_true",
                   help="a local 3-master / 3-replica Redis Cluster instead of one Redis")
    p.add_argument("--redis-kills", type=int, default=0,
                   help="master SIGKILLs during the load (needs --redis-cluster)")
    p.add_argument("--red-packets", type=int, default=12, help="red packets, each stormed")
    p.add_argument("--transfers", type=int, default=8)
    p.add_argument("--storm-kills", type=int, default=2,
                   help="gateway SIGKILLs in the middle of a grab storm")
    p.add_argument("--expiry-kills", type=int, default=2,
                   help="gateway SIGKILLs just after a packet's or transfer's expiry")
    p.add_argument("--authorizations", type=int, default=8,
                   help="Alipay pre-authorisations: captured, voided or left to expire")
    p.add_argument("--splits", type=int, default=6,
                   help="partner-mode WeChat Pay payments split (and some refunded)")
    p.add_argument("--commerce-kills", type=int, default=2,
                   help="gateway SIGKILLs the moment a capture, void or split goes out")
    p.add_argument("--campaigns", type=int, default=4,
                   help="discount and cashback campaigns (in turn) with small budgets")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    a = p.parse_args(argv)
    if a.redis_kills and not a.redis_cluster:
        p.error("--redis-kills needs --redis-cluster")
    faults = Faults(error_rate=a.error_rate, timeout_rate=a.timeout_rate,
                    latency_ms=a.latency_ms, latency_jitter_ms=a.latency_ms,
                    drop_notify_rate=a.drop_notify_rate,
                    duplicate_notify_rate=a.duplicate_notify_rate)
    return Options(payments=a.payments, kills=a.kills, seed=a.seed, seconds=a.seconds,
                   gateways=max(1, a.gateways), concurrency=a.concurrency, grace_s=a.grace,
                   time_scale=a.time_scale, faults=faults, redis_cluster=a.redis_cluster,
                   redis_kills=a.redis_kills, red_packets=a.red_packets,
                   transfers=a.transfers, storm_kills=a.storm_kills,
                   expiry_kills=a.expiry_kills, authorizations=a.authorizations,
                   split_payments=a.splits, commerce_kills=a.commerce_kills,
                   campaigns=a.campaigns), a.json


def main(argv: Sequence[str] | None = None) -> int:
    opts, as_json = parse(argv)

    def body(work: Workspace) -> int:
        report = asyncio.run(chaos(work, opts))
        print_report(report, as_json)
        return 0 if report.ok else 1

    return run_guarded(PROG, body)


if __name__ == "__main__":
    sys.exit(main())
