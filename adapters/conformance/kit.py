"""What a rail provides to the conformance suite: its `RailKit`, and the suite's errors."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, final

import aiohttp
from aiohttp import web

from adapters.base import Adapter, AdapterConfig, RailResult, RailStatus

# Capability -> why a check that needs it is skipped on a kit without it.
CAPABILITIES: Final[Mapping[str, str]] = {
    "simulator": "no simulator: in-process results only (no ledger, payer controls or faults)",
    "actions": "in-process rail: wallet scenes settle at once, no payer action is asked for",
    "timed_codes": "payer codes 5/6/9 (confirming, never confirms, answer withheld) "
    "are not modelled",
    "stateful": "stateless rail: it cannot tell which orders, refunds or payouts exist",
    "reverse": "the rail offers no reverse",
    "refunds": "the rail offers no refunds",
    "notifications": "the rail sends no notifications",
    "payouts": "the rail offers no payouts",
    "payout_notifications": "the rail sends no payout notifications: payouts settle by query",
    "splits": "the rail offers no profit sharing (splits of a paid order)",
    "authorizations": "the rail offers no pre-authorisation (hold, capture, release)",
    "invoices": "the rail issues no e-invoices (fapiao)",
    "bills": "the rail offers no daily bill to download",
    "cross_border": "the rail takes no payment priced in a foreign currency",
}


class ConformanceError(AssertionError):
    """An adapter broke the contract of `adapters.base`."""


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise ConformanceError(message)


# --------------------------------------------------------------------------- kits
ConfirmAuthorization = Callable[[aiohttp.ClientSession, str, str, RailResult], Awaitable[None]]


async def confirm_at_sim(session: aiohttp.ClientSession, sim_url: str, rail_auth_no: str,
                         result: RailResult) -> None:
    """The simulated payer confirms a waiting hold: `POST /sim/authorizations/{no}/confirm`
    (SANDBOX.md), by the rail-side number the router gave it."""
    path = f"/sim/authorizations/{rail_auth_no}/confirm"
    async with session.post(sim_url + path) as resp:
        text = await resp.text()
        expect(resp.status == 200, f"simulator control {path}: HTTP {resp.status} {text}")


@final
@dataclass(frozen=True)
class EnvSettings:
    time_scale: float = 0.05
    hang_seconds: float = 3.0
    rail_timeout: float = 1.0  # RailClient's timeout for the rail: below hang_seconds
    wait_timeout: float = 5.0  # upper bound for waiting on a notification or a settle


@final
@dataclass(frozen=True)
class SimSpec:
    """How to run a rail's simulator."""

    # Writes (when absent) and loads the credential bundle: slow for RSA, share it.
    create_bundle: Callable[[Path], object]
    # (bundle, settings) -> the simulator's aiohttp application.
    create_app: Callable[[object, EnvSettings], web.Application]
    # Waits until every notification delivery of the app is done.
    settled: Callable[[web.Application], Awaitable[None]]


@final
@dataclass(frozen=True)
class RailKit:
    """Everything the suite needs to know about one rail."""

    name: str
    # AdapterConfig -> Adapter (the rail's entry-point factory).
    create_adapter: Callable[[AdapterConfig], Adapter]
    capabilities: frozenset[str]
    sim: SimSpec | None = None
    # Payer fields each scene needs (payer codes are added by the checks).
    scene_payers: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    # Scenes whose orders exist at the rail only once the payer's app or browser opens
    # them; `present` does that with the charge's action.
    presented_scenes: frozenset[str] = frozenset()
    present: Callable[[aiohttp.ClientSession, str, RailResult], Awaitable[None]] | None = None
    # A wallet scene whose open order a Query sees (REQUIRES_ACTION) before it is paid.
    waiting_scene: str = "native"
    # Every order status of the rail (as the simulator's ledger names it) ->
    # the RailStatus a Query must give for it (from the adapter's README).
    status_table: Mapping[str, RailStatus] = field(default_factory=dict)
    # Rail statuses the simulator never produces, with why.
    unreachable_statuses: Mapping[str, str] = field(default_factory=dict)
    # A fresh payee identity of the rail (openid, user id, account) ending in the given
    # character, which decides a payout's outcome (SANDBOX.md: "1" paid, "2" frozen, "9"
    # paid but the answer lost). None: the kit cannot name payees.
    payee: Callable[[str], str] | None = None
    # Profit sharing: an account of each receiver kind ("merchant", "user") a paid order
    # can be shared with, and the rail's cap on the splits of one order (1/10000).
    split_accounts: Mapping[str, str] = field(default_factory=dict)
    split_max_ratio: int = 3000
    # Pre-authorisation: a payer of high (score 700) or low (500) credit (SANDBOX.md), the
    # scene a hold is made in, the `min_score` asked for, and how the simulated payer
    # confirms a waiting hold: (session, simulator URL, rail_auth_no, Authorize result).
    credit_payer: Callable[[bool], Mapping[str, str]] | None = None
    authorization_scene: str = "app"
    credit_min_score: int = 550
    confirm_authorization: ConfirmAuthorization = confirm_at_sim
    # Cross-border: the adapter options that price in foreign currencies (WeChat Pay:
    # {"global": True}; none when the rail's own adapter does), and the scene paid at once
    # (a payer code) a foreign-priced charge is made in.
    cross_border_options: Mapping[str, object] = field(default_factory=dict)
    cross_border_scene: str = "quickpay"

    def has(self, capability: str) -> bool:
        return capability in self.capabilities

    def payer(self, scene: str, **extra: str) -> dict[str, str]:
        return {**self.scene_payers.get(scene, {}), **extra}
