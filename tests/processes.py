"""Gateways as real child processes, for tests that kill them (kill -9) and restart them."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp

from tests.helpers import ADMIN_TOKEN


class GatewayProcess:
    """`payrouter serve --config FILE` in a child process."""

    def __init__(self, config: Path, port: int, log: Path) -> None:
        self.config = config
        self.port = port
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None
        self.base = f"http://127.0.0.1:{port}"

    async def start(self, session: aiohttp.ClientSession, timeout: float = 20.0) -> None:
        env = {**os.environ, "PAYROUTER_ADMIN_TOKEN": ADMIN_TOKEN}
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "router.cli", "serve", "--config", str(self.config),
                 "--port", str(self.port)],
                stdout=out, stderr=subprocess.STDOUT, env=env,
            )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gateway exited: {self.log.read_text()[-2000:]}")
            try:
                async with session.get(f"{self.base}/readyz") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)  # a child's readiness has no event to await
        raise RuntimeError("gateway did not become ready")

    def kill(self) -> None:
        """SIGKILL: no cleanup, no goodbye, as a crash."""
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
            self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None


def write_config(path: Path, *, redis_url: str, bank_url: str, bank_keys: Path,
                 data_dir: Path) -> Path:
    path.write_text(f"""
data_dir = "{data_dir}"

[redis]
url = "{redis_url}"

[idempotency]
lease_s = 1.5

[sweeper]
interval_s = 0.05
first_check_s = 0.5
query_every_s = 0.25
confirm_window_s = 3.0
unknown_window_s = 3.0
never_seen_s = 5.0
lease_s = 1.0

[rails.bank]
base_url = "{bank_url}"
keys_dir = "{bank_keys}"
timeout_s = 10.0

[rails.instant]
""")
    return path
