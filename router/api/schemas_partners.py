"""Request bodies of service providers, sub-merchants and profit sharing, decoded like
every other body (`schemas.decode`) and listed in `schemas.BODIES`."""

from __future__ import annotations

from typing import Annotated, Final, Literal

from msgspec import Meta, Struct

from router.api.fields import Amount, Name, Secret, TradeNo, WebhookUrl

_Account = Annotated[str, Meta(pattern=r"^[0-9A-Za-z_.@-]{1,64}$")]
_Method = Annotated[str, Meta(max_length=32)]
_RailName = Annotated[str, Meta(min_length=1, max_length=64)]
_Description = Annotated[str, Meta(min_length=1, max_length=80)]


class _Body(Struct, forbid_unknown_fields=True, frozen=True):
    pass


class ServiceProviderCreate(_Body, frozen=True):
    """A service provider (`POST /v1/admin/service_providers`)."""

    name: Name
    rails: Annotated[dict[_Method, _RailName], Meta(min_length=1, description=(
        "Method (`wechatpay`, `alipay`) → the configured rail table holding the provider's "
        "own credentials; it runs in partner mode for each sub-merchant. Configure it "
        "`dedicated = true` so no other merchant's payments route to it."))]
    accounts: Annotated[dict[_Method, _Account], Meta(description=(
        "Method → the provider's own merchant account at that rail (WeChat Pay mchid, "
        "Alipay 2088... user id), where splits pay a `service_provider` receiver."))] = {}
    webhook_secret: Annotated[Secret, Meta(description=(
        "Signs the events of the payments it makes; omitted: one is generated."))] | None = None
    webhook_url: Annotated[WebhookUrl, Meta(description=(
        "Where those events go when a payment names no notify_url."))] | None = None


class WeChatPartner(_Body, frozen=True):
    sub_mchid: Annotated[str, Meta(pattern=r"^[0-9]{6,32}$", description=(
        "The sub-merchant's WeChat Pay merchant number under the provider."))]


class AlipayPartner(_Body, frozen=True):
    app_auth_token: Annotated[str, Meta(pattern=r"^[0-9A-Za-z_.-]{1,40}$", description=(
        "The token the merchant's authorisation of the provider's app gave (sent as "
        "Alipay's public parameter `app_auth_token`); a credential, never shown again."))]
    user_id: Annotated[str, Meta(pattern=r"^2088[0-9]{12}$", description=(
        "The merchant's Alipay account (2088...), where it receives as a split receiver."
        ))] | None = None


class SubMerchantCreate(_Body, frozen=True):
    """A sub-merchant onboarded by the calling provider (`POST /v1/sub_merchants`)."""

    name: Name
    wechatpay: WeChatPartner | None = None
    alipay: AlipayPartner | None = None
    max_split_bp: Annotated[int, Meta(ge=0, le=10000, description=(
        "The share of a payment (basis points of the amount paid less refunds) its splits "
        "may take; the merchant grants it when it authorises the provider. Default 3000. "
        "Set by the first provider that onboards the merchant."))] | None = None


class SplitReceiverCreate(_Body, frozen=True):
    type: Literal["service_provider", "merchant", "user"]
    id: Annotated[str, Meta(pattern=r"^[0-9A-Za-z_-]{1,64}$", description=(
        "`sp_...` (the provider that made the payment), `mch_...` (a sub-merchant of that "
        "provider) or a user id of the payment's merchant (verified real name)."))]
    amount: Amount
    description: _Description | None = None


class SplitCreate(_Body, frozen=True):
    """Part of a paid payment shared with receivers (`POST /v1/payments/{id}/splits`)."""

    out_split_no: Annotated[TradeNo, Meta(description=(
        "The caller's split number; unique per payment."))]
    receivers: Annotated[list[SplitReceiverCreate], Meta(min_length=1, max_length=50)]
    description: _Description | None = None


PARTNER_BODIES: Final[dict[tuple[str, str], type[Struct]]] = {
    ("POST", "/v1/admin/service_providers"): ServiceProviderCreate,
    ("POST", "/v1/sub_merchants"): SubMerchantCreate,
    ("POST", "/v1/payments/{id}/splits"): SplitCreate,
}
