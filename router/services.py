"""The shared resources of one gateway process, reachable from handlers by an AppKey."""

from __future__ import annotations

from dataclasses import dataclass
from typing import final

import aiohttp
from aiohttp import web

from router.clock import Clock
from router.commerce.authorization_wiring import Preauth
from router.commerce.invoice_wiring import Invoicing
from router.commerce.partner_wiring import Partners
from router.ledger.chainer import JournalChainer
from router.merchants import MerchantDirectory
from router.ops.metrics import Metrics
from router.payments import Payments
from router.promotions.campaign_wiring import Campaigns
from router.promotions.wiring import Promotions
from router.rails.client import RailClient
from router.routing import HealthBook, Router
from router.settings import Settings
from router.social.wiring import Social
from router.store.store import Store
from router.workers.sweeper import Sweeper
from router.workers.webhooks import WebhookDispatcher


@final
@dataclass(slots=True)
class Services:
    settings: Settings
    metrics: Metrics
    clock: Clock
    store: Store
    merchants: MerchantDirectory
    session: aiohttp.ClientSession
    rails: RailClient
    router: Router
    payments: Payments
    social: Social
    preauth: Preauth
    partners: Partners
    invoices: Invoicing
    promotions: Promotions
    campaigns: Campaigns
    health: HealthBook
    sweeper: Sweeper
    webhooks: WebhookDispatcher
    journal: JournalChainer


SERVICES = web.AppKey("services", Services)
SETTINGS = web.AppKey("settings", Settings)
METRICS = web.AppKey("metrics", Metrics)
CLOCK = web.AppKey("clock", Clock)
