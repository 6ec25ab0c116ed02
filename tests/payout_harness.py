"""Payouts driven the way the router drives them: the rail's adapter inside the real
`RailClient`, against the rail's simulator serving on loopback (the `Sim` fixtures)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from adapters.base import Adapter, AdapterConfig, Operation, Payout, RailError, RailResult
from router.ops.metrics import Metrics
from router.rails.client import RailClient
from router.routing.health import HealthBook
from router.settings import BreakerSettings
from tests.conftest import Sim

# Below the simulators' hang time: a withheld answer becomes RAIL_TIMEOUT quickly.
RAIL_TIMEOUT = 0.5


def payout_no() -> str:
    # 24 of [0-9a-z]: a valid rail-side number on every rail.
    return "po" + uuid.uuid4().hex[:22]


@dataclass
class PayoutRail:
    sim: Sim
    adapter: Adapter
    client: RailClient

    @classmethod
    def on(cls, sim: Sim, create_adapter: Callable[[AdapterConfig], Adapter]) -> PayoutRail:
        """The rail's adapter, built by its entry-point factory from the simulator's bundle."""
        adapter = create_adapter(
            AdapterConfig(name=sim.rail, base_url=sim.base_url, keys_dir=sim.keys_dir))
        client = RailClient(sim.session, {sim.rail: adapter}, {sim.rail: RAIL_TIMEOUT},
                            Metrics(), HealthBook([sim.rail], BreakerSettings()))
        return cls(sim, adapter, client)

    async def call(self, op: Operation) -> RailResult:
        return await self.client.call(self.sim.rail, op)

    async def outcome(self, op: Operation) -> RailResult | RailError:
        try:
            return await self.call(op)
        except RailError as exc:
            return exc

    async def name_payee(self, identity: str, name: str) -> None:
        async with self.sim.session.post(f"{self.sim.base_url}/sim/payees",
                                         json={"id": identity, "name": name}) as resp:
            assert resp.status == 200, await resp.text()

    async def payouts(self) -> dict[str, Any]:
        """The `payouts` part of the simulator's ledger."""
        ledger = await self.sim.ledger()
        rows: dict[str, Any] = ledger["payouts"]
        return rows


def payout(payee: str, *, amount: int = 1234, currency: str = "CNY", name: str | None = None,
           no: str | None = None, notify_url: str = "http://127.0.0.1:9/unused") -> Payout:
    return Payout(rail_payout_no=no or payout_no(), amount=amount, currency=currency,
                  payee=payee, remark="payout test", notify_url=notify_url, name=name)
