"""The gateway application: routes, middleware, and the resources of one process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

import aiohttp
from aiohttp import web
from redis.exceptions import ConnectionError as RedisConnectionError

from adapters import registry
from adapters.base import AdapterConfig
from router.api import (
    admin,
    authorizations,
    campaigns,
    coupons,
    dashboard,
    invoices,
    journal,
    notify,
    ops,
    payments,
    payouts,
    points,
    policies,
    providers,
    red_packets,
    refunds,
    routing,
    sandbox,
    splits,
    users,
)
from router.clock import SYSTEM_CLOCK, Clock
from router.commerce.authorization_wiring import Preauth
from router.commerce.invoice_wiring import Invoicing
from router.commerce.partner_wiring import Partners
from router.interop import checkout_codes, share_links
from router.ledger.chainer import JournalChainer
from router.merchants import MerchantDirectory, load_pepper
from router.middleware import errors_and_metrics, server_header
from router.ops.dashboard import FIGURES, DashboardFigures
from router.ops.metrics import Metrics
from router.payments import Payments
from router.promotions.campaign_wiring import Campaigns
from router.promotions.wiring import Promotions
from router.rails.client import RailClient
from router.routing import HealthBook, Router
from router.services import CLOCK, METRICS, SERVICES, SETTINGS, Services
from router.settings import Settings
from router.social.wiring import Social
from router.store.link import open_link
from router.store.store import Store
from router.workers.sweeper import Sweeper
from router.workers.webhooks import WebhookDispatcher

log = logging.getLogger("payrouter")
T = TypeVar("T")


def create_app(settings: Settings, *, background: bool = True,
               clock: Clock = SYSTEM_CLOCK) -> web.Application:
    """The gateway. `background=False` leaves out the sweeper and webhook workers (tests
    that drive them by hand); `clock` gives time and ids (a simulation passes its own)."""
    app = web.Application(
        client_max_size=settings.server.max_body_bytes,
        middlewares=[errors_and_metrics],
    )
    app[SETTINGS] = settings
    app[METRICS] = Metrics()
    app[CLOCK] = clock
    app[FIGURES] = DashboardFigures()
    app.on_response_prepare.append(server_header)
    for table in (payments.routes, refunds.routes, users.routes, payouts.routes,
                  red_packets.routes, authorizations.routes, journal.routes, providers.routes,
                  splits.routes, invoices.routes, notify.routes, policies.routes, points.routes,
                  sandbox.routes, campaigns.routes, coupons.routes,
                  admin.routes, routing.routes, checkout_codes.routes, share_links.routes,
                  ops.routes, dashboard.routes):
        app.add_routes(table)
    app.cleanup_ctx.append(_resources)
    if background:
        app.cleanup_ctx.append(_background)
    return app


async def _resources(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    metrics = app[METRICS]
    clock = app[CLOCK]
    if settings.redis.url is None:
        raise RuntimeError("settings.redis.url must be set (the CLI starts embedded Redis)")
    link = open_link(settings.redis.url, settings.redis.command_timeout_s)
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=512))
    strict = settings.redis.durability == "strict"
    store = Store(link, shards=settings.redis.shards, idem_ttl_s=settings.idempotency.ttl_s,
                  replicas=settings.redis.wait_replicas if strict else 0,
                  wait_timeout_ms=settings.redis.wait_timeout_ms)
    try:
        pepper = await _when_redis_answers(
            "read the API-key pepper", lambda: load_pepper(store.merchants, settings.key_pepper))
        adapters = registry.load(
            AdapterConfig(name=r.name, base_url=r.base_url, keys_dir=r.keys_dir,
                          options=r.options)
            for r in settings.rails
        )
        spread = await _when_redis_answers(
            "pin the social shard count", lambda: store.users.pin_spread(settings.redis.shards))
        if spread > settings.redis.shards:
            raise RuntimeError(f"[redis] shards is {settings.redis.shards}, but this Redis "
                               f"holds data spread over {spread}: shards may only increase")
        merchants = MerchantDirectory(store.merchants, pepper, settings.redis.shards)
        health = HealthBook(adapters, settings.routing.breaker)
        rails = RailClient(session, adapters, {r.name: r.timeout_s for r in settings.rails},
                           metrics, health)
        payments = Payments.wire(store, rails, settings, metrics, clock)
        router = Router(adapters, settings.rails, settings.routing, settings.default_method,
                        health)
        social = Social.wire(store, payments, rails, router, settings, metrics, clock)
        preauth = Preauth.wire(store, payments, rails, router, settings, clock)
        invoices = Invoicing.wire(store, payments, rails, settings, clock)
        partners = Partners.wire(store, merchants, payments, rails, social.users, settings,
                                 clock)
        campaign_parts = Campaigns.wire(store, merchants, payments, social, rails, router,
                                        settings, clock)
        app[SERVICES] = Services(
            settings=settings, metrics=metrics, clock=clock, store=store,
            merchants=merchants, session=session, rails=rails, router=router,
            payments=payments, social=social, preauth=preauth, partners=partners,
            invoices=invoices,
            promotions=Promotions.wire(store, settings, metrics, clock, _consumer_name()),
            campaigns=campaign_parts,
            health=health,
            sweeper=Sweeper(store, payments, settings.sweeper, settings.redis.shards, metrics,
                            clock, social, preauth, partners, invoices, campaign_parts.keeper),
            webhooks=WebhookDispatcher(store.outbox, store.due, merchants, session,
                                       settings.webhooks, metrics, _consumer_name(), clock),
            journal=JournalChainer(store, merchants, settings.redis.shards, clock,
                                   _consumer_name()),
        )
        yield
    finally:
        await session.close()
        await store.aclose()


async def _when_redis_answers(what: str, step: Callable[[], Awaitable[T]],
                              timeout_s: float = 30.0) -> T:
    """A start-up step that needs Redis: a Redis that is restarting or failing over
    delays the start (with a log line per try) rather than failing it at once."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return await step()
        except RedisConnectionError as exc:
            if time.monotonic() > deadline:
                raise
            log.warning("Redis is not answering yet (%s); retrying to %s", exc, what)
            await asyncio.sleep(0.5)


async def _background(app: web.Application) -> AsyncIterator[None]:
    svc = app[SERVICES]
    stop = asyncio.Event()
    tasks = [
        asyncio.create_task(svc.sweeper.run(stop), name="sweeper"),
        asyncio.create_task(svc.webhooks.run(stop), name="webhooks"),
        asyncio.create_task(svc.health.run(svc.store.health, svc.settings.routing.sync_interval_s,
                                           stop), name="health"),
        asyncio.create_task(_reload_rules(svc, stop), name="routing-rules"),
        asyncio.create_task(svc.metrics.live.run(svc.store.live, stop), name="live-figures"),
        asyncio.create_task(svc.journal.run(stop), name="journal"),
        asyncio.create_task(svc.promotions.points_worker.run(stop), name="points"),
        asyncio.create_task(svc.campaigns.live.run(stop), name="campaigns"),
    ]
    yield
    stop.set()
    # Let loops finish their current step; a delivery cut short stays pending in the
    # stream and is reclaimed, so nothing is lost either way.
    _, pending = await asyncio.wait(tasks, timeout=5)
    for task in pending:
        task.cancel()
    for task in pending:
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _reload_rules(svc: Services, stop: asyncio.Event) -> None:
    """Routing rules kept in their own file apply without a restart."""
    if svc.settings.routing.rules_file is None:
        return
    while not stop.is_set():
        svc.router.reload_rules()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 2.0)


def _consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


