"""The system under test, started on 127.0.0.1 for a benchmark and stopped after it.

`run_guarded` gives a benchmark a temporary directory, a `Children` and an
`EmbeddedRedis`, and cleans all of them up however the run ends (normally, by a
`BenchError`, Ctrl-C or SIGTERM); the logs are kept after a failure. `start_stack` starts
the hello-world, Redis, the bank simulator, a merchant and the gateway, and waits until
each is ready; `start_naive_peer` adds the reference gateway on the same Redis.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import orjson

from loadtest.procs import (
    HOST,
    BenchError,
    Child,
    Children,
    group_pids,
    http_json,
    on_sigterm,
    uninterruptible,
    wait_ready,
)
from loadtest.redis_cluster import LocalCluster
from router.sandbox.embedded import EmbeddedRedis, free_port

HIGH_LIMIT = 1_000_000_000  # rate limits nobody reaches
NAIVE_PEER = "naive-peer"  # the peer's child process and its measurement
NAIVE_PEER_DB = 1  # the gateway uses database 0: the peer's keys must not mix with the gateway's
# Gateway configuration: merchant and payer limits out of the way of a load test.
UNLIMITED_TOML = f"""
[limits.merchant]
rps = {HIGH_LIMIT}
burst = {HIGH_LIMIT}

[limits.payer]
rps = {HIGH_LIMIT}
burst = {HIGH_LIMIT}
"""
# Variables the gateway reads on top of its configuration: a REDIS_URL left in the
# caller's environment must not point the benchmark at a real Redis.
_SCRUBBED_ENV = ("REDIS_URL", "PAYROUTER_DATA_DIR", "PAYROUTER_ADMIN_TOKEN",
                 "PAYROUTER_KEY_PEPPER")


@dataclass
class Workspace:
    tmp: Path
    children: Children
    redis: EmbeddedRedis
    env: dict[str, str]


def run_guarded(prog: str, body: Callable[[Workspace], int]) -> int:
    """Run `body` with a fresh workspace; stop everything it started on the way out."""
    signal.signal(signal.SIGTERM, on_sigterm)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with it ignored
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED_ENV}
    tmp = Path(tempfile.mkdtemp(prefix="prbench-"))  # short: the Redis socket lives here
    (tmp / "logs").mkdir()
    work = Workspace(tmp, Children(tmp / "logs", env), EmbeddedRedis(tmp / "redis"), env)
    keep_logs = False
    try:
        return body(work)
    except BenchError as exc:
        print(f"{prog}: {exc}\n(logs kept in {tmp / 'logs'})", file=sys.stderr)
        keep_logs = True
        return 1
    except KeyboardInterrupt:
        print(f"{prog}: interrupted, stopping everything", file=sys.stderr)
        return 130
    finally:
        with uninterruptible():
            work.children.stop_all()
            work.redis.stop()
            if not keep_logs:
                shutil.rmtree(tmp, ignore_errors=True)


@dataclass
class Stack:
    hello: Child
    hello_url: str  # POST / answers {"ok":true}
    gateway: Child
    gateway_url: str
    sim_url: str
    redis_url: str
    api_key: str
    watched: dict[str, list[int]]  # the gateway's, Redis's and the simulator's pids


def start_stack(work: Workspace, workers: int = 1, cluster: LocalCluster | None = None
                ) -> Stack:
    """Hello-world, Redis (or the given cluster, which this starts), bank simulator, a
    merchant, the gateway: started and ready."""
    py = sys.executable
    children, tmp = work.children, work.tmp
    port = free_port()
    hello = children.start("hello", [py, "-m", "loadtest.hello", "--port", str(port)])
    if cluster is None:
        redis_url = work.redis.start()
        assert work.redis.process is not None
        redis_pids = [work.redis.process.pid]
    else:
        cluster.start()
        redis_url = cluster.url
        redis_pids = [n.process.pid for n in cluster.nodes if n.process is not None]
    keys_dir = tmp / "bank-keys"
    sim_port = free_port()
    sim = children.start("bank-sim", [py, "-m", "router.cli", "sim", "bank", "--port",
                                      str(sim_port), "--keys-dir", str(keys_dir)])
    sim_url = f"http://{HOST}:{sim_port}"
    wait_ready(sim, f"{sim_url}/sim/faults")
    api_key = create_merchant(redis_url, work.env)
    gw_port = free_port()
    config = gateway_config(tmp, gw_port, redis_url, sim_url, keys_dir)
    gateway = children.start("gateway", [py, "-m", "router.cli", "serve", "--config",
                                         str(config), "--workers", str(workers)])
    gw_url = f"http://{HOST}:{gw_port}"
    wait_ready(hello, f"http://{HOST}:{port}/healthz")
    wait_ready(gateway, f"{gw_url}/healthz")
    wait_ready(gateway, f"{gw_url}/readyz")
    watched = {"gateway": group_pids(gateway.proc.pid), "redis": redis_pids,
               "bank-sim": [sim.proc.pid]}
    return Stack(hello, f"http://{HOST}:{port}/", gateway, gw_url, sim_url, redis_url,
                 api_key, watched)


@dataclass
class NaivePeer:
    url: str  # POST /v1/payments creates a payment
    api_key: str
    watched: dict[str, list[int]]  # the peer's (as "gateway") and Redis's pids


def start_naive_peer(work: Workspace, stack: Stack) -> NaivePeer:
    """`loadtest.naive_peer` on the stack's single Redis, in a database of its own."""
    port = free_port()
    api_key = secrets.token_urlsafe(24)  # fresh per run: it lives as long as the peer
    peer = work.children.start(NAIVE_PEER, [
        sys.executable, "-m", "loadtest.naive_peer", "--port", str(port),
        "--redis-url", redis_url_with_db(stack.redis_url, NAIVE_PEER_DB), "--api-key", api_key,
    ])
    url = f"http://{HOST}:{port}"
    wait_ready(peer, f"{url}/healthz")
    return NaivePeer(url, api_key, {"gateway": [peer.proc.pid], "redis": stack.watched["redis"]})


