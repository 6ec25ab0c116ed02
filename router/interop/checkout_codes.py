"""One code for every wallet (an aggregated code).

`POST /v1/checkout_codes` makes a `static` code (a shop's counter code: the payer enters
the amount) or an `order` code (a fixed amount for one order). Its URL, printed as a QR,
is opened by whichever app scanned it: `GET /c/{code}` starts the payment on that
wallet's rail in the scene that app supports (see pages.py), or lets a plain browser
choose. An order code makes exactly one payment: its `out_trade_no` is the order's, so a
second opening in the same wallet finds the same payment and one from another wallet or
payer gets a clear 409.
"""

from __future__ import annotations

import html
import time
from typing import Any

import orjson
from aiohttp import web

from router.api.common import authenticate, idempotent, json_reply, scope_of, services
from router.domain import iso
from router.errors import RouterError, not_found, validation_error
from router.interop.pages import answer, chooser, error_page, page, plan_for, wants_json
from router.replies import Reply
from router.security import random_token
from router.store import keys
from router.validation import MAX_AMOUNT, PaymentRequest, parse_json_object, payment_request

routes = web.RouteTableDef()

_FIELDS = frozenset({"type", "amount", "currency", "description", "out_trade_no",
                     "notify_url", "metadata"})


@routes.post("/v1/checkout_codes")
async def create_code(request: web.Request) -> web.Response:
    svc = services(request)
    merchant = await authenticate(request)
    raw = await request.read()
    code = _checked(parse_json_object(raw))

    async def make() -> Reply:
        cid = keys.new_id("cc", merchant.shard)
        stored = {**code, "merchant": merchant.id, "created_ms": int(time.time() * 1000)}
        await svc.store.link.call("SET", keys.checkout_code(merchant.shard, cid),
                                  orjson.dumps(stored))
        return Reply.json(201, _public(svc.settings.server.base_url(), cid, stored))

    return await idempotent(request, scope_of(merchant), raw, make)


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
        reply = await svc.engine.create(merchant, req, rail, routing, None, method=plan.kind)
    except RouterError as err:
        if err.code == "out_trade_no_used":
            return error_page(request, 409, "already_being_paid",
                              "This order is already being paid by someone else or in "
                              "another wallet.")
        return error_page(request, err.http_status, err.code, err.message)
    return answer(request, reply.status, orjson.loads(reply.body))


# --------------------------------------------------------------------------- helpers
def _checked(body: dict[str, Any]) -> dict[str, Any]:
    unknown = set(body) - _FIELDS
    if unknown:
        raise validation_error(sorted(unknown)[0], f"Unknown field {sorted(unknown)[0]!r}.")
    kind = body.get("type")
    if kind not in ("static", "order"):
        raise validation_error("type", "type must be \"static\" or \"order\".")
    if kind == "static":
        for field in ("amount", "out_trade_no"):
            if field in body:
                raise validation_error(field, f"A static code has no {field}: the payer "
                                       "enters the amount and each payment gets its own.")
        body = {**body, "amount": 1, "out_trade_no": "x"}  # to validate the rest alike
    payment_fields = {k: v for k, v in body.items() if k != "type"}
    req = payment_request({**payment_fields, "scene": "native"})
    code: dict[str, Any] = {"type": kind, "currency": req.currency,
                            "description": req.description, "metadata": req.metadata}
    if req.notify_url:
        code["notify_url"] = req.notify_url
    if kind == "order":
        code["amount"], code["out_trade_no"] = req.amount, req.out_trade_no
    return code


async def _load(request: web.Request, cid: str) -> dict[str, Any] | None:
    shard = keys.shard_of(cid)
    if shard is None or not cid.startswith("cc_"):
        return None
    raw = await services(request).store.link.call("GET", keys.checkout_code(shard, cid))
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

