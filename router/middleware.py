"""One middleware renders every error in API.md's envelope and counts requests."""

from __future__ import annotations

import logging

import redis.exceptions
from aiohttp import web
from aiohttp.typedefs import Handler

from router.errors import RouterError
from router.services import METRICS

log = logging.getLogger("payrouter.http")


def _error(err: RouterError) -> web.Response:
    return web.Response(status=err.http_status, body=err.body(), headers=err.headers,
                        content_type="application/json")


def _from_http(exc: web.HTTPException) -> RouterError:
    if isinstance(exc, web.HTTPRequestEntityTooLarge):
        return RouterError(413, "payload_too_large", "The body is over the size limit.")
    if isinstance(exc, web.HTTPNotFound):
        return RouterError(404, "not_found", "No such route.")
    if isinstance(exc, web.HTTPMethodNotAllowed):
        return RouterError(405, "method_not_allowed", "This route does not take that method.")
    return RouterError(exc.status, "invalid_request", exc.reason)


@web.middleware
async def errors_and_metrics(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response = await handler(request)
    except RouterError as err:
        response = _error(err)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        response = _error(_from_http(exc))
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
        log.error("redis unavailable during %s %s", request.method, request.path)
        response = _error(RouterError(503, "store_unavailable",
                                      "The payment store is unavailable; nothing was done "
                                      "that was not recorded. Retry with the same "
                                      "Idempotency-Key."))
    except Exception:
        log.exception("unhandled error in %s %s", request.method, request.path)
        response = _error(RouterError(500, "internal_error", "Internal error."))
    route = request.match_info.route.resource
    name = route.canonical if route is not None else "unmatched"
    request.app[METRICS].count_request(name, response.status)
    return response


async def server_header(request: web.Request, response: web.StreamResponse) -> None:
    """Name the product, not the framework and its version (which only helps someone
    looking for a known hole)."""
    response.headers["Server"] = "payrouter"
