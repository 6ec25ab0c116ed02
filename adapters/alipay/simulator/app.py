"""The Alipay simulator as an aiohttp application: `gateway.do`, the wallet or browser that
opens presented orders (`/sim/present`) and the `/sim/*` controls."""

from __future__ import annotations

from urllib.parse import urlsplit

from aiohttp import web

from adapters.alipay import protocol
from adapters.alipay.protocol import AlipayCredentials, Code, FormError, Method
from adapters.alipay.simulator.answers import ERROR_KEY, Answer, failure
from adapters.alipay.simulator.ledger import PRESENTED
from adapters.alipay.simulator.runtime import Runtime
from adapters.simkit.controls import control_routes
from adapters.simkit.runtime import SimulatorOptions, install

SIM_KEY: web.AppKey[Runtime] = web.AppKey("alipay_simulator", Runtime)


async def _request_params(request: web.Request) -> dict[str, str]:
    """Query and form body merged, as the Java SDK splits them (raises `FormError`)."""
    query = protocol.decode_form(request.rel_url.raw_query_string)
    body: dict[str, str] = {}
    if request.method == "POST":
        raw = await request.read()
        if raw:
            body = protocol.decode_form(raw)
    return protocol.merge_params([query.items(), body.items()])


async def _gateway(request: web.Request) -> web.StreamResponse:
    sim = request.app[SIM_KEY]
    sim.bills.origin = str(request.url.origin())  # bill links point where the merchant is
    try:
        params = await _request_params(request)
    except FormError as exc:
        answer = failure(Code.INVALID_PARAMETER, "isv.invalid-parameter", str(exc), key=ERROR_KEY)
        return sim.respond("", answer)
    return await sim.serve(request, params)


async def _sim_present(request: web.Request) -> web.Response:
    """Open an app order string or a wap/page URL as the wallet or browser would."""
    sim = request.app[SIM_KEY]
    text = (await request.text()).strip()
    if text.startswith(("http://", "https://")):
        text = urlsplit(text).query
    try:
        params = protocol.decode_form(text)
    except FormError as exc:
        return web.json_response({"code": "INVALID_REQUEST", "message": str(exc)}, status=400)
    if params.get("method") not in (*PRESENTED, Method.AUTH_APP_FREEZE):
        message = "body must be an app/wap/page order string"
        return web.json_response({"code": "INVALID_REQUEST", "message": message}, status=400)
    checked = sim.check(params)
    if isinstance(checked, Answer):
        return sim.respond(params["method"], checked)
    method, biz = checked
    return sim.respond(method, sim.apply(method, biz, params))


def create_app(
    credentials: AlipayCredentials,
    options: SimulatorOptions = SimulatorOptions(),  # noqa: B008 (a frozen dataclass)
) -> web.Application:
    """The simulator; `credentials` must come from `load_or_create_bundle` (or
    `load_simulator_bundle`): it signs with the bundle's `alipay_private_key.pem`."""
    app = web.Application()
    sim = Runtime(credentials, options)
    install(app, SIM_KEY, sim)
    ledger = sim.ledger
    app.add_routes(
        [
            web.get(protocol.GATEWAY_PATH, _gateway),
            web.post(protocol.GATEWAY_PATH, _gateway),
            web.post("/sim/present", _sim_present),
            sim.payees.route(),
            *sim.ledger.rates.routes(),
            *sim.bills.routes(sim),
            *sim.fund_auths.routes(),
            *control_routes(
                sim,
                pays=lambda r: ledger.payer_pays(r.match_info["no"]),
                fails=lambda r: ledger.payer_fails(r.match_info["no"]),
                ledger=lambda: {**ledger.snapshot(), "payouts": sim.transfers.snapshot(),
                                "splits": sim.royalties.snapshot(),
                                "authorizations": sim.fund_auths.snapshot()},
            ),
        ]
    )
    return app
