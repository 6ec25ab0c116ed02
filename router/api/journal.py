"""/v1/journal: the merchant's hash-chained journal of money movements."""

from __future__ import annotations

from aiohttp import web

from router.api.common import authenticate, json_reply, services
from router.errors import validation_error
from router.ledger.entries import GENESIS

routes = web.RouteTableDef()
_MAX_LIMIT = 1000


def _int_param(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit()) or not low <= int(raw) <= high:
        raise validation_error(name, f"{name} must be an integer from {low} to {high}.")
    return int(raw)


@routes.get("/v1/journal")
async def list_entries(request: web.Request) -> web.Response:
    svc = services(request)
    merchant = await authenticate(request)
    after = _int_param(request, "after", 0, 0, 2**62)
    limit = _int_param(request, "limit", 100, 1, _MAX_LIMIT)
    entries = await svc.store.journal.entries(merchant.shard, merchant.id, after, limit)
    return json_reply(200, {"object": "list", "data": entries,
                            "has_more": len(entries) == limit})


@routes.get("/v1/journal/head")
async def head(request: web.Request) -> web.Response:
    svc = services(request)
    merchant = await authenticate(request)
    seq, digest = await svc.store.journal.head(merchant.shard, merchant.id)
    return json_reply(200, {"object": "journal_head", "seq": seq, "hash": digest or GENESIS})
