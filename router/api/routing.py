"""/v1/routing/health: what the routing engine knows of each rail right now."""

from __future__ import annotations

from aiohttp import web

from router.api.common import bearer, json_reply, require_admin, services
from router.errors import unauthorized

routes = web.RouteTableDef()


@routes.get("/v1/routing/health")
async def routing_health(request: web.Request) -> web.Response:
    """Per rail, over the breaker's window and across all gateway processes: success
    rate, calls, latency p50/p99, breaker state and share of traffic. For the admin and
    for merchants alike (it says nothing about any one merchant)."""
    svc = services(request)
    token = bearer(request)
    if token is None:
        raise unauthorized()
    if await svc.merchants.authenticate(token) is None:
        require_admin(request)
    views = {rail: svc.health.view(rail) for rail in svc.health.rails}
    total = sum(v.calls for v in views.values())
    return json_reply(200, {
        "object": "routing_health",
        "window_s": svc.settings.routing.breaker.window_s,
        "rails": {
            rail: {
                "breaker": view.state,
                "success_rate": view.success_rate,
                "calls": view.calls,
                "failed": view.failed,
                "latency_ms": {"p50": view.p50_ms, "p99": view.p99_ms},
                "traffic_share": round(view.calls / total, 4) if total else None,
            }
            for rail, view in views.items()
        },
    })