@dataclass(frozen=True, slots=True)
class CreateRun:
    """One closed-loop create measurement: the server, and the rail named in the body."""

    target: str
    method: str
    url: str
    watched: dict[str, list[int]]
    api_key: str


def create_runs(stack: Stack, peer: NaivePeer | None) -> list[CreateRun]:
    """instant, the naive peer (if any), bank. The peer gets instant's body right after
    it: runs close in time see the same background load, so their ratio is less noisy."""
    payments = f"{stack.gateway_url}/v1/payments"
    runs = [CreateRun("instant", "instant", payments, stack.watched, stack.api_key)]
    if peer is not None:
        runs.append(CreateRun(NAIVE_PEER, "instant", f"{peer.url}/v1/payments",
                              peer.watched, peer.api_key))
    runs.append(CreateRun("bank", "bank", payments, stack.watched, stack.api_key))
    return runs


def redis_url_with_db(url: str, db: int) -> str:
    """The same server, database `db` (unix socket URLs carry it as `?db=`)."""
    parts = urlsplit(url)
    if parts.scheme == "unix":  # urlunsplit would drop the "//" of an empty host
        return f"{url.partition('?')[0]}?db={db}"
    return urlunsplit(parts._replace(path=f"/{db}"))


def bank_ledger(sim_url: str) -> dict[str, int]:
    """The bank simulator's ledger totals (`charges`, `orders`, ...)."""
    totals: dict[str, int] = http_json("GET", f"{sim_url}/sim/ledger", timeout=30.0)["totals"]
    return totals


def gateway_config(tmp: Path, port: int, redis_url: str, bank_url: str,
                   keys_dir: Path) -> Path:
    path = tmp / "gateway.toml"
    path.write_text(f"""\
data_dir = {orjson.dumps(str(tmp / "data")).decode()}

[server]
host = "{HOST}"
port = {port}

[redis]
url = {orjson.dumps(redis_url).decode()}

{UNLIMITED_TOML}
[rails.instant]

[rails.bank]
base_url = "{bank_url}"
keys_dir = {orjson.dumps(str(keys_dir)).decode()}
timeout_s = 10.0
""")
    return path


def create_merchant(redis_url: str, env: Mapping[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "router.cli", "merchants", "create", "--name", "bench",
         "--redis-url", redis_url],
        capture_output=True, text=True, timeout=60, check=False, env=dict(env),
    )
    for line in done.stdout.splitlines():
        name, _, value = line.partition(" ")
        if name == "api_key" and value:
            return value.strip()
    raise BenchError(f"payrouter merchants create failed ({done.returncode}): "
                     f"{done.stderr.strip()[-500:]}")
