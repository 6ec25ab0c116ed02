"""Redis Cluster: slot routing, redirects while slots move, and the failover of a master.

The topology-independent suites (idempotency, limits, refunds, webhooks, simulation) run
on the cluster through the `both_topologies` marker; this module covers what only a
cluster has. Tests that move slots or kill nodes get a cluster of their own.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis
from msgspec.structs import replace

from router.config_file import settings_from_toml
from router.payments.numbers import payment_id_of
from router.sandbox.embedded import free_port
from router.settings import RedisSettings, SettingsError
from router.store import codec, keys
from router.store.cluster import ClusterURL, FastCluster, command_key, key_slot
from router.store.link import open_link
from tests.conftest import BankSim, gateway_settings
from tests.helpers import Client, Gateway, eventually, payment_body, start_gateway
from tests.receiver import Receiver, webhook_receiver
from tests.redis_cluster import ClusterNode, LocalCluster, flush_all

# --------------------------------------------------------------------------- pure parts


def test_key_slot_matches_redis(redis_cluster: LocalCluster) -> None:
    node = redis_cluster.nodes[0]
    samples = ["{3}p:pay_03abc", "{12}ob", "merchant:mch_1", "apikey:ab12", "", "{}x",
               "a{}{b}", "{user1000}.following", "x{ab", "q:rail:bank:1.0/2", "{15}due"]
    for key in samples:
        assert key_slot(key) == node.command("CLUSTER", "KEYSLOT", key), key
        assert key_slot(key.encode()) == key_slot(key)


def test_commands_are_routed_by_their_key() -> None:
    assert command_key(("HGETALL", "{1}p:x")) == "{1}p:x"
    assert command_key(("EVALSHA", "sha", 2, "{2}a", "{2}b", "arg")) == "{2}a"
    assert command_key(("EVALSHA", "sha", 0, "arg")) is None
    assert command_key(("XREADGROUP", "GROUP", "g", "c", "COUNT", 5, "STREAMS", "{4}ob",
                        ">")) == "{4}ob"
    assert command_key(("XGROUP", "CREATE", "{5}ob", "g", "0")) == "{5}ob"
    assert command_key(("PING",)) is None


def test_cluster_urls() -> None:
    url = ClusterURL.parse("redis+cluster://app:p%40ss@10.0.0.1:7000, 10.0.0.2:7001")
    assert url.nodes == (("10.0.0.1", 7000), ("10.0.0.2", 7001))
    assert (url.username, url.password) == ("app", "p@ss")
    assert url.node_url("10.0.0.3:7002") == "redis://app:p%40ss@10.0.0.3:7002"
    assert ClusterURL.parse("redis+cluster://[::1]:7000").nodes == (("::1", 7000),)
    for bad in ("redis://h:1", "redis+cluster://h", "redis+cluster://h:x"):
        with pytest.raises(ValueError):
            ClusterURL.parse(bad)


def test_settings_refuse_unusable_redis_urls_without_echoing_secrets() -> None:
    assert RedisSettings(url="redis+cluster://10.0.0.1:7000,10.0.0.2:7000").url
    for bad in ("rediss://:hunter2@h:6379", "redis+cluster://:hunter2@h", "h:6379"):
        with pytest.raises(SettingsError) as caught:
            RedisSettings(url=bad)
        assert "hunter2" not in str(caught.value)
    with pytest.raises(SettingsError, match=r"redis\.shards: Expected integer <= 256, got 257"):
        settings_from_toml({"redis": {"shards": 257}}, Path("."))


@pytest.mark.parametrize("command", [["serve"], ["merchants", "create", "--name", "Shop"]])
def test_the_cli_refuses_a_bad_redis_url_plainly(command: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "router.cli", *command, "--redis-url", "rediss://:hunter2@h:1"],
        capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert "unsupported scheme 'rediss'" in done.stderr
    assert "Traceback" not in done.stderr and "hunter2" not in done.stderr


# --------------------------------------------------------------------------- session cluster


async def test_every_master_serves_a_share_of_the_shards(redis_cluster: LocalCluster) -> None:
    link = open_link(redis_cluster.url)
    assert isinstance(link, FastCluster)
    try:
        await flush_all(redis_cluster.url)
        await asyncio.gather(*(link.call("SET", f"{{{s}}}probe", s)
                               for s in range(RedisSettings().shards)))
        assert len(link.masters()) == 3
        sizes = [node.command("DBSIZE") for node in redis_cluster.master_nodes()]
        assert all(size > 0 for size in sizes), sizes
        assert sum(sizes) == RedisSettings().shards
        await link.ping()
    finally:
        await link.aclose()


async def test_discovery_and_readiness_skip_nodes_that_are_down(
    redis_cluster: LocalCluster,
) -> None:
    nodes = redis_cluster.url.removeprefix("redis+cluster://")
    link = FastCluster(f"redis+cluster://127.0.0.1:{free_port()},{nodes}")
    try:
        await link.ping()
        assert await link.call("SET", "{7}probe", "x") == b"OK"
        assert len(link.masters()) == 3
    finally:
        await link.aclose()


async def test_a_cross_slot_script_is_refused_not_split(redis_cluster: LocalCluster) -> None:
    """The key design keeps each script in one slot; a violation must fail loudly."""
    link = open_link(redis_cluster.url)
    try:
        with pytest.raises(redis.ResponseError, match="CROSSSLOT"):
            await link.call("MSET", "{1}a", "x", "{2}b", "y")
    finally:
        await link.aclose()


# --------------------------------------------------------------------------- scratch cluster


@pytest.fixture
def scratch_cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    """A cluster of this test's own: the test moves slots or kills a master."""
    cluster = LocalCluster(tmp_path / "cluster")
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
async def cluster_gateway(scratch_cluster: LocalCluster, bank_sim: BankSim, tmp_path: Path,
                          http: aiohttp.ClientSession) -> AsyncIterator[Gateway]:
    gw = await start_gateway(gateway_settings(scratch_cluster.url, bank_sim, tmp_path), http)
    yield gw
    await gw.close()


