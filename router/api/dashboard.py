"""The operator's live dashboard, served by the gateway itself (docs/dashboard.md).

    GET  /dashboard                 the page; without a session, only the login form
    POST /dashboard/login           the admin token (a form field) for a session cookie
    POST /dashboard/logout          ends the session
    GET  /dashboard/static/{name}   the page's script and style sheet (router/ops/static/)
    GET  /v1/admin/dashboard        the figures as JSON: the session or the admin token

The page holds no data of its own: its script fetches the JSON once a second and writes
it with DOM text nodes, never as markup, so a merchant's name or a payment's description
is shown, not run. The Content-Security-Policy allows scripts and styles from the
gateway only (no inline code at all), so even markup slipped in could not execute.
"""

from __future__ import annotations

import hmac
import html
import secrets
from importlib import resources
from typing import Final

from aiohttp import web

from router.api.common import bearer, json_reply, require_admin, services
from router.errors import RouterError, not_found
from router.ops.dashboard import FIGURES

routes = web.RouteTableDef()

SESSION_COOKIE: Final = "payrouter_dashboard"
SESSION_TTL_S: Final = 8 * 3600  # a working day; then log in again
LOGIN_FAILURES_ALLOWED: Final = 5  # per client address and window; then 429 until it ends
LOGIN_WINDOW_S: Final = 300

CONTENT_SECURITY_POLICY: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
_PAGE_HEADERS: Final = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
_STATIC_DIR = resources.files("router.ops").joinpath("static")
_CONTENT_TYPES: Final = {"js": "text/javascript", "css": "text/css"}
_ASSETS: Final = {name: _STATIC_DIR.joinpath(name).read_bytes()
                  for name in ("dashboard.js", "dashboard.css")}
_DASHBOARD_PAGE: Final = _STATIC_DIR.joinpath("dashboard.html").read_bytes()
_LOGIN_PAGE: Final = _STATIC_DIR.joinpath("login.html").read_text()


def _html(status: int, body: bytes, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, body=body, content_type="text/html", charset="utf-8",
                        headers={**_PAGE_HEADERS, **(headers or {})})


def _login_form(status: int, message: str = "",
                headers: dict[str, str] | None = None) -> web.Response:
    page = _LOGIN_PAGE.replace("<!--message-->", html.escape(message))
    return _html(status, page.encode(), headers)


async def _has_session(request: web.Request) -> bool:
    cookie = request.cookies.get(SESSION_COOKIE)
    return cookie is not None and await services(request).store.sessions.is_open(cookie)


def _over_tls(request: web.Request) -> bool:
    """Served over TLS, here or at the proxy in front (which says so): the cookie is then
    marked Secure and never travels in clear text."""
    forwarded = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
    return request.secure or forwarded == "https"


def _to_dashboard() -> web.Response:
    return web.Response(status=303, headers={**_PAGE_HEADERS, "Location": "/dashboard"})


@routes.get("/dashboard")
async def dashboard_page(request: web.Request) -> web.Response:
    if not await _has_session(request):
        return _login_form(200)
    return _html(200, _DASHBOARD_PAGE)


@routes.post("/dashboard/login")
async def login(request: web.Request) -> web.Response:
    """A form post (the page needs no script to log in). Failed logins are counted per
    client address in Redis, for every gateway process: past the allowance, every try
    (a right token too) is refused until the window ends."""
    svc = services(request)
    client = request.remote or "unknown"
    failures, retry_after = await svc.store.sessions.login_failures(client)
    if failures >= LOGIN_FAILURES_ALLOWED:
        return _login_form(429, f"Too many failed logins. Try again in {retry_after} s.",
                           {"Retry-After": str(max(1, retry_after))})
    token = (await request.post()).get("token")
    expected = svc.settings.admin_token
    if not (isinstance(token, str) and expected is not None and hmac.compare_digest(
            token.encode(), expected.reveal().encode())):
        await svc.store.sessions.login_failed(client, LOGIN_WINDOW_S)
        return _login_form(401, "That is not the admin token.")
    previous = request.cookies.get(SESSION_COOKIE)
    if previous:
        await svc.store.sessions.close(previous)
    cookie = secrets.token_urlsafe(32)
    await svc.store.sessions.open(cookie, SESSION_TTL_S)
    response = _to_dashboard()
    response.set_cookie(SESSION_COOKIE, cookie, max_age=SESSION_TTL_S, path="/",
                        httponly=True, samesite="Strict", secure=_over_tls(request) or None)
    return response


@routes.post("/dashboard/logout")
async def logout(request: web.Request) -> web.Response:
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        await services(request).store.sessions.close(cookie)
    response = _to_dashboard()
    response.del_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="Strict")
    return response


@routes.get("/dashboard/static/{name}")
async def asset(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    body = _ASSETS.get(name)
    if body is None:
        raise not_found("file")
    return web.Response(body=body, headers={
        **_PAGE_HEADERS, "Cache-Control": "no-cache",
        "Content-Type": f"{_CONTENT_TYPES[name.rsplit('.', 1)[1]]}; charset=utf-8"})


@routes.get("/v1/admin/dashboard")
async def figures(request: web.Request) -> web.Response:
    """The page's figures: a session cookie (the page) or the admin token (scripts)."""
    if bearer(request) is not None:
        require_admin(request)
    elif not await _has_session(request):
        raise RouterError(401, "unauthorized",
                          "Log in at /dashboard, or give the admin token.")
    snapshot = await request.app[FIGURES].snapshot(services(request))
    response = json_reply(200, snapshot)
    response.headers.update({"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"})
    return response
