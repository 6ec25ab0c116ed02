"""Profit sharing: /v1/payments/{id}/splits, /v1/splits/{id}."""

from __future__ import annotations

from aiohttp import web

from router.api.common import (
    authenticate,
    idempotent,
    json_reply,
    made_by_caller,
    scope_of,
    services,
)
from router.api.payments import payment_of
from router.api.schemas import decode
from router.api.schemas_partners import SplitCreate

routes = web.RouteTableDef()


@routes.post("/v1/payments/{id}/splits")
async def create_split(request: web.Request) -> web.Response:
    svc = services(request)
    merchant = await authenticate(request)
    raw = await request.read()
    body = decode(raw, SplitCreate)
    payment = await payment_of(request, merchant)
    return await idempotent(request, scope_of(merchant), raw,
                            lambda: svc.partners.splits.create(payment, body))


@routes.get("/v1/payments/{id}/splits")
async def list_splits(request: web.Request) -> web.Response:
    svc = services(request)
    merchant = await authenticate(request)
    payment = await payment_of(request, merchant)
    splits = await svc.store.splits.of_payment(payment.id)
    return json_reply(200, {"object": "list", "data": [s.to_json() for s in splits]})


@routes.get("/v1/splits/{id}")
async def get_split(request: web.Request) -> web.Response:
    svc = services(request)
    merchant = await authenticate(request)
    split = await svc.store.splits.load(request.match_info["id"])
    made_by_caller(merchant, split.order.merchant_id if split else None,
                   split.order.provider if split else None, "split")
    assert split is not None
    return json_reply(200, split.to_json())
