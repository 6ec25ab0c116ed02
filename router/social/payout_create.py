"""Creating a payout from the API: the payee resolved to a rail and its identity there,
the real-name rules, the natural key (out_payout_no), then the first send."""

from __future__ import annotations

from typing import final

import orjson

from adapters.base import RailError
from router.api.schemas_social import PayoutCreate
from router.clock import Clock
from router.errors import RouterError, validation_error
from router.merchants import Merchant
from router.payments.replies import Reply, rail_refused_request
from router.rails.client import RailClient
from router.routing import Router
from router.settings import Settings
from router.social.payouts import PayoutSender
from router.social.records import LARGE_PAYOUT, Payout, PayoutOrder, PayoutState, PayoutStatus
from router.social.users import Users, real_name_required
from router.store import keys
from router.store.outcomes import Existing, NaturalKeyConflict, Recorded
from router.store.store import Store
from router.validation import CURRENCIES, digest

# The payee field each method pays to, and the method a rail identity implies.
_METHOD_OF_IDENTITY = {"openid": "wechatpay", "alipay_user_id": "alipay", "bank_account": "bank"}
_USER_WALLET = {"wechatpay": "openid", "alipay": "user_id"}


def rail_for(rails: RailClient, router: Router, method: str) -> str | None:
    """The configured rail that pays out by `method`: the rail of that name, else the
    first running that adapter."""
    if rails.has(method):
        return method
    return next((r for r in rails.names() if router.kind(r) == method), None)


@final
class PayoutDesk:
    __slots__ = ("clock", "rails", "router", "sender", "settings", "store", "users")

    def __init__(self, store: Store, sender: PayoutSender, users: Users, rails: RailClient,
                 router: Router, settings: Settings, clock: Clock) -> None:
        self.store = store
        self.sender = sender
        self.users = users
        self.rails = rails
        self.router = router
        self.settings = settings
        self.clock = clock

    async def create(self, merchant: Merchant, body: PayoutCreate) -> Reply:
        if body.currency not in CURRENCIES:
            raise validation_error("currency", "Unknown currency; use an ISO 4217 code like CNY.")
        payee, method, identity, name = await self._payee(merchant, body)
        rail = rail_for(self.rails, self.router, method)
        if rail is None:
            raise validation_error("method", f"No rail that pays out by {method} is configured.")
        now = self.clock.now_ms()
        pid = keys.spread_id("po", self.store.users.spread, merchant.id, body.out_payout_no)
        order = PayoutOrder(merchant.id, body.out_payout_no, body.currency, payee, method,
                            rail, identity, body.description, now, name=name)
        payout = Payout(pid, order, body.amount, PayoutStatus.PROCESSING, 1, now, PayoutState())
        try:
            self.rails.build(rail, self.sender.op(payout))  # refusals before anything is written
        except RailError as err:
            raise rail_refused_request(err) from None
        fingerprint = digest(orjson.dumps([body.amount, body.currency, payee, method,
                                           body.description, name]))[:16]
        first_due = now + int(self.settings.sweeper.first_check_s * 1000)
        match await self.store.payouts.create(payout, fingerprint, first_due):
            case Recorded():
                sent = await self.sender.send(payout)
                return Reply(201, sent.render())
            case Existing():
                existing = await self.store.payouts.load(pid)
                assert existing is not None
                return Reply(200, existing.render())
            case NaturalKeyConflict():
                raise RouterError(409, "out_payout_no_used",
                                  "out_payout_no was already used with different parameters.",
                                  param="out_payout_no")

    async def _payee(self, merchant: Merchant, body: PayoutCreate
                     ) -> tuple[dict[str, str], str, str, str | None]:
        """(payee as shown, method, identity at the rail, real name to carry)."""
        given = {f: v for f in ("user", "openid", "alipay_user_id", "bank_account")
                 if (v := getattr(body.payee, f)) is not None}
        if len(given) != 1:
            raise validation_error("payee", "Give exactly one of payee.user, payee.openid, "
                                            "payee.alipay_user_id, payee.bank_account.")
        (field, value), = given.items()
        large = body.amount >= LARGE_PAYOUT and body.currency == "CNY"
        if field != "user":
            method = _METHOD_OF_IDENTITY[field]
            if body.method is not None and body.method != method:
                raise validation_error("method", f"payee.{field} is paid by {method}.")
            if large and body.name is None:
                raise validation_error("name", "A payout of 2,000.00 CNY or more must carry "
                                               "the payee's real name.")
            return {field: value}, method, value, body.name
        user = await self.users.verified(merchant.id, value, "payee.user", fresh=True)
        methods = [m for m in ("wechatpay", "alipay") if m in user.wallets]
        method = body.method or (methods[0] if methods else "")
        if method not in user.wallets:
            raise validation_error("method" if body.method else "payee.user",
                                   f"The user has no {body.method or 'wallet'} to pay to.")
        identity = user.wallets[method][_USER_WALLET[method]]
        name = body.name or (user.name if large else None)
        if large and name is None:
            raise real_name_required("payee.user")
        return {"user": value}, method, identity, name
