"""/v1/payments: create, read, close."""

from __future__ import annotations

from aiohttp import web

from router.api.common import (
    authenticate,
    idempotency_key,
    idempotent,
    json_reply,
    made_by_caller,
    request_hash,
    respond,
    scope_of,
    services,
)
from router.api.schemas import Close, PaymentCreate, decode
from router.domain import Payment
from router.errors import not_found, validation_error
from router.merchants import Merchant
from router.validation import check_currency, payment_request

routes = web.RouteTableDef()


async def payment_of(request: web.Request, merchant: Merchant) -> Payment:
    payment = await services(request).store.payments.load(request.match_info["id"])
    made_by_caller(merchant, payment.merchant_id if payment else None,
                   payment.service_provider if payment else None, "payment")
    assert payment is not None
    return payment


@routes.post("/v1/payments")
async def create_payment(request: web.Request) -> web.Response:
    svc = services(request)
    merchant = await authenticate(request, limit=False)
    raw = await request.read()
    req = payment_request(decode(raw, PaymentCreate))
    check_currency(req.currency, merchant.settlement_currency)
    key = idempotency_key(request)
    rail, routing = svc.router.choose(merchant, req)
    idem = (key, request_hash(request, raw)) if key else None
    reply = await svc.payments.creator.create(merchant, req, rail, routing, idem,
                                              method=svc.router.kind(rail))
    if reply.status == 201:
        svc.metrics.live.payment_created(merchant.id)
    return respond(reply)


@routes.get("/v1/payments")
async def find_payment(request: web.Request) -> web.Response:
    svc = services(request)
    merchant = await authenticate(request)
    otn = request.query.get("out_trade_no")
    if not otn:
        raise validation_error("out_trade_no", "Give out_trade_no to look a payment up.")
    payment = await svc.store.payments.by_out_trade_no(merchant.shard, merchant.scope, otn)
    if payment is None:
        raise not_found("payment")
    return json_reply(200, payment.to_json())


@routes.get("/v1/payments/{id}")
async def get_payment(request: web.Request) -> web.Response:
    merchant = await authenticate(request)
    return json_reply(200, (await payment_of(request, merchant)).to_json())


@routes.post("/v1/payments/{id}/close")
async def close_payment(request: web.Request) -> web.Response:
    svc = services(request)
    merchant = await authenticate(request)
    raw = await request.read()
    decode(raw, Close, empty_ok=True)
    payment = await payment_of(request, merchant)
    return await idempotent(request, scope_of(merchant), raw,
                            lambda: svc.payments.settler.close(payment))
