"""/v1/admin/policies: whitelists and quotas per action (admin token)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from router.api.common import json_reply, require_admin, services
from router.api.schemas import decode
from router.api.schemas_promotions import PolicyPut
from router.domain import iso
from router.errors import not_found
from router.promotions.policies import Action, Policy, Quota, action_of

routes = web.RouteTableDef()


@routes.get("/v1/admin/policies")
async def list_policies(request: web.Request) -> web.Response:
    require_admin(request)
    stored = await services(request).promotions.policies.stored()
    return json_reply(200, {"object": "list",
                            "data": [_json(a, p) for a, p in sorted(stored.items())]})


@routes.put("/v1/admin/policies/{action}")
async def put_policy(request: web.Request) -> web.Response:
    require_admin(request)
    svc = services(request)
    action = action_of(request.match_info["action"])
    body = decode(await request.read(), PolicyPut)
    quota = Quota(body.quota.count, body.quota.per_s) if body.quota else None
    policy = Policy(frozenset(body.whitelist) if body.whitelist else None, quota,
                    svc.clock.now_ms())
    await svc.promotions.policies.put(action, policy)
    return json_reply(200, _json(action, policy))


@routes.get("/v1/admin/policies/{action}")
async def get_policy(request: web.Request) -> web.Response:
    require_admin(request)
    action = action_of(request.match_info["action"])
    policy = (await services(request).promotions.policies.stored()).get(action)
    if policy is None:
        raise not_found(f"policy for {action.value}")
    return json_reply(200, _json(action, policy))


@routes.delete("/v1/admin/policies/{action}")
async def delete_policy(request: web.Request) -> web.Response:
    require_admin(request)
    action = action_of(request.match_info["action"])
    deleted = await services(request).promotions.policies.delete(action)
    return json_reply(200, {"object": "policy", "action": action.value, "deleted": deleted})


def _json(action: Action, policy: Policy) -> dict[str, Any]:
    quota = policy.quota
    return {"object": "policy", "action": action.value,
            "whitelist": sorted(policy.whitelist) if policy.whitelist else None,
            "quota": {"count": quota.count, "per_s": quota.per_s} if quota else None,
            "updated_at": iso(policy.updated_ms)}
