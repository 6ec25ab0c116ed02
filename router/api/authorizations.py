"""/v1/authorizations: pre-authorisations (holds and deposit-free credit), their one
capture into a payment, void; and the sandbox's simulated payer confirming one.
The rules are in `router/commerce/`."""

from __future__ import annotations

import aiohttp
from aiohttp import web

from router.api.common import authenticate, idempotent, json_reply, scope_of, services
from router.api.schemas import decode
from router.api.schemas_authorizations import AuthorizationCreate, CaptureCreate
from router.api.schemas_social import Empty
from router.commerce.authorization_records import PENDING, Authorization, AuthStatus
from router.errors import RouterError, invalid_state
from router.payments.replies import Reply
from router.services import Services

routes = web.RouteTableDef()


@routes.post("/v1/authorizations")
async def create_authorization(request: web.Request) -> web.Response:
    svc = services(request)
    merchant = await authenticate(request)
    raw = await request.read()
    body = decode(raw, AuthorizationCreate)
    return await idempotent(request, scope_of(merchant), raw,
                            lambda: svc.preauth.desk.create(merchant, body))


@routes.get("/v1/authorizations/{id}")
async def get_authorization(request: web.Request) -> web.Response:
    svc = services(request)
    merchant = await authenticate(request)
    auth = await svc.preauth.desk.owned(merchant, request.match_info["id"])
    return json_reply(200, auth.to_json())


@routes.post("/v1/authorizations/{id}/capture")
async def capture(request: web.Request) -> web.Response:
    svc = services(request)
    merchant = await authenticate(request)
    raw = await request.read()
    body = decode(raw, CaptureCreate)

    async def act() -> Reply:
        auth = await svc.preauth.desk.owned(merchant, request.match_info["id"])
        return await svc.preauth.captures.capture(merchant, auth, body)

    return await idempotent(request, scope_of(merchant), raw, act)


@routes.post("/v1/authorizations/{id}/void")
async def void(request: web.Request) -> web.Response:
    svc = services(request)
    merchant = await authenticate(request)
    raw = await request.read()
    decode(raw, Empty, empty_ok=True)

    async def act() -> Reply:
        auth = await svc.preauth.desk.owned(merchant, request.match_info["id"])
        return await svc.preauth.releases.void(auth)

    return await idempotent(request, scope_of(merchant), raw, act)


@routes.post(r"/v1/sandbox/authorizations/{id}/{outcome:confirm|decline}")
async def drive(request: web.Request) -> web.Response:
    """The simulated payer confirms (or declines) an authorization waiting for them."""
    svc = services(request)
    if not svc.settings.sandbox:
        raise RouterError(404, "not_found", "Sandbox controls are off on this gateway.")
    merchant = await authenticate(request)
    raw = await request.read()
    auth = await svc.preauth.desk.owned(merchant, request.match_info["id"])
    outcome = request.match_info["outcome"]
    return await idempotent(request, scope_of(merchant), raw,
                            lambda: _drive(svc, auth, outcome))


async def _drive(svc: Services, auth: Authorization, outcome: str) -> Reply:
    if auth.status not in PENDING:
        raise invalid_state(f"The authorization is already {auth.status}.")
    rail = svc.settings.rail(auth.order.rail)
    if rail is None or not rail.base_url:
        raise invalid_state(f"The {auth.order.rail} rail has no simulator to drive.")
    try:
        # A hold that exists at the rail only once the wallet opens it (Alipay's online
        # freeze order string) is opened first, as the payer's app would.
        presented = (auth.state.action or {}).get("order_string")
        if presented and auth.status is AuthStatus.REQUIRES_ACTION:
            await _post(svc, f"{rail.base_url}/sim/present", str(presented).encode(),
                        missing_ok=True)
        await _post(svc, f"{rail.base_url}/sim/authorizations/{auth.rail_auth_no}/{outcome}")
    except aiohttp.ClientError:
        raise RouterError(502, "adapter_error", "The simulator cannot be reached.") from None
    # Learn the outcome now rather than waiting for the notification.
    return Reply.json(200, (await svc.preauth.desk.check(auth)).to_json())


async def _post(svc: Services, url: str, body: bytes = b"", *, missing_ok: bool = False) -> None:
    """A simulator control; a simulator without it (404) has nothing to do when allowed."""
    async with svc.session.post(url, data=body,
                                timeout=aiohttp.ClientTimeout(total=10)) as resp:
        if resp.status >= 300 and not (missing_ok and resp.status == 404):
            raise invalid_state(f"The simulator refused: {(await resp.text())[:200]}")
