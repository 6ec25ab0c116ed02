"""What a page opened by a wallet's app (or a plain browser) starts, and how it answers.

The opening app is recognised from its User-Agent (`?wallet=` overrides, for the chooser
page). In WeChat the payment is JSAPI when the page has the payer's `openid` (the
merchant's WeChat sign-in puts it in the query), else a QR the payer long-presses; in
Alipay it is the mobile-web (wap) payment, or JSAPI with a `buyer_id`. Any other browser
gets a page to choose. Answers are JSON for `Accept: application/json`, else small HTML.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any, final

import orjson
from aiohttp import web

from adapters.base import ActionType, Scene
from router.domain import Payment
from router.errors import RouterError
from router.routing.wallet import WALLET_RAILS, wallet_of_user_agent
from router.services import Services


@final
@dataclass(frozen=True, slots=True)
class Plan:
    wallet: str
    kind: str  # the adapter to use
    scene: Scene
    payer: dict[str, str]


def plan_for(request: web.Request) -> Plan | None:
    """The payment this opening should start, or None for "let the payer choose"."""
    wallet = request.query.get("wallet") or wallet_of_user_agent(
        request.headers.get("User-Agent", ""))
    if wallet == "wechat":
        openid = request.query.get("openid")
        if openid:
            return Plan(wallet, WALLET_RAILS[wallet], Scene.JSAPI, {"openid": openid})
        return Plan(wallet, WALLET_RAILS[wallet], Scene.NATIVE, {"wallet": wallet})
    if wallet == "alipay":
        buyer_id = request.query.get("buyer_id")
        if buyer_id:
            return Plan(wallet, WALLET_RAILS[wallet], Scene.JSAPI, {"buyer_id": buyer_id})
        return Plan(wallet, WALLET_RAILS[wallet], Scene.H5, {"wallet": wallet})
    return None


def wants_json(request: web.Request) -> bool:
    return "application/json" in request.headers.get("Accept", "")


def answer(request: web.Request, status: int, payment: dict[str, Any]) -> web.StreamResponse:
    """The started (or found) payment: JSON, or a page that does what its action says."""
    if wants_json(request):
        return web.Response(status=status, body=orjson.dumps(payment),
                            content_type="application/json")
    action = payment.get("action") or {}
    if action.get("type") == ActionType.REDIRECT:
        return web.Response(status=302, headers={"Location": str(action["url"])})
    if payment.get("status") in ("succeeded", "partially_refunded", "refunded"):
        return page(200, "Paid", "This order is paid. Thank you.")
    if action.get("type") == ActionType.QR_CODE:
        code = html.escape(str(action["qr_code"]))
        return page(status, "Scan to pay",
                    f"<p>Long-press or scan to pay {_money(payment)}:</p>"
                    f"<p><a href=\"{code}\"><code>{code}</code></a></p>")
    params = html.escape(orjson.dumps(action).decode())
    return page(status, "Pay", f"<p>Paying {_money(payment)} in the app…</p>"
                f"<script type=\"application/json\" id=\"payment\">{params}</script>")


def chooser(request: web.Request, title: str) -> web.StreamResponse:
    """A browser that is neither wallet: let the payer pick one."""
    base = html.escape(request.path)
    extra = "".join(f"&{html.escape(k)}={html.escape(v)}" for k, v in request.query.items()
                    if k not in ("wallet",))
    body = (f"<p>Pay with:</p><ul><li><a href=\"{base}?wallet=wechat{extra}\">WeChat Pay</a>"
            f"</li><li><a href=\"{base}?wallet=alipay{extra}\">Alipay</a></li></ul>")
    if wants_json(request):
        return web.json_response({"object": "wallet_choice", "wallets": ["wechat", "alipay"]},
                                 status=200)
    return page(200, title, body)


def error_page(request: web.Request, status: int, code: str, message: str) -> web.Response:
    if wants_json(request):
        return web.Response(status=status, content_type="application/json",
                            body=orjson.dumps({"error": {"code": code, "message": message}}))
    return page(status, "Cannot pay", f"<p>{html.escape(message)}</p>")


def page(status: int, title: str, body: str) -> web.Response:
    return web.Response(status=status, content_type="text/html", text=(
        "<!doctype html><html><head><meta charset=\"utf-8\"><meta name=\"viewport\" "
        f"content=\"width=device-width\"><title>{html.escape(title)}</title></head>"
        f"<body><h1>{html.escape(title)}</h1>{body}</body></html>"))


def _money(payment: dict[str, Any]) -> str:
    amount = int(payment.get("amount", 0))
    return f"{amount // 100}.{amount % 100:02d} {html.escape(str(payment.get('currency', '')))}"


async def hand_over(request: web.Request, svc: Services, payment: Payment, rail: str,
                    plan: Plan, via: str) -> web.StreamResponse:
    """Continue `payment` in the opener's wallet (payments/handover.py) and show it as it
    then stands."""
    try:
        reply = await svc.payments.handover.hand_over(payment, rail, plan.scene, plan.payer,
                                                      via)
    except RouterError as err:
        return error_page(request, err.http_status, err.code, err.message)
    handed = await svc.store.payments.load(payment.id)
    assert handed is not None
    return answer(request, reply.status if reply.status >= 400 else 200, handed.to_json())
