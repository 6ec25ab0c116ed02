"""The dashboard over HTTP: figures summed in Redis over processes, the login and its
session cookie, the rate limit on wrong tokens, and the headers that keep the page safe.
What a browser makes of the page is tests/test_dashboard_browser.py."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from importlib import resources
from typing import Any

import aiohttp
import orjson
import pytest
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]

from router.api.dashboard import (
    CONTENT_SECURITY_POLICY,
    LOGIN_FAILURES_ALLOWED,
    SESSION_COOKIE,
    SESSION_TTL_S,
)
from router.ops.live import LATENCY_BOUNDS_MS, LiveStats, percentile_ms
from router.store.cluster import key_slot
from router.store.link import open_link
from router.store.live import BUCKET_TTL_S, figures_bucket, merchants_bucket
from router.store.store import Store
from tests.helpers import ADMIN_TOKEN, Gateway, eventually, payment_body

XSS_NAME = "<img src=x onerror=alert(1)>"
STATIC = resources.files("router.ops").joinpath("static")
SPEC = orjson.loads(resources.files("router").joinpath("openapi.json").read_bytes())


def assert_documented(figures: dict[str, Any]) -> None:
    """The figures have the shape router/openapi.json gives them (schema Dashboard)."""
    validator = Draft202012Validator(
        {"$ref": "#/components/schemas/Dashboard", "components": SPEC["components"]})
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(figures)]
    assert errors == []


@pytest.fixture
async def store(redis_url: str) -> AsyncIterator[Store]:
    made = Store(open_link(redis_url), shards=16, idem_ttl_s=60)
    yield made
    await made.aclose()


@pytest.fixture
async def browser_like() -> AsyncIterator[aiohttp.ClientSession]:
    """A client that keeps cookies for 127.0.0.1, as a browser does."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        yield session


# --------------------------------------------------------------------------- figures
def test_percentiles_from_latency_buckets() -> None:
    stats = LiveStats()
    for ms in [4] * 98 + [400, 900]:
        stats.rail_call("bank", True, ms / 1000)
    stats.rail_call("bank", False, None)
    slots = stats.take().rails["bank"]
    assert slots[:2] == [100, 1]
    latency = slots[2:]
    assert len(latency) == len(LATENCY_BOUNDS_MS) + 1
    p50 = percentile_ms(latency, 0.5)
    p99 = percentile_ms(latency, 0.99)
    assert p50 is not None and 3 < p50 <= 5  # within its bucket (3, 5]
    assert p99 is not None and 300 < p99 <= 500
    assert percentile_ms([0] * len(latency), 0.5) is None
    assert not stats.take()  # taking starts from zero


@pytest.mark.both_topologies
async def test_seconds_of_two_processes_add_up_in_redis(store: Store, redis_client: Any) -> None:
    first, second = LiveStats(), LiveStats()
    for stats, creates in ((first, 3), (second, 4)):
        for _ in range(creates):
            stats.payment_created("mch_a")
        stats.payment_created("mch_b")
        stats.count("red_packet.grabs", 2)
        stats.rail_call("bank", True, 0.004)
        stats.rail_call("bank", False, 0.2)
    now = int(time.time())
    await first.flush(store.live, now)
    await second.flush(store.live, now)
    await LiveStats().flush(store.live, now + 1)  # nothing counted: nothing written

    figures = await store.live.figures([now, now + 1])
    assert figures[now + 1] == {}
    bucket = figures[now]
    assert bucket["c:payments.created"] == 9 and bucket["c:red_packet.grabs"] == 4
    assert bucket["r:bank:ok"] == 2 and bucket["r:bank:failed"] == 2
    assert sum(v for k, v in bucket.items() if k.startswith("r:bank:l")) == 4
    assert await store.live.merchant_creates([now, now + 1]) == {"mch_a": 7, "mch_b": 2}
    # One slot per second on a cluster; every bucket expires.
    assert key_slot(figures_bucket(now)) == key_slot(merchants_bucket(now))
    for key in (figures_bucket(now), merchants_bucket(now)):
        assert 0 < await redis_client.ttl(key) <= BUCKET_TTL_S
    assert not await redis_client.exists(figures_bucket(now + 1))


