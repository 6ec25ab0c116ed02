"""Coupons: issued from a coupon campaign to one user (by the campaign's maker), and
read by the merchants whose payments may use them."""

from __future__ import annotations

from aiohttp import web

from router.api.campaigns import caller, maker_scope
from router.api.common import idempotent, respond, services
from router.api.schemas import decode
from router.api.schemas_campaigns import CouponIssue

routes = web.RouteTableDef()


@routes.post("/v1/campaigns/{id}/coupons")
async def issue_coupon(request: web.Request) -> web.Response:
    svc = services(request)
    maker = await caller(request)
    raw = await request.read()
    body = decode(raw, CouponIssue)
    campaign_id = request.match_info["id"]
    return await idempotent(request, maker_scope(maker), raw,
                            lambda: svc.campaigns.coupons.issue(campaign_id, body, maker))


@routes.get("/v1/coupons/{id}")
async def get_coupon(request: web.Request) -> web.Response:
    viewer = await caller(request)
    return respond(await services(request).campaigns.coupons.get(request.match_info["id"],
                                                                   viewer))
