"""Service providers and their sub-merchants: /v1/admin/service_providers (admin token),
/v1/sub_merchants (a provider's key)."""

from __future__ import annotations

from aiohttp import web

from router.api.common import bearer, idempotent, json_reply, require_admin, services
from router.api.schemas import decode
from router.api.schemas_partners import ServiceProviderCreate, SubMerchantCreate
from router.commerce.providers import PARTNER_METHODS, PartnerIds, is_provider
from router.commerce.split_records import DEFAULT_MAX_SPLIT_BP
from router.errors import RouterError, unauthorized, validation_error
from router.limits import merchant_spec
from router.merchants import Merchant
from router.payments.replies import refusal

routes = web.RouteTableDef()


@routes.post("/v1/admin/service_providers")
async def create_provider(request: web.Request) -> web.Response:
    """No Idempotency-Key, like the merchants' admin create: the answer holds the key,
    which is never stored but hashed."""
    require_admin(request)
    svc = services(request)
    body = decode(await request.read(), ServiceProviderCreate)
    for method, rail in body.rails.items():
        param = f"rails.{method}"
        if method not in PARTNER_METHODS:
            raise validation_error(param, "A provider acts in partner mode by wechatpay or "
                                          "alipay.")
        if not svc.rails.has(rail):
            raise validation_error(param, f"No rail named {rail!r} is configured.")
        if svc.router.kind(rail) not in (method, "instant"):
            raise validation_error(param, f"Rail {rail!r} runs the {svc.router.kind(rail)} "
                                          f"adapter, not {method}.")
    for method in body.accounts:
        if method not in PARTNER_METHODS:
            raise validation_error(f"accounts.{method}", "Accounts are by wechatpay or alipay.")
    provider, api_key = await svc.partners.providers.create(
        body.name, body.rails, body.accounts, body.webhook_secret, body.webhook_url)
    return json_reply(201, {
        "id": provider.id, "object": "service_provider", "name": provider.name,
        "rails": dict(provider.rails), "accounts": dict(body.accounts),
        "webhook_url": provider.webhook_url, "api_key": api_key,
        "webhook_secret": provider.webhook_secret.reveal()})


async def authenticate_itself(request: web.Request) -> Merchant:
    """The caller as its key names it, acting for no one (its own rate limit counted)."""
    svc = services(request)
    token = bearer(request)
    caller = await svc.merchants.authenticate(token) if token else None
    if caller is None:
        raise unauthorized()
    limited = await svc.store.limits.admit([merchant_spec(svc.settings, caller)])
    if limited is not None:
        svc.metrics.rate_limited.labels("merchant").inc()
        raise refusal(limited, limit="merchant")
    return caller


@routes.post("/v1/sub_merchants")
async def onboard(request: web.Request) -> web.Response:
    svc = services(request)
    provider = await authenticate_itself(request)
    raw = await request.read()
    body = decode(raw, SubMerchantCreate)
    if not is_provider(provider):
        raise RouterError(401, "unauthorized", "Only a service provider's key onboards "
                                               "sub-merchants.")
    ids = PartnerIds(body.wechatpay.sub_mchid if body.wechatpay else None,
                     body.alipay.app_auth_token if body.alipay else None)
    bp = DEFAULT_MAX_SPLIT_BP if body.max_split_bp is None else body.max_split_bp
    return await idempotent(request, (provider.shard, provider.id), raw,
                            lambda: svc.partners.providers.onboard(
                                provider, body.name, ids,
                                body.alipay.user_id if body.alipay else None, bp))