async def _figures(gateway: Gateway) -> dict[str, Any]:
    reply = await gateway.admin().get("/v1/admin/dashboard")
    assert reply.status == 200, reply.body
    assert reply.headers["Cache-Control"] == "no-store"
    body: dict[str, Any] = reply.body
    return body


async def test_figures_cover_creates_rails_webhooks_and_counters(gateway: Gateway) -> None:
    client, merchant = await gateway.merchant(XSS_NAME)
    for i in range(6):
        created = await client.post("/v1/payments", payment_body(f"dash-{i}"))
        assert created.status == 201, created.body
    # A webhook nobody accepts: retried (0.2, 0.3, 0.3 s in tests), then dead-lettered.
    dead = await client.post("/v1/payments", payment_body(
        "dash-dead", description="<script>alert(2)</script>",
        metadata={"note": "<b onmouseover=alert(3)>x</b>"},
        notify_url="http://127.0.0.1:9/closed"))
    assert dead.status == 201, dead.body
    gateway.services.metrics.live.count("red_packet.grabs", 10)

    found: dict[str, Any] = {}

    async def shown() -> bool:
        found.update(await _figures(gateway))
        return bool(found["creates_per_s"] > 0 and found["webhooks"]["dead_letters"] == 1
                    and found["red_packets"]["grabs_per_s"] > 0)

    await eventually(shown, timeout=15, interval=0.2)
    assert_documented(found)
    assert found["object"] == "dashboard" and found["window_s"] == 180
    assert len(found["series"]["creates_per_s"]) == 180
    assert sum(found["series"]["creates_per_s"]) == 7
    assert found["counters"]["red_packet.grabs"] == found["red_packets"]["grabs_per_s"]
    rails = {r["rail"]: r for r in found["rails"]}
    assert set(rails) == {"bank", "instant"}
    bank = rails["bank"]
    assert bank["breaker"] == "closed" and bank["success_rate"] == 1.0
    assert bank["p50_ms"] is not None and bank["p99_ms"] is not None
    assert sum(bank["series"]["calls_per_s"]) >= 7
    assert found["merchants"][0] == {"id": merchant["id"], "name": XSS_NAME,
                                     "creates_per_s": found["merchants"][0]["creates_per_s"]}
    assert found["campaigns"] == []
    letter = found["webhooks"]["newest_dead_letters"][0]
    assert letter["type"] == "payment.succeeded" and letter["object_id"] == dead.body["id"]
    assert letter["merchant"] == {"id": merchant["id"], "name": XSS_NAME}
    assert letter["url"] == "http://127.0.0.1:9/closed"
    assert letter["description"] == "<script>alert(2)</script>"
    assert letter["metadata"] == {"note": "<b onmouseover=alert(3)>x</b>"}


# --------------------------------------------------------------------------- login
def _cookie_attributes(reply: aiohttp.ClientResponse) -> set[str]:
    header = next(v for v in reply.headers.getall("Set-Cookie")
                  if v.startswith(SESSION_COOKIE + "="))
    return {part.strip().lower() for part in header.split(";")[1:]}


async def _login(session: aiohttp.ClientSession, gateway: Gateway, token: str,
                 headers: dict[str, str] | None = None) -> aiohttp.ClientResponse:
    async with session.post(f"{gateway.base}/dashboard/login", data={"token": token},
                            headers=headers, allow_redirects=False) as reply:
        await reply.read()
        return reply


async def test_without_a_session_only_the_login_form_and_no_data(
    gateway: Gateway, browser_like: aiohttp.ClientSession
) -> None:
    async with browser_like.get(f"{gateway.base}/dashboard") as page:
        text = await page.text()
        assert page.status == 200
        assert page.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
        assert page.headers["X-Content-Type-Options"] == "nosniff"
        assert page.headers["Content-Type"].startswith("text/html")
    assert '<form id="login" method="post" action="/dashboard/login">' in text
    assert "dashboard.js" not in text and "<script" not in text
    async with browser_like.get(f"{gateway.base}/v1/admin/dashboard") as data:
        assert data.status == 401
        assert (await data.json())["error"]["code"] == "unauthorized"
    async with browser_like.get(f"{gateway.base}/v1/admin/dashboard",
                                cookies={SESSION_COOKIE: "made-up"}) as forged:
        assert forged.status == 401
    merchant_client, _ = await gateway.merchant()
    as_merchant = await merchant_client.get("/v1/admin/dashboard")
    assert as_merchant.status == 401  # a merchant's key is not the admin token


