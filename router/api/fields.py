"""The field types request bodies share (amounts, currencies, order numbers, payer,
metadata), so each body module takes them from one place."""

from __future__ import annotations

from typing import Annotated, Any, Final

from msgspec import Meta

from router.validation import CURRENCIES, MAX_AMOUNT, WALLETS

# --------------------------------------------------------------------------- fields
Amount = Annotated[int, Meta(ge=1, le=MAX_AMOUNT, description=(
    "Integer minor units of `currency` (`100` is 1.00 CNY)."))]
Currency = Annotated[str, Meta(min_length=3, max_length=3, description=(
    "ISO 4217 code; others are refused as unknown."),
    extra_json_schema={"enum": sorted(CURRENCIES)})]
TradeNo = Annotated[str, Meta(pattern=r"^[0-9A-Za-z_-]{1,64}$")]
Url = Annotated[str, Meta(max_length=512, pattern=r"^(https?://|$)", description=(
    "An http(s) URL; empty means none."))]
_PAYER_TOKEN = {"type": "string", "pattern": "^[0-9A-Za-z_.:-]{1,128}$"}
_PAYER_FIELDS: Final[dict[str, Any]] = {
    "auth_code": {**_PAYER_TOKEN, "description": (
        "The code scanned from the payer (required for `quickpay`).")},
    "openid": {**_PAYER_TOKEN, "description": "The payer's WeChat openid."},
    "buyer_id": {**_PAYER_TOKEN, "description": "The payer's Alipay buyer id."},
    "user": {"type": "string", "pattern": "^[0-9A-Za-z_-]{1,64}$", "description": (
        "The payer as one of the platform's users (`PUT /v1/users/{id}`): who a campaign "
        "rewards, and where its cashback is paid.")},
    "client_ip": {"type": "string", "maxLength": 256},
    "wallet": {"type": "string", "enum": list(WALLETS), "description": (
        "The payer's wallet, when the payer chose it (e.g. at a checkout offering several). "
        "With no `method`, the payment goes to this wallet's rail; otherwise the wallet is "
        "read from the payer code's shape, an `openid` or a `buyer_id`.")},
}
Payer = Annotated[dict[Annotated[str, Meta(max_length=40)],
                       Annotated[str, Meta(max_length=256)]],
                  Meta(max_length=10, description=(
                      "Payer details; which ones are needed depends on the scene and rail."),
                      extra_json_schema={"properties": _PAYER_FIELDS})]
Metadata = Annotated[dict[Annotated[str, Meta(max_length=40)],
                          Annotated[str, Meta(max_length=500)]],
                     Meta(max_length=20, description=(
                         "Merchant's own key/value strings, returned as given."))]
Secret = Annotated[str, Meta(min_length=16, max_length=200)]
Name = Annotated[str, Meta(min_length=1, max_length=100)]
WebhookUrl = Annotated[str, Meta(pattern=r"^https?://", max_length=512)]
