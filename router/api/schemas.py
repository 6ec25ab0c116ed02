"""The request bodies of the API as msgspec Structs: decoded in one strict pass (unknown
fields refused), and the source of the OpenAPI document's request schemas
(`router/api/openapi.py`), so the spec cannot drift from what the handlers decode.

`BODIES` names the Struct each route decodes; `decode` turns msgspec's errors into
API.md's envelope: 400 `invalid_json` for a body that is not a JSON object, else 422
`validation_error` whose `param` is the field at fault.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Final, Literal, TypeVar

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

from adapters.base import Scene
from router.api.fields import (
    Amount,
    Currency,
    Metadata,
    Name,
    Payer,
    Secret,
    TradeNo,
    Url,
    WebhookUrl,
)
from router.api.schemas_authorizations import AUTHORIZATION_BODIES
from router.api.schemas_campaigns import CAMPAIGN_BODIES
from router.api.schemas_invoices import INVOICE_BODIES
from router.api.schemas_partners import PARTNER_BODIES
from router.api.schemas_promotions import PROMOTION_BODIES
from router.api.schemas_social import SOCIAL_BODIES
from router.errors import RouterError, validation_error

T = TypeVar("T")

class _Body(Struct, forbid_unknown_fields=True, frozen=True):
    pass


# --------------------------------------------------------------------------- payments
class PaymentCreate(_Body, frozen=True):
    """A payment to create (`POST /v1/payments`)."""

    amount: Amount
    currency: Currency
    out_trade_no: Annotated[TradeNo, Meta(description=(
        "The merchant's order number; unique per merchant."))]
    scene: Scene
    description: Annotated[str, Meta(max_length=127)] | None = None
    method: Annotated[str, Meta(max_length=64, description=(
        "An installed adapter (`wechatpay`, `alipay`, `bank`, ...) that takes the scene. "
        "Omitted, null or empty: the router chooses."))] | None = None
    payer: Payer | None = None
    notify_url: Url | None = None
    metadata: Metadata | None = None
    coupons: Annotated[list[Annotated[str, Meta(pattern=r"^cpn_[0-9A-Za-z]{1,64}$")]], Meta(
        min_length=1, max_length=5, description=(
            "The payer's coupons (`payer.user` is their user): each takes its amount "
            "off, one per campaign."))] | None = None


class RefundCreate(_Body, frozen=True):
    """A refund of part or all of a paid payment."""

    amount: Amount
    out_refund_no: Annotated[TradeNo, Meta(description=(
        "The merchant's refund number; unique per payment."))]
    reason: Annotated[str, Meta(max_length=80)] | None = None


class Close(Struct, frozen=True):
    """Empty, or any JSON object (nothing in it is read)."""


# --------------------------------------------------------------------------- admin
class RateLimit(_Body, frozen=True):
    """A token bucket: `rps` requests per second, bursts up to `burst`."""

    rps: Annotated[float, Meta(gt=0)]
    burst: Annotated[int, Meta(ge=1)]


class MerchantCreate(_Body, frozen=True):
    name: Name
    webhook_secret: Annotated[Secret, Meta(description=(
        "Omitted or null: one is generated."))] | None = None


class MerchantUpdate(_Body, frozen=True):
    """Only the fields given change."""

    name: Name | UnsetType = UNSET
    webhook_url: Annotated[WebhookUrl | None, Meta(description=(
        "An http(s) URL, or null to remove it."))] | UnsetType = UNSET
    webhook_secret: Secret | UnsetType = UNSET
    rate_limit: Annotated[RateLimit | None, Meta(description=(
        "null: back to the gateway default."))] | UnsetType = UNSET
    payer_rate_limit: Annotated[RateLimit | None, Meta(description=(
        "null: back to the gateway default."))] | UnsetType = UNSET
    rails: Annotated[dict[str, str] | None, Meta(description=(
        "Replaces the mapping; null or {} clears it. Each value must be a configured rail "
        "running the adapter named by its key."))] | UnsetType = UNSET
    settlement_currency: Annotated[Currency | None, Meta(description=(
        "Cross-border: the currency the merchant prices in and is settled in (its payments "
        "are in it or in CNY; payers pay CNY). null: a domestic merchant."))] | UnsetType = UNSET


# --------------------------------------------------------------------------- interop
class CheckoutCodeCreate(_Body, frozen=True):
    """One code any wallet can scan."""

    type: Annotated[Literal["static", "order"], Meta(description=(
        "`static`: a counter code, the payer enters the amount, each payment its own. "
        "`order`: one payment of a fixed amount."))]
    currency: Currency
    amount: Annotated[Amount, Meta(description="Order codes only (required there).")] | None = None
    out_trade_no: Annotated[TradeNo, Meta(description=(
        "Order codes only (required there): the one payment's out_trade_no."))] | None = None
    description: Annotated[str, Meta(max_length=127)] | None = None
    notify_url: Url | None = None
    metadata: Metadata | None = None


class ShareLinkCreate(_Body, frozen=True):
    expires_in_s: Annotated[int, Meta(ge=60, le=86400)] = 1800


# The Struct each route decodes: the OpenAPI document's request schemas come from here,
# and a test checks that each documented route names its Struct.
BODIES: Final[dict[tuple[str, str], type[Struct]]] = {
    ("POST", "/v1/payments"): PaymentCreate,
    ("POST", "/v1/payments/{id}/close"): Close,
    ("POST", "/v1/payments/{id}/refunds"): RefundCreate,
    ("POST", "/v1/admin/merchants"): MerchantCreate,
    ("PATCH", "/v1/admin/merchants/{id}"): MerchantUpdate,
    ("POST", "/v1/checkout_codes"): CheckoutCodeCreate,
    ("POST", "/v1/payments/{id}/share_link"): ShareLinkCreate,
    **SOCIAL_BODIES,
    **AUTHORIZATION_BODIES,
    **PARTNER_BODIES,
    **PROMOTION_BODIES,
    **CAMPAIGN_BODIES,
    **INVOICE_BODIES,
}

# --------------------------------------------------------------------------- decoding
_DECODERS: dict[type[Any], msgspec.json.Decoder[Any]] = {}
_AT = re.compile(r" - at `\$(?P<path>[^`]*)`$")
_FIELD = re.compile(r"(?:missing required|unknown) field `(?P<field>[^`]+)`")


def decode(raw: bytes, body_type: type[T], *, empty_ok: bool = False) -> T:
    """`raw` as `body_type`; an empty body is `{}` when `empty_ok`."""
    if empty_ok and not raw.strip():
        raw = b"{}"
    decoder = _DECODERS.get(body_type)
    if decoder is None:
        decoder = _DECODERS[body_type] = msgspec.json.Decoder(body_type)
    try:
        decoded: T = decoder.decode(raw)
    except msgspec.ValidationError as exc:
        raise _refusal(str(exc)) from None
    except msgspec.DecodeError:
        raise RouterError(400, "invalid_json", "The body is not valid JSON.") from None
    return decoded


def convert(obj: dict[str, Any], body_type: type[T]) -> T:
    """An already-parsed object as `body_type`, refused like a body."""
    try:
        return msgspec.convert(obj, body_type)
    except msgspec.ValidationError as exc:
        raise _refusal(str(exc)) from None


def _refusal(message: str) -> RouterError:
    at = _AT.search(message)
    path = at.group("path") if at else ""
    text = message[: at.start()] if at else message
    if not path and text.startswith("Expected `object`"):
        return RouterError(400, "invalid_json", "The body must be a JSON object.")
    field = _FIELD.search(text)
    parts = [p for p in re.sub(r"\[[^\]]*\]", "", path).split(".") if p]
    if field:
        parts.append(field.group("field"))
    param = ".".join(parts) or "body"
    return validation_error(param, f"{param}: {text}.")
