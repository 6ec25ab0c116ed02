"""One code for every wallet (an aggregated code).

`POST /v1/checkout_codes` makes a `static` code (a shop's counter code: the payer enters
the amount) or an `order` code (a fixed amount for one order). Its URL, printed as a QR,
is opened by whichever app scanned it: `GET /c/{code}` starts the payment on that
wallet's rail in the scene that app supports (see pages.py), or lets a plain browser
choose. An order code makes exactly one payment: its `out_trade_no` is the order's, so a
second opening in the same wallet finds the same payment, and one from another wallet or
payer takes the unpaid payment over (payments/handover.py: the first wallet's order is
closed at its rail, confirmed, before the new one starts). A payment already being paid
(the payer confirming) gets a clear 409; a paid one is shown as paid.
"""

from __future__ import annotations

import html
from typing import Any

import orjson
from aiohttp import web

from adapters.base import Scene
from router.api.common import authenticate, idempotent, json_reply, scope_of, services
from router.api.schemas import CheckoutCodeCreate, PaymentCreate, decode
from router.domain import Status, iso
from router.errors import RouterError, not_found, validation_error
from router.interop.pages import (
    Plan,
    answer,
    chooser,
    error_page,
    hand_over,
    page,
    plan_for,
    wants_json,
)
from router.merchants import Merchant
from router.payments.replies import Reply
from router.payments.settle import scene_now
from router.promotions.policies import Action
from router.security import random_token
from router.services import Services
from router.store import keys
from router.validation import MAX_AMOUNT, PaymentRequest, payment_request

routes = web.RouteTableDef()


@routes.post("/v1/checkout_codes")
async def create_code(request: web.Request) -> web.Response:
    svc = services(request)
    merchant = await authenticate(request)
    raw = await request.read()
    code = _checked(decode(raw, CheckoutCodeCreate))

    async def make() -> Reply:
        cid = keys.new_id(svc.clock, "cc", merchant.shard)
        stored = {**code, "merchant": merchant.id, "created_ms": svc.clock.now_ms()}
        await svc.store.interop.put_code(merchant.shard, cid, orjson.dumps(stored))
        return Reply.json(201, _public(svc.settings.server.base_url(), cid, stored))

    guarded = svc.promotions.policies.guard(merchant, Action.CHECKOUT_CODE_CREATE, make)
    return await idempotent(request, scope_of(merchant), raw, guarded)


@routes.get("/v1/checkout_codes/{code}")
async def get_code(request: web.Request) -> web.Response:
    svc = services(request)
    merchant = await authenticate(request)
    cid = request.match_info["code"]
    stored = await _load(request, cid)
    if stored is None or stored["merchant"] != merchant.id:
        raise not_found("checkout code")
    return json_reply(200, _public(svc.settings.server.base_url(), cid, stored))


@routes.get("/c/{code}")
async def open_code(request: web.Request) -> web.StreamResponse:
    svc = services(request)
    cid = request.match_info["code"]
    stored = await _load(request, cid)
    merchant = await svc.merchants.get(stored["merchant"]) if stored else None
    if stored is None or merchant is None:
        return error_page(request, 404, "not_found", "This code is unknown.")
    plan = plan_for(request)
    if plan is None:
        return chooser(request, stored.get("description") or "Pay")
    amount = stored.get("amount") or _entered_amount(request)
    if amount is None:
        return _amount_form(request, plan.wallet)
    rail = svc.router.rail_for(merchant, plan.kind, plan.scene)
    if rail is None:
        return error_page(request, 409, "wallet_unavailable",
                          f"This code cannot be paid with {plan.wallet} here.")
    otn = stored.get("out_trade_no") or f"{cid}-{random_token(12)}"
    req = PaymentRequest(
        amount=amount, currency=stored["currency"], out_trade_no=otn,
        description=stored.get("description", ""), scene=plan.scene, method=plan.kind,
        payer=plan.payer, notify_url=stored.get("notify_url"),
        metadata={**stored.get("metadata", {}), "checkout_code": cid},
    )
    routing = {"chosen": rail, "candidates": [rail],
               "reason": f"checkout code opened in {plan.wallet}"}
    try:
        reply = await svc.payments.creator.create(merchant, req, rail, routing, None,
                                                  method=plan.kind)
    except RouterError as err:
        if err.code == "out_trade_no_used":  # the order, opened elsewhere before
            return await _take_over(request, svc, merchant, otn, rail, plan)
        return error_page(request, err.http_status, err.code, err.message)
    return answer(request, reply.status, orjson.loads(reply.body))


