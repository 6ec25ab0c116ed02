"""Operations: liveness, readiness, metrics, the OpenAPI document."""

from __future__ import annotations

from importlib import resources

from aiohttp import web

from router.api.common import json_reply, services
from router.ops.metrics import CONTENT_TYPE
from router.services import METRICS

routes = web.RouteTableDef()


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    return json_reply(200, {"status": "ok"})


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    svc = services(request)
    try:
        await svc.store.ping()
    except Exception:
        return json_reply(503, {"status": "unavailable", "redis": "unreachable",
                                "adapters": svc.rails.names()})
    return json_reply(200, {"status": "ready", "redis": "ok", "adapters": svc.rails.names()})


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    body = request.app[METRICS].render()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


_SPEC = resources.files("router").joinpath("openapi.json")


@routes.get("/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    return web.Response(body=_SPEC.read_bytes(), content_type="application/json")
