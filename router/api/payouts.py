"""/v1/payouts: money to a person's wallet or account."""

from __future__ import annotations

from aiohttp import web

from router.api.common import authenticate, idempotent, json_reply, owned, scope_of, services
from router.api.schemas import decode
from router.api.schemas_social import PayoutCreate
from router.promotions.policies import Action

routes = web.RouteTableDef()


@routes.post("/v1/payouts")
async def create_payout(request: web.Request) -> web.Response:
    svc = services(request)
    merchant = await authenticate(request)
    raw = await request.read()
    body = decode(raw, PayoutCreate)
    create = svc.promotions.policies.guard(
        merchant, Action.PAYOUT_CREATE, lambda: svc.social.payout_desk.create(merchant, body))
    return await idempotent(request, scope_of(merchant), raw, create)


@routes.get("/v1/payouts/{id}")
async def get_payout(request: web.Request) -> web.Response:
    svc = services(request)
    merchant = await authenticate(request)
    payout = await svc.store.payouts.load(request.match_info["id"])
    owned(merchant, payout.order.merchant_id if payout else None, "payout")
    assert payout is not None
    return json_reply(200, payout.to_json())
