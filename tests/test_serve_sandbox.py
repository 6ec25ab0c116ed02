"""`payrouter serve` with no configuration: embedded Redis, the bank simulator, a demo
merchant; payments survive a restart because the embedded Redis keeps an AOF."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp

from router.sandbox.embedded import free_port
from tests.helpers import Client, eventually, payment_body


async def _serve(data_dir: Path, port: int, log: Path,
                 http: aiohttp.ClientSession) -> tuple[subprocess.Popen[bytes], str]:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL",
                                                              "PAYROUTER_ADMIN_TOKEN")}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "router.cli", "serve", "--port", str(port),
             "--data-dir", str(data_dir)],
            stdout=out, stderr=subprocess.STDOUT, env=env, cwd=data_dir.parent,
        )
    found: dict[str, str] = {}

    async def banner() -> bool:
        assert proc.poll() is None, log.read_text()
        match = re.search(r"API key: (sk_\w+)", log.read_text())
        if match:
            found["key"] = match.group(1)
        return bool(match)

    await eventually(banner, timeout=30)
    return proc, found["key"]


def _stop(proc: subprocess.Popen[bytes]) -> int:
    proc.send_signal(signal.SIGINT)
    return proc.wait(20)


async def test_sandbox_serve_keeps_payments_across_restart(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    data_dir = tmp_path / "data"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc, key = await _serve(data_dir, port, tmp_path / "first.log", http)
    try:
        assert f"dashboard:      {base}/dashboard" in (tmp_path / "first.log").read_text()
        async with http.get(f"{base}/dashboard") as login_form:
            assert login_form.status == 200 and 'id="login"' in await login_form.text()
        client = Client(http, base, key)
        created = await client.post("/v1/payments", payment_body("restart-1"))
        assert created.status == 201 and created.body["status"] == "succeeded"
        native = await client.post("/v1/payments",
                                   payment_body("restart-2", scene="native", method="bank"))
        assert native.body["status"] == "requires_action"
        paid = await client.post(f"/v1/sandbox/payments/{native.body['id']}/pay")
        assert paid.status == 200 and paid.body["status"] == "succeeded"
    finally:
        assert _stop(proc) == 0
    log = (tmp_path / "first.log").read_text()
    assert "Traceback" not in log, log

    proc, key_again = await _serve(data_dir, port, tmp_path / "second.log", http)
    try:
        assert key_again == key  # the same demo merchant
        client = Client(http, base, key)
        again = await client.get(f"/v1/payments/{created.body['id']}")
        assert again.status == 200
        assert again.body == created.body
        found = await client.get("/v1/payments?out_trade_no=restart-2")
        assert found.body["status"] == "succeeded"
    finally:
        assert _stop(proc) == 0
    assert "Traceback" not in (tmp_path / "second.log").read_text()


async def test_embedded_redis_stops_with_the_gateway(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    data_dir = tmp_path / "data"
    proc, _ = await _serve(data_dir, free_port(), tmp_path / "serve.log", http)
    sock = data_dir / "redis" / "redis.sock"
    assert sock.exists()
    assert _stop(proc) == 0
    # redis-server removes its socket on a clean shutdown.
    await eventually(lambda: asyncio.sleep(0, result=not sock.exists()), timeout=10)
