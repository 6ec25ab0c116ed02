"""What a request must meet beyond its shape (router/api/schemas.py decodes the shape),
checked before anything is written, and the checked requests the domain works on."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, final

import orjson

from adapters.base import Scene
from router.errors import validation_error

if TYPE_CHECKING:  # the schemas import this module's constants
    from router.api.schemas import PaymentCreate, RefundCreate

SCENES: Final = frozenset(scene.value for scene in Scene)

# ISO 4217 codes a Chinese payment router meets; others are refused as unknown.
CURRENCIES: Final = frozenset(
    {
     "CNY", "HKD", "MOP", "TWD", "USD", "EUR", "GBP", "JPY", "KRW", "SGD", "AUD", "CAD", "NZD",
     "CHF", "SEK", "NOK", "DKK", "THB", "MYR", "IDR", "PHP", "VND", "INR", "AED", "SAR", "RUB",
     "BRL", "MXN", "ZAR",
    }
)
MAX_AMOUNT: Final = 10_000_000_000  # 100 million in major units, Alipay's ceiling

_PAYER_TOKEN = re.compile(r"[0-9A-Za-z_\-.:]{1,128}")
WALLETS: Final = ("wechat", "alipay", "unionpay", "other")  # values of payer.wallet


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
    scene: Scene
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


def payment_request(body: PaymentCreate) -> PaymentRequest:
    """The rules a decoded body must also meet (nothing is written before they hold)."""
    if body.currency not in CURRENCIES:
        raise validation_error("currency", "Unknown currency; use an ISO 4217 code like CNY.")
    payer = body.payer or {}
    for name, value in payer.items():
        if name in ("auth_code", "openid", "buyer_id") and not _PAYER_TOKEN.fullmatch(value):
            raise validation_error(f"payer.{name}", f"payer.{name} has invalid characters.")
    if payer.get("wallet", "wechat") not in WALLETS:
        raise validation_error("payer.wallet",
                               f"payer.wallet must be one of {', '.join(WALLETS)}.")
    if body.scene is Scene.QUICKPAY and "auth_code" not in payer:
        raise validation_error("payer.auth_code", "A quickpay payment needs payer.auth_code.")
    return PaymentRequest(
        amount=body.amount,
        currency=body.currency,
        out_trade_no=body.out_trade_no,
        description=body.description or "",
        scene=body.scene,
        method=body.method or None,
        payer=payer,
        notify_url=body.notify_url or None,
        metadata=body.metadata or {},
    )


def refund_request(body: RefundCreate) -> RefundRequest:
    return RefundRequest(amount=body.amount, out_refund_no=body.out_refund_no,
                         reason=body.reason or None)
