"""/v1/users: a platform's users and their real-name status."""

from __future__ import annotations

import re

from aiohttp import web

from router.api.common import authenticate, json_reply, services
from router.api.schemas import decode
from router.api.schemas_social import UserPut
from router.errors import RouterError, not_found, validation_error
from router.social.records import User

routes = web.RouteTableDef()
_USER_ID = re.compile(r"[0-9A-Za-z_-]{1,64}")


def user_id_of(request: web.Request) -> str:
    user_id = request.match_info["user_id"]
    if not _USER_ID.fullmatch(user_id):
        raise validation_error("user_id", "A user id is 1-64 of [0-9A-Za-z_-].")
    return user_id


@routes.put("/v1/users/{user_id}")
async def put_user(request: web.Request) -> web.Response:
    svc = services(request)
    merchant = await authenticate(request)
    user_id = user_id_of(request)
    body = decode(await request.read(), UserPut)
    wallets: dict[str, dict[str, str]] = {}
    if body.wallets.wechatpay is not None:
        wallets["wechatpay"] = {"openid": body.wallets.wechatpay.openid}
    if body.wallets.alipay is not None:
        wallets["alipay"] = {"user_id": body.wallets.alipay.user_id}
    real = body.real_name
    verified = real.status == "verified"
    if verified and real.method is None:
        raise validation_error("real_name.method",
                               "A verified real name says how: bank_card, id_card or phone.")
    if verified and not wallets:
        raise RouterError(422, "validation_error", "A verified user needs a wallet to be paid "
                          "to.", param="wallets")
    user = User(merchant.id, user_id, wallets, verified, real.method if verified else None,
                real.name)
    await svc.social.users.put(user)
    return json_reply(200, user.to_json())


@routes.get("/v1/users/{user_id}")
async def get_user(request: web.Request) -> web.Response:
    svc = services(request)
    merchant = await authenticate(request)
    user = await svc.social.users.get(merchant.id, user_id_of(request))
    if user is None:
        raise not_found("user")
    return json_reply(200, user.to_json())
