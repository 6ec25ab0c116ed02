"""Request bodies of the pre-authorisation API, decoded like every other body
(`schemas.decode`) and listed in `schemas.BODIES`."""

from __future__ import annotations

from typing import Annotated, Final, Literal

from msgspec import Meta, Struct

from adapters.base import Scene
from router.api.fields import Amount, Currency, Payer, TradeNo
from router.api.schemas_social import Empty


class _Body(Struct, forbid_unknown_fields=True, frozen=True):
    pass


class DepositFree(_Body, frozen=True):
    """Waive the hold for a payer whose credit score (Alipay Zhima credit, WeChat Pay
    Score) is at least `min_score`."""

    min_score: Annotated[int, Meta(ge=0, le=1000)]


class AuthorizationCreate(_Body, frozen=True):
    """A hold on the payer's funds, or a deposit-free credit promise."""

    out_auth_no: Annotated[TradeNo, Meta(description=(
        "The merchant's authorization number; unique per merchant."))]
    amount: Annotated[Amount, Meta(description="The most that can be captured.")]
    currency: Currency
    method: Literal["alipay", "wechatpay"]
    scene: Scene
    description: Annotated[str, Meta(min_length=1, max_length=127)]
    payer: Payer | None = None
    deposit_free: DepositFree | None = None
    expires_in_s: Annotated[int, Meta(ge=1, le=30 * 86400, description=(
        "Seconds until what is still held is released (`expired`)."))] = 86400


class CaptureCreate(_Body, frozen=True):
    """The one capture of an authorization: a payment of up to the amount held; the rest
    is released."""

    amount: Amount
    out_trade_no: Annotated[TradeNo, Meta(description=(
        "The payment's out_trade_no; unique per merchant, like any payment's."))]
    description: Annotated[str, Meta(min_length=1, max_length=127)] | None = None


AUTHORIZATION_BODIES: Final[dict[tuple[str, str], type[Struct]]] = {
    ("POST", "/v1/authorizations"): AuthorizationCreate,
    ("POST", "/v1/authorizations/{id}/capture"): CaptureCreate,
    ("POST", "/v1/authorizations/{id}/void"): Empty,
}
