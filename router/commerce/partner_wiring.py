"""Service providers, partner mode and profit sharing, wired for one gateway process."""

from __future__ import annotations

from dataclasses import dataclass
from typing import final

from router.clock import Clock
from router.commerce.partner_rails import PartnerRails
from router.commerce.providers import Providers
from router.commerce.split_receivers import ReceiverBook
from router.commerce.split_returns import SplitReturns
from router.commerce.splits import Splits
from router.merchants import MerchantDirectory
from router.payments import Payments
from router.rails.client import RailClient
from router.settings import Settings
from router.social.users import Users
from router.store.store import Store


@final
@dataclass(frozen=True, slots=True)
class Partners:
    providers: Providers
    splits: Splits

    @classmethod
    def wire(cls, store: Store, merchants: MerchantDirectory, payments: Payments,
             rails: RailClient, users: Users, settings: Settings, clock: Clock) -> Partners:
        providers = Providers(store.providers, merchants)
        # Partner-mode instances are built from the provider's rail table when first met.
        rails.instance_source = PartnerRails(providers, merchants, settings).build
        # A refund of shared money takes it back from the receivers first.
        payments.refunds.shares_back = SplitReturns(store, rails, clock).take_back
        receivers = ReceiverBook(providers, merchants, users)
        return cls(providers=providers,
                   splits=Splits(store, rails, providers, receivers, settings, clock))
