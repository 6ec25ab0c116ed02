"""/v1/campaigns: cashback and discount campaigns, made by a merchant (its own payments)
or by the admin (across the merchants it lists)."""

from __future__ import annotations

from aiohttp import web

from router.api.common import authenticate, idempotent, require_admin, respond, scope_of, services
from router.api.schemas import Close, decode
from router.api.schemas_campaigns import CampaignCreate
from router.errors import RouterError
from router.merchants import Merchant

routes = web.RouteTableDef()

# The admin's Idempotency-Keys (campaigns are the admin's only idempotent POSTs).
_ADMIN_SCOPE = (0, "admin")


async def caller(request: web.Request) -> Merchant | None:
    """The merchant calling, or None for the admin (the admin token)."""
    try:
        require_admin(request)
    except RouterError:
        return await authenticate(request)
    return None


def maker_scope(maker: Merchant | None) -> tuple[int, str]:
    return scope_of(maker) if maker is not None else _ADMIN_SCOPE


@routes.post("/v1/campaigns")
async def create_campaign(request: web.Request) -> web.Response:
    svc = services(request)
    maker = await caller(request)
    raw = await request.read()
    body = decode(raw, CampaignCreate)
    return await idempotent(request, maker_scope(maker), raw,
                            lambda: svc.campaigns.desk.create(body, maker))


@routes.get("/v1/campaigns/{id}")
async def get_campaign(request: web.Request) -> web.Response:
    viewer = await caller(request)
    return respond(await services(request).campaigns.desk.get(request.match_info["id"], viewer))


@routes.post("/v1/campaigns/{id}/end")
async def end_campaign(request: web.Request) -> web.Response:
    svc = services(request)
    viewer = await caller(request)
    raw = await request.read()
    decode(raw, Close, empty_ok=True)
    return await idempotent(request, maker_scope(viewer), raw,
                            lambda: svc.campaigns.desk.end(request.match_info["id"], viewer))
