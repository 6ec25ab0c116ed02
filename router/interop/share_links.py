"""Pay-for-me links: a payer sends a link; whoever opens it pays the same payment in
their own wallet.

`POST /v1/payments/{id}/share_link` makes a link that expires. The first person to open
it claims the payment (a cookie lets the same browser come back); anyone else gets a
clear 409. Opening it hands the payment over (Engine.hand_over): the requester's open
order is closed at its rail first, then the payment continues as a new attempt in the
opener's wallet, marked `via: "share_link"` — so the requester's webhooks say who paid.
"""

from __future__ import annotations

import secrets
import time

from aiohttp import web

from router.api.common import authenticate, idempotent, scope_of, services
from router.api.payments import payment_of
from router.domain import Status, iso
from router.errors import RouterError, invalid_state, validation_error
from router.interop.pages import answer, chooser, error_page, plan_for
from router.replies import Reply
from router.services import Services
from router.store import keys
from router.validation import parse_json_object

routes = web.RouteTableDef()

DEFAULT_TTL_S = 1800
_COOKIE = "payrouter_link_claim"


@routes.post("/v1/payments/{id}/share_link")
async def create_link(request: web.Request) -> web.Response:
    svc = services(request)
    merchant = await authenticate(request)
    raw = await request.read()
    body = parse_json_object(raw) if raw.strip() else {}
    ttl = body.get("expires_in_s", DEFAULT_TTL_S)
    if not isinstance(ttl, int) or isinstance(ttl, bool) or not 60 <= ttl <= 86400:
        raise validation_error("expires_in_s", "expires_in_s must be 60-86400 seconds.")
    if set(body) - {"expires_in_s"}:
        raise validation_error(sorted(set(body) - {"expires_in_s"})[0], "Unknown field.")
    payment = await payment_of(request, merchant)

    async def make() -> Reply:
        if payment.status is not Status.REQUIRES_ACTION:
            raise invalid_state(f"Only an unpaid payment waiting for its payer can be "
                                f"shared; this one is {payment.status}.")
        shard = merchant.shard
        lid = keys.new_id("shl", shard)
        await svc.store.link.call("HSET", keys.share_link(shard, lid), "p", payment.id)
        await svc.store.link.call("EXPIRE", keys.share_link(shard, lid), ttl)
        return Reply.json(201, {
            "id": lid, "object": "share_link", "payment_id": payment.id,
            "url": f"{svc.settings.server.base_url()}/s/{lid}",
            "expires_at": iso(int((time.time() + ttl) * 1000)),
        })

    return await idempotent(request, scope_of(merchant), raw, make)


@routes.get("/s/{link}")
async def open_link(request: web.Request) -> web.StreamResponse:
    svc = services(request)
    lid = request.match_info["link"]
    shard = keys.shard_of(lid)
    pid = None
    if shard is not None:
        pid = await svc.store.link.call("HGET", keys.share_link(shard, lid), "p")
    if pid is None:
        return error_page(request, 404, "link_expired", "This link has expired or is unknown.")
    payment = await svc.store.load_payment(bytes(pid).decode())
    if payment is None:
        return error_page(request, 404, "link_expired", "This link has expired or is unknown.")
    assert shard is not None
    token = await _claim(svc, request, shard, payment.id)
    if token is None:
        return error_page(request, 409, "already_claimed",
                          "Someone else is already paying this order.")
    if (payment.status is not Status.REQUIRES_ACTION
            or payment.rail.current.via == "share_link"):
        # Settled, or already handed to this opener: show where it stands.
        return _with_cookie(answer(request, 200, payment.to_json()), lid, token)
    plan = plan_for(request)
    if plan is None:
        return chooser(request, "Pay for a friend")
    merchant = await svc.merchants.get(payment.merchant_id)
    rail = svc.router.rail_for(merchant, plan.kind, plan.scene) if merchant else None
    if rail is None:
        return error_page(request, 409, "wallet_unavailable",
                          f"This order cannot be paid with {plan.wallet} here.")
    try:
        reply = await svc.engine.hand_over(payment, rail, plan.scene, plan.payer, "share_link")
    except RouterError as err:
        return error_page(request, err.http_status, err.code, err.message)
    handed = await svc.store.load_payment(payment.id)
    assert handed is not None
    status = reply.status if reply.status >= 400 else 200
    return _with_cookie(answer(request, status, handed.to_json()), lid, token)


async def _claim(svc: Services, request: web.Request, shard: int, pid: str) -> str | None:
    """The opener's claim on the payment: a new one for the first opener, the same one
    for the browser that holds it, None for anyone else."""
    key = keys.share_claim(shard, pid)
    token = secrets.token_urlsafe(16)
    if await svc.store.link.call("SET", key, token, "NX", "EX", 86400):
        return token
    held = await svc.store.link.call("GET", key)
    mine = request.cookies.get(_COOKIE)
    return mine if held is not None and mine == bytes(held).decode() else None


def _with_cookie(response: web.StreamResponse, lid: str, token: str) -> web.StreamResponse:
    response.set_cookie(_COOKIE, token, path=f"/s/{lid}", httponly=True, samesite="Lax",
                        max_age=86400)
    return response