async def test_login_gives_an_expiring_http_only_strict_cookie(
    gateway: Gateway, browser_like: aiohttp.ClientSession, redis_client: Any
) -> None:
    reply = await _login(browser_like, gateway, ADMIN_TOKEN)
    assert reply.status == 303 and reply.headers["Location"] == "/dashboard"
    attributes = _cookie_attributes(reply)
    assert {"httponly", "samesite=strict", "path=/", f"max-age={SESSION_TTL_S}"} <= attributes
    assert "secure" not in attributes  # plain HTTP here
    sessions = [k async for k in redis_client.scan_iter(match="dashboard:session:*")]
    assert len(sessions) == 1
    assert 0 < await redis_client.ttl(sessions[0]) <= SESSION_TTL_S
    cookie = next(c.value for c in browser_like.cookie_jar if c.key == SESSION_COOKIE)
    assert cookie.encode() not in sessions[0]  # only its hash is stored

    async with browser_like.get(f"{gateway.base}/dashboard") as page:
        assert 'src="/dashboard/static/dashboard.js"' in await page.text()
    async with browser_like.get(f"{gateway.base}/v1/admin/dashboard") as data:
        assert data.status == 200 and (await data.json())["object"] == "dashboard"

    async with browser_like.post(f"{gateway.base}/dashboard/logout",
                                 allow_redirects=False) as out:
        assert out.status == 303
    assert not await redis_client.exists(sessions[0])
    async with browser_like.get(f"{gateway.base}/v1/admin/dashboard",
                                cookies={SESSION_COOKIE: cookie}) as after:
        assert after.status == 401  # the old cookie is dead, not only forgotten

    behind_tls = await _login(browser_like, gateway, ADMIN_TOKEN,
                              headers={"X-Forwarded-Proto": "https"})
    assert "secure" in _cookie_attributes(behind_tls)


async def test_a_wrong_token_is_refused_then_rate_limited(
    gateway: Gateway, browser_like: aiohttp.ClientSession, redis_client: Any
) -> None:
    for i in range(LOGIN_FAILURES_ALLOWED):
        refused = await _login(browser_like, gateway, f"wrong-{i}")
        assert refused.status == 401
        assert SESSION_COOKIE not in refused.cookies
    limited = await _login(browser_like, gateway, ADMIN_TOKEN)  # even the right one, now
    assert limited.status == 429
    assert 1 <= int(limited.headers["Retry-After"]) <= 300
    assert SESSION_COOKIE not in limited.cookies
    # The count lives in Redis (every process sees it) and ends with its window.
    [key] = [k async for k in redis_client.scan_iter(match="dashboard:login_failures:*")]
    await redis_client.delete(key)
    assert (await _login(browser_like, gateway, ADMIN_TOKEN)).status == 303


# --------------------------------------------------------------------------- the page
async def test_assets_are_served_with_their_types_and_no_inline_code(
    gateway: Gateway, http: aiohttp.ClientSession
) -> None:
    for name, kind in (("dashboard.js", "text/javascript"), ("dashboard.css", "text/css")):
        async with http.get(f"{gateway.base}/dashboard/static/{name}") as asset:
            assert asset.status == 200
            assert asset.headers["Content-Type"].startswith(kind)
            assert asset.headers["X-Content-Type-Options"] == "nosniff"
    async with http.get(f"{gateway.base}/dashboard/static/..%2fapp.py") as missing:
        assert missing.status == 404
    script = STATIC.joinpath("dashboard.js").read_text()
    assert "innerHTML" not in script and "insertAdjacentHTML" not in script
    assert "eval(" not in script and "document.write" not in script
    for page in ("dashboard.html", "login.html"):
        markup = STATIC.joinpath(page).read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)", markup), page  # no inline script
        assert not re.search(r"\son\w+=", markup) and " style=" not in markup, page