def _slot_of_payment(pid: str) -> int:
    shard = keys.shard_of(pid)
    assert shard is not None
    return key_slot(keys.tag(shard))


def _other_master(cluster: LocalCluster, than: ClusterNode) -> ClusterNode:
    return next(n for n in cluster.master_nodes() if n.port != than.port)


def _open_migration(cluster: LocalCluster, slot: int, source: ClusterNode,
                    target: ClusterNode) -> None:
    target.command("CLUSTER", "SETSLOT", slot, "IMPORTING",
                                    cluster.node_id(source))
    source.command("CLUSTER", "SETSLOT", slot, "MIGRATING",
                                    cluster.node_id(target))


def _move_keys(source: ClusterNode, target: ClusterNode, names: list[bytes]) -> None:
    if names:
        source.command("MIGRATE", "127.0.0.1", target.port, "", 0, 5000,
                                        "KEYS", *names)


def _finish_migration(cluster: LocalCluster, slot: int, source: ClusterNode,
                      target: ClusterNode) -> None:
    _move_keys(source, target, source.command(
        "CLUSTER", "GETKEYSINSLOT", slot, 10_000))
    target_id = cluster.node_id(target)
    for node in (target, source, *cluster.master_nodes()):
        node.command("CLUSTER", "SETSLOT", slot, "NODE", target_id)


async def _paid(client: Client, otn: str) -> dict[str, Any]:
    created = await client.post("/v1/payments", payment_body(otn))
    assert created.status == 201 and created.body["status"] == "succeeded", created.body
    body: dict[str, Any] = created.body
    return body


async def test_moved_slots_are_followed(cluster_gateway: Gateway,
                                        scratch_cluster: LocalCluster) -> None:
    client, _ = await cluster_gateway.merchant()
    first = await _paid(client, "moved-1")
    slot = _slot_of_payment(first["id"])
    source = scratch_cluster.node_of_slot(slot)
    target = _other_master(scratch_cluster, source)

    _open_migration(scratch_cluster, slot, source, target)
    _finish_migration(scratch_cluster, slot, source, target)

    # The gateway still maps the slot to `source`, which now answers MOVED.
    got = await client.get(f"/v1/payments/{first['id']}")
    assert got.status == 200 and got.body["status"] == "succeeded", got.body
    second = await _paid(client, "moved-2")
    refund = await client.post(f"/v1/payments/{second['id']}/refunds",
                               {"amount": 100, "out_refund_no": "r-1"})
    assert refund.status in (200, 201), refund.body
    assert target.command("CLUSTER", "COUNTKEYSINSLOT", slot) > 0
    assert source.command("CLUSTER", "COUNTKEYSINSLOT", slot) == 0


