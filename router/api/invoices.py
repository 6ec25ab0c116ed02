"""E-invoices: /v1/payments/{id}/invoice, /v1/invoices/{id}."""

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
from router.api.schemas_invoices import InvoiceCreate

routes = web.RouteTableDef()


@routes.post("/v1/payments/{id}/invoice")
async def create_invoice(request: web.Request) -> web.Response:
    svc = services(request)
    merchant = await authenticate(request)
    raw = await request.read()
    body = decode(raw, InvoiceCreate)
    payment = await payment_of(request, merchant)
    return await idempotent(request, scope_of(merchant), raw,
                            lambda: svc.invoices.desk.create(payment, body))


@routes.get("/v1/invoices/{id}")
async def get_invoice(request: web.Request) -> web.Response:
    svc = services(request)
    merchant = await authenticate(request)
    invoice = await svc.store.invoices.load(request.match_info["id"])
    made_by_caller(merchant, invoice.order.merchant_id if invoice else None,
                   invoice.order.provider if invoice else None, "invoice")
    assert invoice is not None
    return json_reply(200, invoice.to_json())
