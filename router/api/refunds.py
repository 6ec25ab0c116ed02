"""Refunds of a payment."""

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
from router.api.schemas import RefundCreate, decode
from router.rails.instances import provider_of
from router.validation import refund_request

routes = web.RouteTableDef()


@routes.post("/v1/payments/{id}/refunds")
async def create_refund(request: web.Request) -> web.Response:
    svc = services(request)
    merchant = await authenticate(request)
    raw = await request.read()
    req = refund_request(decode(raw, RefundCreate))
    payment = await payment_of(request, merchant)
    return await idempotent(request, scope_of(merchant), raw,
                            lambda: svc.payments.refunds.create(payment, req))


@routes.get("/v1/payments/{id}/refunds")
async def list_refunds(request: web.Request) -> web.Response:
    svc = services(request)
    merchant = await authenticate(request)
    payment = await payment_of(request, merchant)
    refunds = await svc.store.refunds.of_payment(payment.id)
    return json_reply(200, {"object": "list", "data": [r.to_json() for r in refunds]})


@routes.get("/v1/refunds/{id}")
async def get_refund(request: web.Request) -> web.Response:
    svc = services(request)
    merchant = await authenticate(request)
    refund = await svc.store.refunds.load(request.match_info["id"])
    made_by_caller(merchant, refund.merchant_id if refund else None,
                   provider_of(refund.rail) if refund else None, "refund")
    assert refund is not None
    return json_reply(200, refund.to_json())
