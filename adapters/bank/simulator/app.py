"""The bank simulator as an aiohttp application: the signed API and the `/sim/*` controls."""

from __future__ import annotations

from aiohttp import web

from adapters.bank.protocol import BankCredentials
from adapters.bank.simulator.bills import BankBills
from adapters.bank.simulator.runtime import Runtime
from adapters.simkit.controls import control_routes
from adapters.simkit.runtime import SimulatorOptions, install

SIM_KEY: web.AppKey[Runtime] = web.AppKey("bank_simulator", Runtime)


def _no(request: web.Request) -> str:
    return request.match_info["no"]


def create_app(
    credentials: BankCredentials,
    options: SimulatorOptions = SimulatorOptions(),  # noqa: B008 (a frozen dataclass)
) -> web.Application:
    app = web.Application()
    sim = Runtime(credentials, options)
    install(app, SIM_KEY, sim)
    ledger, transfers = sim.ledger, sim.transfers
    app.add_routes(
        [
            web.post("/v1/charges", sim.api(lambda _r, b: ledger.charge(b), has_body=True)),
            web.post("/v1/qr-orders", sim.api(lambda _r, b: ledger.qr_order(b), has_body=True)),
            web.get(
                "/v1/orders/{no}",
                sim.api(lambda r, _b: ledger.get_order(_no(r)), has_body=False),
            ),
            web.post(
                "/v1/orders/{no}/reverse",
                sim.api(lambda r, _b: ledger.reverse(_no(r)), has_body=False),
            ),
            web.post(
                "/v1/orders/{no}/close",
                sim.api(lambda r, _b: ledger.close(_no(r)), has_body=False),
            ),
            web.post("/v1/refunds", sim.api(lambda _r, b: ledger.refund(b), has_body=True)),
            web.get(
                "/v1/refunds/{no}",
                sim.api(lambda r, _b: ledger.get_refund(_no(r)), has_body=False),
            ),
            web.post(
                "/v1/credit-transfers",
                sim.api(lambda _r, b: transfers.create(b), has_body=True),
            ),
            web.get(
                "/v1/credit-transfers/{no}",
                sim.api(lambda r, _b: transfers.get(_no(r)), has_body=False),
            ),
            sim.payees.route(),
            *BankBills(ledger).routes(sim),
            *control_routes(
                sim,
                pays=lambda r: ledger.payer_pays(_no(r)),
                fails=lambda r: ledger.payer_fails(_no(r)),
                ledger=lambda: {**ledger.snapshot(), "payouts": transfers.snapshot()},
            ),
        ]
    )
    return app
