"""/v1/points: the merchant's points, its ledger, and redemptions."""

from __future__ import annotations

from aiohttp import web

from router.api.common import (
    authenticate,
    idempotency_key,
    idempotent,
    json_reply,
    scope_of,
    services,
)
from router.api.schemas import decode
from router.api.schemas_promotions import RedemptionCreate
from router.errors import validation_error

routes = web.RouteTableDef()

_MAX_LIMIT = 100


@routes.get("/v1/points")
async def get_points(request: web.Request) -> web.Response:
    svc = services(request)
    merchant = await authenticate(request)
    return json_reply(200, await svc.promotions.points.view(merchant, _limit(request)))


@routes.post("/v1/points/redemptions")
async def redeem(request: web.Request) -> web.Response:
    svc = services(request)
    merchant = await authenticate(request)
    raw = await request.read()
    body = decode(raw, RedemptionCreate)
    key = idempotency_key(request)
    return await idempotent(request, scope_of(merchant), raw,
                            lambda: svc.promotions.points.redeem(merchant, body.points,
                                                                 body.reward, key))


def _limit(request: web.Request) -> int:
    raw = request.query.get("limit", "20")
    limit = int(raw) if raw.isascii() and raw.isdigit() else 0
    if not 1 <= limit <= _MAX_LIMIT:
        raise validation_error("limit", f"limit must be an integer from 1 to {_MAX_LIMIT}.")
    return limit
