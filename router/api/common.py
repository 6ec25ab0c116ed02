"""What every handler needs: auth, idempotent execution, JSON replies."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable

from aiohttp import web

from router.commerce.providers import ACCOUNT_HEADER, PROVIDER_PREFIX
from router.errors import RouterError, not_found, unauthorized
from router.limits import merchant_spec
from router.merchants import Merchant
from router.payments.replies import REPLAYED, Reply, refusal
from router.services import SERVICES, Services
from router.store import keys
from router.store.outcomes import KeyInUse, KeyReused, Replayed
from router.validation import digest


def services(request: web.Request) -> Services:
    return request.app[SERVICES]


def respond(reply: Reply) -> web.Response:
    return web.Response(status=reply.status, body=reply.body, headers=reply.headers,
                        content_type="application/json")


def json_reply(status: int, obj: object) -> web.Response:
    return respond(Reply.json(status, obj))


def bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


async def authenticate(request: web.Request, *, limit: bool = True) -> Merchant:
    """The merchant the call acts for; counts the call against its rate limit unless told
    not to (payment creation counts it inside its own script). A service provider's key
    acts for the sub-merchant its `Payrouter-Account` header names (commerce/providers.py)."""
    token = bearer(request)
    svc = services(request)
    merchant = await svc.merchants.authenticate(token) if token else None
    if merchant is None:
        raise unauthorized()
    account = request.headers.get(ACCOUNT_HEADER)
    if account is not None or merchant.id.startswith(PROVIDER_PREFIX):
        merchant = await svc.partners.providers.acting(merchant, account)
    if limit:
        limited = await svc.store.limits.admit([merchant_spec(svc.settings, merchant)])
        if limited is not None:
            svc.metrics.rate_limited.labels("merchant").inc()
            raise refusal(limited, limit="merchant")
    return merchant


def require_admin(request: web.Request) -> None:
    token = bearer(request)
    expected = services(request).settings.admin_token
    if token is None or expected is None or not hmac.compare_digest(
        token.encode(), expected.reveal().encode()
    ):
        raise RouterError(401, "unauthorized", "Missing or invalid admin token.")


def idempotency_key(request: web.Request) -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    if not 1 <= len(key) <= 255 or not all(0x20 <= ord(c) <= 0x7E for c in key):
        raise RouterError(400, "invalid_request",
                          "Idempotency-Key must be 1-255 printable ASCII characters.",
                          param="Idempotency-Key")
    return key


def request_hash(request: web.Request, body: bytes) -> str:
    """Same key with a different request (path or body) is a reuse, not a replay."""
    return digest(request.method.encode(), request.path.encode(), body)


def owned(merchant: Merchant, owner_id: str | None, what: str) -> None:
    """Another merchant's object is indistinguishable from a missing one."""
    if owner_id != merchant.id:
        raise not_found(what)


def made_by_caller(merchant: Merchant, owner_id: str | None, provider: str | None,
                   what: str) -> None:
    """`owned`, and a payment (or its refund, its split) made by someone else for the same
    merchant is missing too: a service provider sees only the payments it made."""
    if owner_id != merchant.id or provider != merchant.acting_provider:
        raise not_found(what)


def scope_of(merchant: Merchant) -> tuple[int, str]:
    return merchant.shard, merchant.scope


async def idempotent(
    request: web.Request, scope: tuple[int, str], body: bytes,
    action: Callable[[], Awaitable[Reply]],
) -> web.Response:
    """Run `action` at most once per (scope, Idempotency-Key): replays get the stored
    answer. An error answer releases the key: every action here is safe to run again
    (the rail dedupes on its own keys), and a retry should reach the rail once more."""
    key = idempotency_key(request)
    if key is None:
        return respond(await action())
    svc = services(request)
    shard, scope_id = scope
    owner = keys.new_id(svc.clock, "own", shard)
    lease_ms = int(svc.settings.idempotency.lease_s * 1000)
    claim = await svc.store.idempotency.claim(shard, scope_id, key,
                                              request_hash(request, body), owner, lease_ms)
    match claim:
        case Replayed(status, stored):
            return respond(Reply(status, stored, REPLAYED))
        case KeyInUse() | KeyReused():
            raise refusal(claim)
    try:
        reply = await action()
    except RouterError:
        await svc.store.idempotency.settle(shard, scope_id, key, owner, None, b"")
        raise
    # Any other exception leaves the claim in place: its lease expires and a retry takes
    # it over.
    await svc.store.idempotency.settle(shard, scope_id, key, owner,
                                       None if reply.provisional else reply.status,
                                       reply.body)
    return respond(reply)
