"""The WeChat Pay simulator as an aiohttp application: the signed v3 API (direct and
partner; transfer bills direct only) and the `/sim/*` controls."""

from __future__ import annotations

from aiohttp import web

from adapters.simkit.controls import control_routes
from adapters.simkit.runtime import SimulatorOptions, install
from adapters.simkit.signed_api import ApiOp
from adapters.wechatpay.protocol import WeChatPayCredentials
from adapters.wechatpay.simulator import (
    crossborder,
    fapiao,
    payscore,
    profit_sharing,
    trade_bills,
)
from adapters.wechatpay.simulator.records import KINDS
from adapters.wechatpay.simulator.runtime import Runtime

SIM_KEY: web.AppKey[Runtime] = web.AppKey("wechatpay_simulator", Runtime)
TRANSFER_BILLS = "/v3/fund-app/mch-transfer/transfer-bills"


def _no(request: web.Request) -> str:
    return request.match_info["no"]


def _order_routes(sim: Runtime, prefix: str, partner: bool) -> list[web.RouteDef]:
    ledger = sim.ledger

    def create(kind: str) -> ApiOp:
        return lambda _r, b: ledger.create(kind, partner, b)

    routes = [web.post(f"{prefix}/{kind}", sim.api(create(kind), has_body=True)) for kind in KINDS]
    by_no = f"{prefix}/out-trade-no/{{no}}"
    routes += [
        web.get(
            by_no,
            sim.api(lambda r, _b: ledger.query(partner, _no(r), r.query), has_body=False),
        ),
        web.get(
            f"{prefix}/id/{{no}}",
            sim.api(lambda r, _b: ledger.query_by_id(partner, _no(r), r.query), has_body=False),
        ),
        web.post(
            f"{by_no}/close",
            sim.api(lambda r, b: ledger.close(partner, _no(r), b), has_body=True),
        ),
        web.post(
            f"{by_no}/reverse",
            sim.api(lambda r, b: ledger.reverse(partner, _no(r), b), has_body=True),
        ),
    ]
    return routes


def _transfer_bill_routes(sim: Runtime) -> list[web.RouteDef]:
    bills = sim.payouts
    by_no = f"{TRANSFER_BILLS}/out-bill-no/{{no}}"
    return [
        web.post(TRANSFER_BILLS, sim.api(lambda r, b: bills.create(r.headers, b), has_body=True)),
        web.get(by_no, sim.api(lambda r, _b: bills.query(_no(r)), has_body=False)),
        web.post(f"{by_no}/cancel", sim.api(lambda r, _b: bills.cancel(_no(r)), has_body=False)),
        web.get(
            f"{TRANSFER_BILLS}/transfer-bill-no/{{no}}",
            sim.api(lambda r, _b: bills.query_by_bill_no(_no(r)), has_body=False),
        ),
        bills.payees.route(),
    ]


def create_app(
    credentials: WeChatPayCredentials,
    options: SimulatorOptions = SimulatorOptions(),  # noqa: B008 (a frozen dataclass)
    *,
    userpaying_as_202: bool = False,  # codepay "payer confirming": 202 {"code"} or 200 Transaction
) -> web.Application:
    """The simulator as an aiohttp application; `credentials` must hold the platform key."""
    app = web.Application()
    sim = Runtime(credentials, options, userpaying_as_202=userpaying_as_202)
    install(app, SIM_KEY, sim)
    ledger, refunds, bills = sim.ledger, sim.refunds, sim.payouts
    app.add_routes(_order_routes(sim, "/v3/pay/transactions", partner=False))
    app.add_routes(_order_routes(sim, "/v3/pay/partner/transactions", partner=True))
    app.add_routes(_transfer_bill_routes(sim))
    app.add_routes(profit_sharing.routes(sim, sim.splits))
    app.add_routes(payscore.routes(sim, sim.payscore))
    app.add_routes(crossborder.routes(sim, ledger, sim.crossborder))
    app.add_routes(fapiao.routes(sim, sim.fapiao))
    app.add_routes(trade_bills.routes(sim, sim.trade_bills))
    app.add_routes(
        [
            web.post(
                "/v3/refund/domestic/refunds",
                sim.api(lambda _r, b: refunds.refund(b), has_body=True),
            ),
            web.get(
                "/v3/refund/domestic/refunds/{no}",
                sim.api(lambda r, _b: refunds.get_refund(_no(r), r.query), has_body=False),
            ),
            *control_routes(
                sim,
                pays=lambda r: ledger.payer_pays(_no(r), r.query.get("sub_mchid")),
                fails=lambda r: ledger.payer_fails(_no(r), r.query.get("sub_mchid")),
                ledger=lambda: {**ledger.snapshot(), "payouts": bills.snapshot(),
                                "splits": sim.splits.snapshot(),
                                "authorizations": sim.payscore.snapshot(),
                                "invoices": sim.fapiao.snapshot()},
            ),
        ]
    )
    return app