async def _take_over(request: web.Request, svc: Services, merchant: Merchant, otn: str,
                     rail: str, plan: Plan) -> web.StreamResponse:
    """The order's payment was started by another wallet or payer: continue it here
    while it is unpaid, show it once it is settled."""
    payment = await svc.store.payments.by_out_trade_no(merchant.shard, merchant.id, otn)
    if payment is None:
        return error_page(request, 409, "already_being_paid",
                          "This order is already being paid elsewhere.")
    current = payment.rail.current
    same_opener = (current.rail == rail and scene_now(payment) == plan.scene
                   and (current.payer or payment.payer) == plan.payer)
    if same_opener or payment.status not in (Status.REQUIRES_ACTION, Status.PROCESSING):
        return answer(request, 200, payment.to_json())
    if payment.status is Status.PROCESSING:
        return error_page(request, 409, "already_being_paid",
                          "This order is being paid right now by someone else or in "
                          "another wallet.")
    return await hand_over(request, svc, payment, rail, plan, "checkout_code")


# --------------------------------------------------------------------------- helpers
def _checked(body: CheckoutCodeCreate) -> dict[str, Any]:
    """The code as stored; its payment fields checked as a payment's would be."""
    if body.type == "static":
        for field in ("amount", "out_trade_no"):
            if getattr(body, field) is not None:
                raise validation_error(field, f"A static code has no {field}: the payer "
                                       "enters the amount and each payment gets its own.")
    elif body.amount is None or body.out_trade_no is None:
        field = "amount" if body.amount is None else "out_trade_no"
        raise validation_error(field, f"An order code needs its {field}.")
    req = payment_request(PaymentCreate(
        amount=body.amount or 1, currency=body.currency, out_trade_no=body.out_trade_no or "x",
        scene=Scene.NATIVE, description=body.description, notify_url=body.notify_url,
        metadata=body.metadata))
    code: dict[str, Any] = {"type": body.type, "currency": req.currency,
                            "description": req.description, "metadata": req.metadata}
    if req.notify_url:
        code["notify_url"] = req.notify_url
    if body.type == "order":
        code["amount"], code["out_trade_no"] = req.amount, req.out_trade_no
    return code


async def _load(request: web.Request, cid: str) -> dict[str, Any] | None:
    if not cid.startswith("cc_"):
        return None
    raw = await services(request).store.interop.code(cid)
    loaded: dict[str, Any] | None = orjson.loads(raw) if raw else None
    return loaded


def _public(base_url: str, cid: str, stored: dict[str, Any]) -> dict[str, Any]:
    body = {"id": cid, "object": "checkout_code", "url": f"{base_url}/c/{cid}",
            **{k: v for k, v in stored.items() if k not in ("merchant", "created_ms")},
            "created_at": iso(stored["created_ms"])}
    return body


def _entered_amount(request: web.Request) -> int | None:
    raw = request.query.get("amount", "")
    if not raw.isdigit() or not 0 < int(raw) <= MAX_AMOUNT:
        return None
    return int(raw)


def _amount_form(request: web.Request, wallet: str) -> web.StreamResponse:
    if wants_json(request):
        return error_page(request, 422, "validation_error",
                          "Give the amount to pay in minor units: ?amount=...")
    params = {"wallet": wallet, **{k: v for k, v in request.query.items()
                                   if k not in ("amount", "wallet")}}
    hidden = "".join(f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
                     for k, v in params.items())
    return page(200, "Enter the amount", f'<form method="get">{hidden}'
                '<input name="amount" inputmode="numeric" placeholder="amount in fen">'
                '<button>Pay</button></form>')

