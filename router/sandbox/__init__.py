"""Sandbox mode: the simulators of the built-in rails, a demo merchant, an admin token.

Used by `payrouter serve` with no configuration. Simulators run in the gateway's own
process on loopback ports, each with a credential bundle under the data directory
(written on first start, reused after), exactly as `payrouter sim <rail> --keys-dir`
would run them.
"""

from __future__ import annotations

import importlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web
from msgspec.structs import replace

from adapters.simkit.runtime import SimulatorOptions
from router.merchants import MerchantDirectory
from router.sandbox.embedded import free_port
from router.security import Secret, random_token
from router.settings import RailSettings, Settings

# Built-in rails with a simulator: `adapters.<rail>.protocol.load_or_create_bundle` and
# `adapters.<rail>.simulator.app.create_app(credentials, SimulatorOptions(...))` each.
SIMULATED_RAILS = ("bank", "wechatpay", "alipay")


@dataclass(frozen=True, slots=True)
class DemoMerchant:
    id: str
    api_key: str
    webhook_secret: str


DEMO_FILE = "demo_merchant.json"


def simulator_app(rail: str, keys_dir: Path, time_scale: float = 1.0) -> web.Application:
    """The simulator of a built-in rail, with its credential bundle in `keys_dir`
    (written on first use)."""
    if rail not in SIMULATED_RAILS:
        raise ValueError(f"no simulator for rail {rail!r}")
    protocol = importlib.import_module(f"adapters.{rail}.protocol")
    simulator = importlib.import_module(f"adapters.{rail}.simulator.app")
    credentials = protocol.load_or_create_bundle(keys_dir)
    app: web.Application = simulator.create_app(
        credentials, SimulatorOptions(time_scale=time_scale))
    return app


async def start_simulators(settings: Settings) -> tuple[Settings, list[web.AppRunner]]:
    """Start every built-in simulator on loopback and point the settings' rails at them."""
    runners: list[web.AppRunner] = []
    rails = [r for r in settings.rails if r.name not in SIMULATED_RAILS and r.name != "instant"]
    for rail in SIMULATED_RAILS:
        keys_dir = settings.data_dir / "sandbox-keys" / rail
        runner = web.AppRunner(simulator_app(rail, keys_dir), access_log=None,
                                handler_cancellation=True)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        runners.append(runner)
        rails.append(RailSettings(name=rail, base_url=f"http://127.0.0.1:{port}",
                                  keys_dir=keys_dir, timeout_s=10.0))
    rails.append(RailSettings(name="instant"))
    return replace(settings, rails=tuple(rails), sandbox=True), runners


def admin_token(settings: Settings) -> Settings:
    """The configured admin token, or one generated once and kept in the data directory."""
    if settings.admin_token is not None:
        return settings
    path = settings.data_dir / "admin_token"
    if path.exists():
        token = path.read_text().strip()
    else:
        token = "adm_" + random_token(32)
        _write_private(path, token + "\n")
    return replace(settings, admin_token=Secret(token))


async def demo_merchant(settings: Settings, merchants: MerchantDirectory) -> DemoMerchant:
    """The sandbox's demo merchant: created once, its key kept in the data directory
    (a convenience of sandbox mode only; real keys are shown once and stored hashed)."""
    path = settings.data_dir / DEMO_FILE
    if path.exists():
        demo = DemoMerchant(**json.loads(path.read_text()))
        if await merchants.get(demo.id) is not None:
            return demo
    merchant, api_key = await merchants.create("Demo shop")
    demo = DemoMerchant(merchant.id, api_key, merchant.webhook_secret.reveal())
    _write_private(path, json.dumps({"id": demo.id, "api_key": demo.api_key,
                                     "webhook_secret": demo.webhook_secret}) + "\n")
    return demo


def _write_private(path: Path, content: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(content)
