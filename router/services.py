"""The shared resources of one gateway process, reachable from handlers by an AppKey."""

from __future__ import annotations

from dataclasses import dataclass
from typing import final

import aiohttp
from aiohttp import web

from adapters.base import Adapter
from router.engine import Engine
from router.merchants import MerchantDirectory
from router.metrics import Metrics
from router.railclient import RailClient
from router.refunds import Refunds
from router.routing import HealthBook, Router
from router.settings import Settings
from router.store.store import Store
from router.sweeper import Sweeper
from router.webhooks import WebhookDispatcher


@final
@dataclass(slots=True)
class Services:
    settings: Settings
    metrics: Metrics
    store: Store
    merchants: MerchantDirectory
    session: aiohttp.ClientSession
    adapters: dict[str, Adapter]
    rails: RailClient
    router: Router
    engine: Engine
    health: HealthBook
    refunds: Refunds
    sweeper: Sweeper
    webhooks: WebhookDispatcher


SERVICES = web.AppKey("services", Services)
SETTINGS = web.AppKey("settings", Settings)
METRICS = web.AppKey("metrics", Metrics)
