"""The pre-authorisation domain's parts, wired for one gateway process."""

from __future__ import annotations

from dataclasses import dataclass
from typing import final

from router.clock import Clock
from router.commerce.authorization_capture import Captures
from router.commerce.authorization_release import Releases
from router.commerce.authorization_worker import AuthorizationWorker
from router.commerce.authorizations import Authorizations
from router.payments import Payments
from router.rails.client import RailClient
from router.routing import Router
from router.settings import Settings
from router.store.store import Store


@final
@dataclass(frozen=True, slots=True)
class Preauth:
    desk: Authorizations
    captures: Captures
    releases: Releases
    worker: AuthorizationWorker

    @classmethod
    def wire(cls, store: Store, payments: Payments, rails: RailClient, router: Router,
             settings: Settings, clock: Clock) -> Preauth:
        desk = Authorizations(store, rails, router, settings, clock)
        captures = Captures(store, desk, payments, settings, clock)
        releases = Releases(desk)
        payments.transitions.listeners.append(captures.payment_settled)
        return cls(desk=desk, captures=captures, releases=releases,
                   worker=AuthorizationWorker(store, desk, captures, releases, clock))
