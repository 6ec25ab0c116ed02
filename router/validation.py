"""Request bodies checked up front, before anything is written (API.md: 400 / 422)."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any, Final, final

import orjson

from router.errors import RouterError, validation_error

SCENES: Final = frozenset({"quickpay", "native", "jsapi", "mini_program", "app", "h5"})

# ISO 4217 codes a Chinese payment router meets; others are refused as unknown.
CURRENCIES: Final = frozenset(
    {
     "CNY", "HKD", "MOP", "TWD", "USD", "EUR", "GBP", "JPY", "KRW", "SGD", "AUD", "CAD", "NZD",
     "CHF", "SEK", "NOK", "DKK", "THB", "MYR", "IDR", "PHP", "VND", "INR", "AED", "SAR", "RUB",
     "BRL", "MXN", "ZAR",
    }
)
MAX_AMOUNT: Final = 10_000_000_000  # 100 million in major units, Alipay's ceiling

_TRADE_NO = re.compile(r"[0-9A-Za-z_\-]{1,64}")
_PAYER_TOKEN = re.compile(r"[0-9A-Za-z_\-.:]{1,128}")
WALLETS: Final = ("wechat", "alipay", "unionpay", "other")  # values of payer.wallet
_PAYMENT_FIELDS: Final = frozenset(
    {"amount", "currency", "out_trade_no", "description", "scene", "method", "payer",
     "notify_url", "metadata"}
)
_REFUND_FIELDS: Final = frozenset({"amount", "out_refund_no", "reason"})


def parse_json_object(raw: bytes) -> dict[str, Any]:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise RouterError(400, "invalid_json", "The body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise RouterError(400, "invalid_json", "The body must be a JSON object.")
    return body


def digest(*parts: bytes) -> str:
    """A short, stable hash for comparing requests (not a security boundary)."""
    h = hashlib.blake2b(digest_size=12)
    for part in parts:
        h.update(len(part).to_bytes(4, "big"))
        h.update(part)
    return h.hexdigest()


@final
@dataclass(frozen=True, slots=True)
class PaymentRequest:
    amount: int
    currency: str
    out_trade_no: str
    description: str
    scene: str
    method: str | None
    payer: dict[str, str]
    notify_url: str | None
    metadata: dict[str, str]

    def fingerprint(self) -> str:
        """Equal for requests with identical parameters (the out_trade_no rule)."""
        canon = orjson.dumps(
            [self.amount, self.currency, self.description, self.scene, self.method,
             self.payer, self.notify_url, self.metadata],
            option=orjson.OPT_SORT_KEYS,
        )
        return digest(canon)[:16]


@final
@dataclass(frozen=True, slots=True)
class RefundRequest:
    amount: int
    out_refund_no: str
    reason: str | None

    def fingerprint(self) -> str:
        return digest(orjson.dumps([self.amount, self.reason], option=orjson.OPT_SORT_KEYS))[:16]


def payment_request(body: dict[str, Any]) -> PaymentRequest:
    _no_unknown(body, _PAYMENT_FIELDS)
    scene = _string(body, "scene", required=True)
    if scene not in SCENES:
        raise validation_error("scene", f"Unknown scene; use one of {', '.join(sorted(SCENES))}.")
    payer = _string_map(body, "payer", max_items=10, max_value=256)
    for name, value in payer.items():
        if name in ("auth_code", "openid", "buyer_id") and not _PAYER_TOKEN.fullmatch(value):
            raise validation_error(f"payer.{name}", f"payer.{name} has invalid characters.")
    if payer.get("wallet", "wechat") not in WALLETS:
        raise validation_error("payer.wallet",
                               f"payer.wallet must be one of {', '.join(WALLETS)}.")
    if scene == "quickpay" and "auth_code" not in payer:
        raise validation_error("payer.auth_code", "A quickpay payment needs payer.auth_code.")
    method = _string(body, "method")
    return PaymentRequest(
        amount=_amount(body),
        currency=_currency(body),
        out_trade_no=_trade_no(body, "out_trade_no"),
        description=_string(body, "description", max_len=127) or "",
        scene=scene,
        method=method or None,
        payer=payer,
        notify_url=_url(body, "notify_url"),
        metadata=_string_map(body, "metadata", max_items=20, max_value=500),
    )


def refund_request(body: dict[str, Any]) -> RefundRequest:
    _no_unknown(body, _REFUND_FIELDS)
    return RefundRequest(
        amount=_amount(body),
        out_refund_no=_trade_no(body, "out_refund_no"),
        reason=_string(body, "reason", max_len=80) or None,
    )


# --------------------------------------------------------------------------- fields
def _no_unknown(body: dict[str, Any], known: frozenset[str]) -> None:
    for name in body:
        if name not in known:
            raise validation_error(name, f"Unknown field {name!r}.")


def _amount(body: dict[str, Any]) -> int:
    value = body.get("amount")
    if value is None:
        raise validation_error("amount", "amount is required.")
    if not isinstance(value, int) or isinstance(value, bool):
        raise validation_error("amount", "amount must be an integer of minor units.")
    if value <= 0:
        raise validation_error("amount", "amount must be greater than 0.")
    if value > MAX_AMOUNT:
        raise validation_error("amount", f"amount must be at most {MAX_AMOUNT}.")
    return value


def _currency(body: dict[str, Any]) -> str:
    value = _string(body, "currency", required=True)
    if value not in CURRENCIES:
        raise validation_error("currency", "Unknown currency; use an ISO 4217 code like CNY.")
    return value


def _trade_no(body: dict[str, Any], name: str) -> str:
    value = _string(body, name, required=True)
    if not _TRADE_NO.fullmatch(value):
        raise validation_error(name, f"{name} must be 1-64 characters of [0-9A-Za-z_-].")
    return value


def _string(body: dict[str, Any], name: str, *, required: bool = False, max_len: int = 64) -> str:
    value = body.get(name)
    if value is None:
        if required:
            raise validation_error(name, f"{name} is required.")
        return ""
    if not isinstance(value, str):
        raise validation_error(name, f"{name} must be a string.")
    if required and not value:
        raise validation_error(name, f"{name} must not be empty.")
    if len(value) > max_len:
        raise validation_error(name, f"{name} must be at most {max_len} characters.")
    return value


def _url(body: dict[str, Any], name: str) -> str | None:
    value = _string(body, name, max_len=512)
    if not value:
        return None
    if not value.startswith(("https://", "http://")):
        raise validation_error(name, f"{name} must be an http(s) URL.")
    return value


def _string_map(
    body: dict[str, Any], name: str, *, max_items: int, max_value: int
) -> dict[str, str]:
    value = body.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise validation_error(name, f"{name} must be an object of string values.")
    if len(value) > max_items:
        raise validation_error(name, f"{name} may have at most {max_items} entries.")
    for key, item in value.items():
        if not isinstance(item, str) or len(key) > 40 or len(item) > max_value:
            raise validation_error(
                f"{name}.{key}"[:80],
                f"{name} values must be strings of at most {max_value} characters.",
            )
    return dict(value)
