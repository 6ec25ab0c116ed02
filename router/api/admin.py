"""/v1/admin: merchants and webhook events (admin token)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from aiohttp import web

from router.api.common import json_reply, require_admin, services
from router.errors import RouterError, not_found, validation_error
from router.routing import Router
from router.security import Secret
from router.settings import RateLimit
from router.validation import parse_json_object

routes = web.RouteTableDef()

_PATCHABLE = {"name", "webhook_url", "webhook_secret", "rate_limit", "payer_rate_limit",
              "rails"}


@routes.post("/v1/admin/merchants")
async def create_merchant(request: web.Request) -> web.Response:
    require_admin(request)
    body = parse_json_object(await request.read())
    name = body.get("name")
    if not isinstance(name, str) or not 1 <= len(name) <= 100:
        raise validation_error("name", "name must be a string of 1-100 characters.")
    secret = body.get("webhook_secret")
    if secret is not None and (not isinstance(secret, str) or not 16 <= len(secret) <= 200):
        raise validation_error("webhook_secret", "webhook_secret must be 16-200 characters.")
    unknown = set(body) - {"name", "webhook_secret"}
    if unknown:
        raise validation_error(sorted(unknown)[0], f"Unknown field {sorted(unknown)[0]!r}.")
    merchant, api_key = await services(request).merchants.create(name, secret)
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
    body = parse_json_object(await request.read())
    changes: dict[str, Any] = {}
    for field, value in body.items():
        if field not in _PATCHABLE:
            raise validation_error(field, f"{field!r} cannot be changed.")
        if field == "rails":
            changes["rails"] = _rail_mapping(svc.router, value)
        else:
            changes[_attr(field)] = _patch_value(field, value)
    merchant = replace(merchant, **changes)
    await svc.merchants.update(merchant)
    return json_reply(200, merchant.to_json())


def _attr(field: str) -> str:
    return {"rate_limit": "rate_limit", "payer_rate_limit": "payer_limit"}.get(field, field)


def _patch_value(field: str, value: Any) -> Any:
    if field in ("rate_limit", "payer_rate_limit"):
        if value is None:
            return None
        if not isinstance(value, dict):
            raise validation_error(field, f"{field} must be {{\"rps\": R, \"burst\": B}}.")
        rps, burst = value.get("rps"), value.get("burst")
        if (not isinstance(rps, int | float) or isinstance(rps, bool) or rps <= 0
                or not isinstance(burst, int) or isinstance(burst, bool) or burst < 1):
            raise validation_error(field, "rps must be a number > 0 and burst an integer >= 1.")
        return RateLimit(float(rps), burst)
    if field == "webhook_url":
        if value is not None and (not isinstance(value, str)
                                  or not value.startswith(("http://", "https://"))):
            raise validation_error(field, "webhook_url must be an http(s) URL or null.")
        return value
    if field == "webhook_secret":
        if not isinstance(value, str) or not 16 <= len(value) <= 200:
            raise validation_error(field, "webhook_secret must be 16-200 characters.")
        return Secret(value)
    if not isinstance(value, str) or not 1 <= len(value) <= 100:
        raise validation_error(field, f"{field} must be a string of 1-100 characters.")
    return value


def _rail_mapping(router: Router, value: Any) -> dict[str, str]:
    """`{"wechatpay": "wechatpay-sub-1"}`: this merchant's wechatpay payments go to that
    rail. `{}` or null clears the mapping."""
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise validation_error("rails", "rails must map method names to rail names.")
    for method, rail in value.items():
        router.check_mapping(method, rail)
    return dict(value)


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
