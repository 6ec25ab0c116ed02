"""/v1/admin: merchants and webhook events (admin token)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from aiohttp import web
from msgspec import UNSET

from adapters.currencies import is_known
from router.api import schemas
from router.api.common import json_reply, require_admin, services
from router.api.schemas import MerchantCreate, MerchantUpdate, decode
from router.errors import RouterError, not_found, validation_error
from router.security import Secret
from router.settings import RateLimit

routes = web.RouteTableDef()


@routes.post("/v1/admin/merchants")
async def create_merchant(request: web.Request) -> web.Response:
    require_admin(request)
    body = decode(await request.read(), MerchantCreate)
    merchant, api_key = await services(request).merchants.create(body.name,
                                                                  body.webhook_secret)
    return json_reply(201, {**merchant.to_json(), "api_key": api_key,
                            "webhook_secret": merchant.webhook_secret.reveal()})


@routes.get("/v1/admin/merchants/{id}")
async def get_merchant(request: web.Request) -> web.Response:
    require_admin(request)
    merchant = await services(request).merchants.get(request.match_info["id"])
    if merchant is None:
        raise not_found("merchant")
    return json_reply(200, merchant.to_json())


@routes.patch("/v1/admin/merchants/{id}")
async def update_merchant(request: web.Request) -> web.Response:
    require_admin(request)
    svc = services(request)
    merchant = await svc.merchants.get(request.match_info["id"])
    if merchant is None:
        raise not_found("merchant")
    body = decode(await request.read(), MerchantUpdate)
    changes: dict[str, Any] = {}
    if body.name is not UNSET:
        changes["name"] = body.name
    if body.webhook_url is not UNSET:
        changes["webhook_url"] = body.webhook_url
    if body.webhook_secret is not UNSET:
        changes["webhook_secret"] = Secret(body.webhook_secret)
    if body.rate_limit is not UNSET:
        changes["rate_limit"] = _rate(body.rate_limit)
    if body.payer_rate_limit is not UNSET:
        changes["payer_limit"] = _rate(body.payer_rate_limit)
    if body.rails is not UNSET:
        for method, rail in (body.rails or {}).items():
            svc.router.check_mapping(method, rail)
        changes["rails"] = dict(body.rails or {})
    if body.settlement_currency is not UNSET:
        if body.settlement_currency is not None and not is_known(body.settlement_currency):
            raise validation_error("settlement_currency", "Unknown ISO 4217 currency.")
        changes["settlement_currency"] = body.settlement_currency
    merchant = replace(merchant, **changes)
    await svc.merchants.update(merchant)
    return json_reply(200, merchant.to_json())


def _rate(limit: schemas.RateLimit | None) -> RateLimit | None:
    return None if limit is None else RateLimit(limit.rps, limit.burst)


@routes.post("/v1/admin/events/{id}/redeliver")
async def redeliver(request: web.Request) -> web.Response:
    require_admin(request)
    eid = request.match_info["id"]
    if not await services(request).webhooks.redeliver(eid):
        raise RouterError(404, "not_found",
                          "No such event awaiting retry or dead-lettered.")
    return json_reply(202, {"id": eid, "object": "event", "status": "scheduled"})


@routes.get("/v1/admin/events/dead")
async def dead_letters(request: web.Request) -> web.Response:
    require_admin(request)
    ids = await services(request).webhooks.dead_letters()
    return json_reply(200, {"object": "list", "data": [{"id": i} for i in ids]})
