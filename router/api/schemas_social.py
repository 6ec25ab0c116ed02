"""Request bodies of the social-payments API (users, payouts, red packets, transfers),
decoded like every other body (`schemas.decode`) and listed in `schemas.BODIES`."""

from __future__ import annotations

from typing import Annotated, Final, Literal

from msgspec import Meta, Struct

from adapters.base import Scene
from router.api.fields import Amount, Currency, Payer, TradeNo

UserId = Annotated[str, Meta(pattern=r"^[0-9A-Za-z_-]{1,64}$", description=(
    "The platform's own id of its user."))]
_Identity = Annotated[str, Meta(pattern=r"^[0-9A-Za-z_.:-]{1,128}$")]
RealName = Annotated[str, Meta(min_length=1, max_length=64, description=(
    "The user's real name: personal data, masked in every answer and never logged."))]
PayoutMethod = Literal["wechatpay", "alipay", "bank"]


class _Body(Struct, forbid_unknown_fields=True, frozen=True):
    pass


class WeChatWallet(_Body, frozen=True):
    openid: _Identity


class AlipayWallet(_Body, frozen=True):
    user_id: _Identity


class Wallets(_Body, frozen=True):
    wechatpay: WeChatWallet | None = None
    alipay: AlipayWallet | None = None


class RealNameStatus(_Body, frozen=True):
    status: Literal["verified", "unverified"]
    method: Literal["bank_card", "id_card", "phone"] | None = None
    name: RealName | None = None


class UserPut(_Body, frozen=True):
    """A platform's user, created or replaced (`PUT /v1/users/{user_id}`)."""

    wallets: Wallets
    real_name: RealNameStatus


class Payee(_Body, frozen=True):
    """Exactly one of the fields: a registered user, or a rail identity."""

    user: UserId | None = None
    openid: _Identity | None = None
    alipay_user_id: _Identity | None = None
    bank_account: Annotated[str, Meta(pattern=r"^[0-9]{8,32}$", description=(
        "A bank account number (the `bank` method)."))] | None = None


class PayoutCreate(_Body, frozen=True):
    amount: Amount
    currency: Currency
    out_payout_no: Annotated[TradeNo, Meta(description=(
        "The merchant's payout number; unique per merchant."))]
    payee: Payee
    description: Annotated[str, Meta(min_length=1, max_length=100)]
    name: Annotated[RealName, Meta(description=(
        "The payee's real name, checked by the rail against the account. Needed from "
        "2,000.00 CNY when the payee is not a verified user."))] | None = None
    method: PayoutMethod | None = None


class Funding(_Body, frozen=True):
    """How the sender pays: a normal payment in any wallet scene."""

    scene: Scene
    method: Annotated[str, Meta(max_length=64)] | None = None
    payer: Payer | None = None


ExpiresIn = Annotated[int, Meta(ge=1, le=7 * 86400, description=(
    "Seconds until what was not taken goes back to the sender."))]


class RedPacketCreate(_Body, frozen=True):
    out_red_packet_no: TradeNo
    sender: UserId
    amount: Amount
    currency: Literal["CNY"]
    count: Annotated[int, Meta(description="Shares, 1 to 100.")]
    split: Literal["random", "equal"]
    funding: Funding
    wishing: Annotated[str, Meta(max_length=128)] | None = None
    expires_in_s: ExpiresIn = 86400


class GrabCreate(_Body, frozen=True):
    user: UserId


class TransferCreate(_Body, frozen=True, rename={"sender": "from"}):
    out_transfer_no: TradeNo
    sender: Annotated[UserId, Meta(description="The sending user.")]
    to: UserId
    amount: Amount
    currency: Literal["CNY"]
    funding: Funding
    message: Annotated[str, Meta(max_length=128)] | None = None
    expires_in_s: ExpiresIn = 86400


class Empty(Struct, frozen=True):
    """Empty, or any JSON object (nothing in it is read)."""


SOCIAL_BODIES: Final[dict[tuple[str, str], type[Struct]]] = {
    ("PUT", "/v1/users/{user_id}"): UserPut,
    ("POST", "/v1/payouts"): PayoutCreate,
    ("POST", "/v1/red_packets"): RedPacketCreate,
    ("POST", "/v1/red_packets/{id}/grabs"): GrabCreate,
    ("POST", "/v1/transfers"): TransferCreate,
    ("POST", "/v1/transfers/{id}/accept"): Empty,
    ("POST", "/v1/transfers/{id}/decline"): Empty,
}