async def test_ask_and_tryagain_during_a_migration(cluster_gateway: Gateway,
                                                   scratch_cluster: LocalCluster) -> None:
    client, _ = await cluster_gateway.merchant()
    paid = await _paid(client, "ask-1")
    open_order = await client.post("/v1/payments", payment_body("ask-2", scene="native"))
    assert open_order.status == 201, open_order.body
    slot = _slot_of_payment(paid["id"])
    source = scratch_cluster.node_of_slot(slot)
    target = _other_master(scratch_cluster, source)
    _open_migration(scratch_cluster, slot, source, target)

    # Only the payment records move: reading one is answered ASK by `source`.
    shard = keys.shard_of(paid["id"])
    assert shard is not None
    _move_keys(source, target, [keys.payment(shard, paid["id"]).encode(),
                                keys.payment(shard, open_order.body["id"]).encode()])
    got = await client.get(f"/v1/payments/{paid['id']}")
    assert got.status == 200 and got.body["status"] == "succeeded", got.body

    # Closing runs a script over the payment (moved) and the shard's sweeper set and
    # outbox (not moved): split keys, so `source` answers ASK and `target` TRYAGAIN
    # until the migration ends.
    tries_before = _tryagain_count(source) + _tryagain_count(target)
    closing = asyncio.create_task(
        client.post(f"/v1/payments/{open_order.body['id']}/close"))

    async def retrying() -> bool:
        return _tryagain_count(source) + _tryagain_count(target) > tries_before

    await eventually(retrying, timeout=5)
    assert not closing.done()
    _finish_migration(scratch_cluster, slot, source, target)
    closed = await closing
    assert closed.status == 200 and closed.body["status"] == "closed", closed.body


def _tryagain_count(node: ClusterNode) -> int:
    stats = node.command("INFO", "errorstats")  # redis-py parses INFO into a dict
    return int(stats.get("errorstat_TRYAGAIN", {}).get("count", 0))


async def test_a_master_killed_under_load_loses_no_acknowledged_payment(
    scratch_cluster: LocalCluster, bank_sim: BankSim, tmp_path: Path,
    http: aiohttp.ClientSession,
) -> None:
    """kill -9 of the master serving a merchant while payments flow. Strict durability
    with one replica: an answer is given only once the replica has the change, so the
    promoted replica has every acknowledged payment. Meanwhile the gateway answers 503,
    the client retries with the same Idempotency-Key, and the map follows the failover.
    The killed node is restarted (as an orchestrator would) and rejoins as a replica, which
    the promoted master needs before it confirms changes again. Every acknowledged
    payment's webhook arrives too."""
    async with webhook_receiver() as receiver:
        await _kill_a_master_under_load(scratch_cluster, bank_sim, tmp_path, http, receiver)


