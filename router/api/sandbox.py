"""/v1/sandbox: drive the simulated payer of a payment's rail (sandbox mode only)."""

from __future__ import annotations

from typing import Any

import aiohttp
from aiohttp import web

from router.api.common import authenticate, idempotent, scope_of, services
from router.api.payments import payment_of
from router.domain import UNSETTLED, Payment
from router.errors import RouterError, invalid_state
from router.payments.replies import Reply
from router.rails.instances import base_rail
from router.services import Services

routes = web.RouteTableDef()


@routes.post(r"/v1/sandbox/payments/{id}/{outcome:pay|fail}")
async def drive(request: web.Request) -> web.Response:
    svc = services(request)
    if not svc.settings.sandbox:
        raise RouterError(404, "not_found", "Sandbox controls are off on this gateway.")
    merchant = await authenticate(request)
    raw = await request.read()
    payment = await payment_of(request, merchant)
    outcome = request.match_info["outcome"]
    return await idempotent(request, scope_of(merchant), raw,
                            lambda: _drive(svc, payment, outcome))


async def _drive(svc: Services, payment: Payment, outcome: str) -> Reply:
    if payment.status not in UNSETTLED:
        raise invalid_state(f"The payment is already {payment.status}.")
    attempt = payment.rail.current
    rail = svc.settings.rail(base_rail(attempt.rail))  # a partner instance: its table's
    if rail is None or not rail.base_url:
        raise invalid_state(f"The {attempt.rail} rail has no simulator to drive.")
    try:
        await _present(svc, rail.base_url, payment.rail.action)
        await _post(svc, f"{rail.base_url}/sim/orders/{attempt.rail_order_no}/{outcome}")
    except aiohttp.ClientError:
        raise RouterError(502, "adapter_error", "The simulator cannot be reached.") from None
    # Learn the outcome now rather than waiting for the notification.
    payment = await svc.payments.settler.check(payment)
    return Reply.json(200, payment.to_json())


async def _present(svc: Services, base_url: str, action: dict[str, Any] | None) -> None:
    """Orders that exist at the rail only once a wallet or browser presents them (an
    Alipay app order string, a wap URL) are presented first, as the payer's app would.
    A simulator without the control (404) has nothing to learn."""
    presented = (action or {}).get("order_string") or (action or {}).get("url")
    if not presented:
        return
    async with svc.session.post(f"{base_url}/sim/present", data=str(presented).encode(),
                                timeout=aiohttp.ClientTimeout(total=10)) as resp:
        if resp.status >= 300 and resp.status != 404:
            raise invalid_state(f"The simulator refused the order: {(await resp.text())[:200]}")


async def _post(svc: Services, url: str) -> None:
    async with svc.session.post(url, timeout=aiohttp.ClientTimeout(total=10)) as resp:
        if resp.status >= 300:
            raise invalid_state(f"The simulator refused: {(await resp.text())[:200]}")
