"""A split's receivers, resolved to their accounts at the payment's rail before anything
is written:

- `service_provider`: the provider that made the payment; its account on that rail is
  the one it gave at creation (`accounts`).
- `merchant`: another sub-merchant the same provider serves; its account is its own
  merchant number there (WeChat `sub_mchid`, Alipay `user_id`).
- `user`: a user of the payment's merchant with a verified real name; its account is its
  wallet on that rail (openid, Alipay user id).

A receiver that cannot be resolved is the caller's error: 422 with the receiver's `param`.
"""

from __future__ import annotations

from typing import Final, final

from router.api.schemas_partners import SplitCreate, SplitReceiverCreate
from router.commerce.providers import Providers
from router.commerce.split_records import Share
from router.domain import Payment
from router.errors import validation_error
from router.merchants import MerchantDirectory
from router.rails.instances import base_rail
from router.social.users import Users

_WALLET_FIELD: Final = {"wechatpay": "openid", "alipay": "user_id"}
_DESCRIPTION: Final = "profit sharing"


@final
class ReceiverBook:
    __slots__ = ("merchants", "providers", "users")

    def __init__(self, providers: Providers, merchants: MerchantDirectory,
                 users: Users) -> None:
        self.providers = providers
        self.merchants = merchants
        self.users = users

    async def resolve(self, payment: Payment, body: SplitCreate) -> tuple[Share, ...]:
        method = await self._method(payment)
        seen: set[tuple[str, str]] = set()
        shares = []
        for i, receiver in enumerate(body.receivers):
            if (receiver.type, receiver.id) in seen:
                raise validation_error(f"receivers[{i}]", "A receiver may appear only once.")
            seen.add((receiver.type, receiver.id))
            account = await self._account(payment, method, receiver, f"receivers[{i}].id")
            shares.append(Share(receiver.type, receiver.id, receiver.amount, account,
                                receiver.description or body.description or _DESCRIPTION))
        return tuple(shares)

    async def _method(self, payment: Payment) -> str:
        """The wallet the payment was paid in: for a provider's payment, the method its
        rail table serves for the provider."""
        if payment.service_provider is None:
            return payment.method
        provider = await self.merchants.get(payment.service_provider)
        table = base_rail(payment.rail.current.rail)
        rails = provider.rails if provider is not None else {}
        return next((m for m, rail in rails.items() if rail == table), payment.method)

    async def _account(self, payment: Payment, method: str, receiver: SplitReceiverCreate,
                       param: str) -> str:
        provider = payment.service_provider
        match receiver.type:
            case "service_provider":
                if receiver.id != provider:
                    raise validation_error(param, "Only the service provider that made the "
                                                  "payment can receive as one.")
                account = (await self.providers.accounts(provider)).get(method)
                if account is None:
                    raise validation_error(param, f"The service provider gave no {method} "
                                                  "account to receive in.")
                return account
            case "merchant":
                if provider is None or receiver.id == payment.merchant_id or (
                        await self.providers.partner_ids(provider, receiver.id) is None):
                    raise validation_error(param, "No such sub-merchant of the service "
                                                  "provider that made the payment.")
                info = await self.providers.sub_merchant(receiver.id)
                account = info.account(method) if info is not None else None
                if account is None:
                    raise validation_error(param, f"That sub-merchant has no {method} "
                                                  "account to receive in.")
                return account
            case "user":
                user = await self.users.verified(payment.merchant_id, receiver.id, param,
                                                 fresh=True)
                wallet = user.wallets.get(method, {}).get(_WALLET_FIELD.get(method, ""))
                if wallet is None:
                    raise validation_error(param, f"The user has no {method} wallet to "
                                                  "receive in.")
                return wallet