async def _kill_a_master_under_load(
    scratch_cluster: LocalCluster, bank_sim: BankSim, tmp_path: Path,
    http: aiohttp.ClientSession, receiver: Receiver,
) -> None:
    settings = gateway_settings(scratch_cluster.url, bank_sim, tmp_path)
    settings = replace(settings, redis=replace(settings.redis, durability="strict",
                                               wait_replicas=1, wait_timeout_ms=500))
    gateway = await start_gateway(settings, http)
    try:
        client, _ = await gateway.merchant(payer_rate_limit={"rps": 1000, "burst": 1000},
                                           webhook_url=receiver.url())
        acknowledged: dict[str, str] = {}  # out_trade_no -> payment id
        refused: dict[str, int] = {}  # error code -> count, while the master was away
        answers: dict[str, Any] = {}

        async def pay(n: int) -> None:
            otn = f"fo-{n}"
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                reply = await client.post("/v1/payments", payment_body(otn),
                                          headers={"Idempotency-Key": f"k-{otn}"})
                if reply.status in (200, 201):
                    acknowledged[otn] = reply.body["id"]
                    answers[reply.body["id"]] = (reply.status, reply.body["status"],
                                                 reply.headers.get("Idempotent-Replayed"))
                    return
                code = reply.body["error"]["code"]
                assert code in ("store_unavailable", "idempotency_key_in_use"), reply.body
                refused[code] = refused.get(code, 0) + 1
                await asyncio.sleep(0.05)
            raise AssertionError(f"{otn} was never accepted")

        async def revive(victim: ClusterNode, slot: int) -> None:
            def promoted() -> None:
                deadline = time.monotonic() + 30
                while scratch_cluster.node_of_slot(slot).port == victim.port:
                    assert time.monotonic() < deadline, "no replica was promoted"
                    time.sleep(0.1)
            await asyncio.to_thread(promoted)
            victim.start(scratch_cluster.node_timeout_ms, scratch_cluster.appendfsync)
            await asyncio.to_thread(victim.wait_listening)

        revived: list[asyncio.Task[None]] = []
        for n in range(120):
            if n == 30:
                slot = _slot_of_payment(acknowledged["fo-0"])
                victim = scratch_cluster.node_of_slot(slot)
                victim.kill()
                revived.append(asyncio.create_task(revive(victim, slot)))
            await pay(n)
        await revived[0]
        assert refused.get("store_unavailable"), refused  # felt, and answered 503
        await asyncio.to_thread(scratch_cluster.wait_healthy)

        final: dict[str, str] = {}  # payment id -> its settled status

        async def all_settled() -> bool:
            for otn, pid in acknowledged.items():
                got = await client.get(f"/v1/payments/{pid}")
                assert got.status == 200, (otn, got.body)
                assert got.body["out_trade_no"] == otn
                final[pid] = got.body["status"]
            return not {"processing", "requires_action"} & set(final.values())

        await eventually(all_settled, timeout=30)
        ledger = await bank_sim.ledger()
        for order_no, order in ledger["orders"].items():
            kept = order["charged"] - order["refunded"]
            pid = payment_id_of(order_no)
            # The money agrees with the payment; an answer is never taken back.
            assert kept == (1000 if final.get(pid) == "succeeded" else 0), (order_no, order)
            if answers.get(pid, (0, ""))[1] == "succeeded":
                assert final[pid] == "succeeded", (pid, answers[pid])
        for order_no, order in ledger["orders"].items():
            if order["charges"]:
                assert order["charges"] == 1, order_no
                got = await client.get(f"/v1/payments/{payment_id_of(order_no)}")
                assert got.status == 200, (order_no, got.body)  # no charge without record
                assert acknowledged[got.body["out_trade_no"]] == got.body["id"]
        assert len(acknowledged) == 120

        # Every acknowledged payment's webhook of its final state arrives (at least once):
        # its outbox entry was written with the change, and replicated before the answer.
        # (Starved of CPU, a charge can time out; the payer is then reversed, and the
        # payment ends closed: payment.closed is its webhook.)
        announced: set[str] = set()
        seen: list[Any] = []
        while not set(acknowledged.values()) <= announced:
            try:
                delivery = await receiver.next(within=20)
            except AssertionError:
                missing = set(acknowledged.values()) - announced
                got = [(d.event["type"], d.event["data"]["id"]) for d in seen
                       if d.event["data"]["id"] in missing]
                raise AssertionError(
                    f"webhooks missing for {sorted(missing)}: "
                    f"{await _where_events_are(gateway, missing)}; answered "
                    f"{[answers[p] for p in missing]}; received {got}") from None
            seen.append(delivery)
            pid = delivery.event["data"]["id"]
            if delivery.event["type"] == f"payment.{final.get(pid)}":
                announced.add(pid)
    finally:
        await gateway.close()


async def _where_events_are(gateway: Gateway, pids: set[str]) -> dict[str, Any]:
    """For a failure message: what the outbox streams, their pending lists and the retry
    and dead-letter sets hold for these payments."""
    link = gateway.services.store.link
    found: dict[str, Any] = {}
    for shard in {keys.shard_of(pid) or 0 for pid in pids}:
        stream = keys.outbox(shard)
        entries = await link.call("XRANGE", stream, "-", "+")
        bodies = [(entry_id, codec.unpack(dict(zip(f[::2], f[1::2], strict=True))[b"b"]))
                  for entry_id, f in entries]
        found[f"{stream} entries"] = [entry_id for entry_id, body in bodies
                                      if any(pid.encode() in body for pid in pids)]
        found[f"{stream} pending"] = await link.call("XPENDING", stream, "webhooks")
        found[f"{stream} groups"] = await link.call("XINFO", "GROUPS", stream)
        found["payments"] = [await link.call("HMGET", keys.payment(shard, pid), "s", "v", "u")
                             for pid in pids]
        found["retries"] = await link.call("ZRANGE", keys.webhook_retries(shard), 0, -1)
        found["dead"] = await link.call("ZRANGE", keys.dead_letters(shard), 0, -1)
    return found
