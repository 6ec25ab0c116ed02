"""Pay-for-me links: a payer sends a link; whoever opens it pays the same payment in
their own wallet.

`POST /v1/payments/{id}/share_link` makes a link that expires. The first person to open
it claims the payment (a cookie lets the same browser come back); anyone else gets a
clear 409. Opening it hands the payment over (payments/handover.py): the requester's open
order is closed at its rail first, then the payment continues as a new attempt in the
opener's wallet, marked `via: "share_link"` — so the requester's webhooks say who paid.
"""

from __future__ import annotations

import secrets

from aiohttp import web

from router.api.common import authenticate, idempotent, scope_of, services
from router.api.payments import payment_of
from router.api.schemas import ShareLinkCreate, decode
from router.domain import Status, iso
from router.errors import invalid_state
from router.interop.pages import answer, chooser, error_page, hand_over, plan_for
from router.payments.replies import Reply
from router.promotions.policies import Action
from router.services import Services
from router.store import keys

routes = web.RouteTableDef()

_COOKIE = "payrouter_link_claim"
_CLAIM_TTL_S = 86400


@routes.post("/v1/payments/{id}/share_link")
async def create_link(request: web.Request) -> web.Response:
    svc = services(request)
    merchant = await authenticate(request)
    raw = await request.read()
    ttl = decode(raw, ShareLinkCreate, empty_ok=True).expires_in_s
    payment = await payment_of(request, merchant)

    async def make() -> Reply:
        if payment.status is not Status.REQUIRES_ACTION:
            raise invalid_state(f"Only an unpaid payment waiting for its payer can be "
                                f"shared; this one is {payment.status}.")
        lid = keys.new_id(svc.clock, "shl", merchant.shard)
        await svc.store.interop.put_link(merchant.shard, lid, payment.id, ttl)
        return Reply.json(201, {
            "id": lid, "object": "share_link", "payment_id": payment.id,
            "url": f"{svc.settings.server.base_url()}/s/{lid}",
            "expires_at": iso(svc.clock.now_ms() + ttl * 1000),
        })

    guarded = svc.promotions.policies.guard(merchant, Action.SHARE_LINK_CREATE, make)
    return await idempotent(request, scope_of(merchant), raw, guarded)


@routes.get("/s/{link}")
async def open_link(request: web.Request) -> web.StreamResponse:
    svc = services(request)
    lid = request.match_info["link"]
    pid = await svc.store.interop.link_payment(lid)
    payment = await svc.store.payments.load(pid) if pid else None
    if payment is None:
        return error_page(request, 404, "link_expired", "This link has expired or is unknown.")
    token = await _claim(svc, request, payment.id)
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
    return _with_cookie(await hand_over(request, svc, payment, rail, plan, "share_link"),
                        lid, token)


async def _claim(svc: Services, request: web.Request, pid: str) -> str | None:
    """The opener's claim on the payment: a new one for the first opener, the same one
    for the browser that holds it, None for anyone else."""
    token = secrets.token_urlsafe(16)
    held = await svc.store.interop.claim_payment(pid, token, _CLAIM_TTL_S)
    if held == token:
        return token
    mine = request.cookies.get(_COOKIE)
    return mine if mine is not None and mine == held else None


def _with_cookie(response: web.StreamResponse, lid: str, token: str) -> web.StreamResponse:
    response.set_cookie(_COOKIE, token, path=f"/s/{lid}", httponly=True, samesite="Lax",
                        max_age=_CLAIM_TTL_S)
    return response

