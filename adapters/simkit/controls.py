"""The `/sim/*` controls every simulator serves beside its rail's API (SANDBOX.md): the
simulated payer, the fault settings and the ledger. They are never faulted nor signed."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web

from adapters.simkit.faults import Faults
from adapters.simkit.replies import Reply
from adapters.simkit.runtime import SimRuntime

# The simulated payer acts on the order named in the path (`{no}`).
PayerAction = Callable[[web.Request], Reply]


def control_routes(
    sim: SimRuntime,
    *,
    pays: PayerAction,
    fails: PayerAction,
    ledger: Callable[[], Mapping[str, object]],
) -> list[web.RouteDef]:
    async def set_faults(request: web.Request) -> web.Response:
        try:
            sim.faults = Faults.from_json(json.loads(await request.read() or b"{}"))
        except ValueError as exc:
            return web.json_response({"code": "INVALID_REQUEST", "message": str(exc)}, status=400)
        return web.json_response(sim.faults.to_json())

    async def get_faults(_request: web.Request) -> web.Response:
        return web.json_response(sim.faults.to_json())

    async def get_ledger(_request: web.Request) -> web.Response:
        return web.json_response(ledger())

    return [
        web.post("/sim/orders/{no}/pay", _payer(pays)),
        web.post("/sim/orders/{no}/fail", _payer(fails)),
        web.post("/sim/faults", set_faults),
        web.get("/sim/faults", get_faults),
        web.get("/sim/ledger", get_ledger),
    ]


def _payer(action: PayerAction) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(request: web.Request) -> web.Response:
        reply = action(request)
        return web.json_response(dict(reply.payload or {}), status=reply.status)

    return handler
