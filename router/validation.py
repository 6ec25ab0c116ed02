"""What a request must meet beyond its shape (router/api/schemas.py decodes the shape),
checked before anything is written, and the checked requests the domain works on."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, final

import orjson

from adapters.base import Scene
from adapters.currencies import exponent
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
_USER_ID = re.compile(r"[0-9A-Za-z_\-]{1,64}")  # a platform's user (PUT /v1/users/{id})
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
    coupons: tuple[str, ...] = ()  # the payer's coupons to use (promotions/coupons.py)

    def fingerprint(self) -> str:
        """Equal for requests with identical parameters (the out_trade_no rule)."""
        fields: list[object] = [self.amount, self.currency, self.description, self.scene,
                                self.method, self.payer, self.notify_url, self.metadata]
        if self.coupons:  # only then: fingerprints of payments without stay as they were
            fields.append(sorted(self.coupons))
        canon = orjson.dumps(fields, option=orjson.OPT_SORT_KEYS)
        return digest(canon)[:16]


@final
@dataclass(frozen=True, slots=True)
class RefundRequest:
    amount: int
    out_refund_no: str
    reason: str | None

    def fingerprint(self) -> str:
        return digest(orjson.dumps([self.amount, self.reason], option=orjson.OPT_SORT_KEYS))[:16]


def max_amount(currency: str) -> int:
    """100 million major units in the currency's minor units (ISO 4217 exponent: 10^8 yen,
    10^10 fen, 10^11 fils)."""
    return int(100_000_000 * 10 ** exponent(currency))


def check_currency(currency: str, settlement_currency: str | None) -> None:
    """A cross-border merchant prices in its settlement currency (or CNY); a domestic one
    takes what the rails take."""
    if settlement_currency and currency not in ("CNY", settlement_currency):
        raise validation_error("currency", f"This merchant takes {settlement_currency} or CNY, "
                                           f"not {currency}.")


def payment_request(body: PaymentCreate) -> PaymentRequest:
    """The rules a decoded body must also meet (nothing is written before they hold)."""
    if body.currency not in CURRENCIES:
        raise validation_error("currency", "Unknown currency; use an ISO 4217 code like CNY.")
    if body.amount > max_amount(body.currency):
        raise validation_error("amount", f"At most {max_amount(body.currency)} minor units of "
                                         f"{body.currency}.")
    payer = body.payer or {}
    for name, value in payer.items():
        if name in ("auth_code", "openid", "buyer_id") and not _PAYER_TOKEN.fullmatch(value):
            raise validation_error(f"payer.{name}", f"payer.{name} has invalid characters.")
    if "user" in payer and not _USER_ID.fullmatch(payer["user"]):
        raise validation_error("payer.user", "payer.user is a platform user id, "
                                             "[0-9A-Za-z_-]{1,64}.")
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
        coupons=_coupons(body.coupons),
    )


def _coupons(coupons: list[str] | None) -> tuple[str, ...]:
    if coupons and len(set(coupons)) != len(coupons):
        raise validation_error("coupons", "A coupon is named twice.")
    return tuple(coupons or ())


def refund_request(body: RefundCreate) -> RefundRequest:
    return RefundRequest(amount=body.amount, out_refund_no=body.out_refund_no,
                         reason=body.reason or None)
