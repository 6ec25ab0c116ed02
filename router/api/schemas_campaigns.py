"""Request bodies of the campaigns API, decoded like every other body (`schemas.decode`)
and listed in `schemas.BODIES`. What a Struct cannot say (a window that ends before it
starts, a timezone that does not exist, a reward above its maximum) is checked by
router/promotions/campaign_input.py before anything is written."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Final, Literal

from msgspec import Meta, Struct

from adapters.base import Scene
from router.api.fields import Amount, Currency, Name
from router.api.schemas_promotions import MerchantId

MAX_BUDGET: Final = 10_000_000_000_000  # 100 billion CNY in fen: exact in any script

Clock = Annotated[str, Meta(pattern=r"^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$", description=(
    "Local time `HH:MM` (`24:00` ends a window at midnight)."))]
Weekday = Annotated[int, Meta(ge=1, le=7, description="ISO weekday: 1 is Monday, 7 Sunday.")]
Count = Annotated[int, Meta(ge=1, le=1_000_000_000)]


class _Body(Struct, forbid_unknown_fields=True, frozen=True):
    pass


class RewardSpec(_Body, frozen=True):
    """What a matching payment gets, never more than `max`; a coupon campaign's coupons
    take `amount` off (and name no `type` or `max`)."""

    type: Annotated[Literal["fixed", "percent", "random"], Meta(description=(
        "`fixed`: `amount`; `percent`: `percent_bp` of the payment's amount (rounded "
        "down); `random`: drawn in [`amount` (default 1), `max`]. Required but for "
        "coupons."))] | None = None
    max: Annotated[Amount, Meta(description="Required but for coupons.")] | None = None
    amount: Amount | None = None
    percent_bp: Annotated[int, Meta(ge=1, le=10_000, description=(
        "Basis points of the payment's amount (100 = 1%)."))] | None = None
    min_spend: Annotated[Amount, Meta(description=(
        "Coupons: the least payment amount a coupon is used on."))] | None = None


class WindowSpec(_Body, frozen=True):
    """A weekly window in the campaign's timezone: `start` is in it, `end` is not."""

    start: Clock
    end: Clock
    days: Annotated[list[Weekday], Meta(min_length=1, max_length=7, description=(
        "Omitted: every day."))] | None = None


class ConditionsSpec(_Body, frozen=True):
    """What a payment must meet when it is created. Omitted: no condition."""

    min_amount: Amount | None = None
    currency: Annotated[Currency, Meta(description=(
        "The campaign's currency: its payments', its rewards' and its budget's. "
        "Default CNY."))] | None = None
    methods: Annotated[list[Annotated[str, Meta(min_length=1, max_length=64)]],
                       Meta(min_length=1, max_length=20)] | None = None
    scenes: Annotated[list[Scene], Meta(min_length=1, max_length=10)] | None = None
    merchants: Annotated[list[MerchantId], Meta(min_length=1, max_length=1000, description=(
        "The admin's campaigns: the merchants whose payments it covers (required). A "
        "merchant's own campaign covers its own payments only."))] | None = None
    windows: Annotated[list[WindowSpec], Meta(min_length=1, max_length=50)] | None = None
    timezone: Annotated[str, Meta(min_length=1, max_length=64, description=(
        "An IANA timezone for the windows. Default Asia/Shanghai."))] | None = None


class PerPayerSpec(_Body, frozen=True):
    count: Annotated[Count, Meta(description="Rewards per payer, at most.")] | None = None
    amount: Annotated[Amount, Meta(description="Sum of a payer's rewards, at most.")] | None = None


class LimitsSpec(_Body, frozen=True):
    first_n_payers: Annotated[Count, Meta(description=(
        "At most this many distinct payers are ever rewarded."))] | None = None
    per_payer: PerPayerSpec | None = None
    budget: Annotated[int, Meta(ge=1, le=MAX_BUDGET, description=(
        "Rewards reserved or granted never sum above it; a reward is cut to what is "
        "left."))] | None = None


class CampaignCreate(_Body, frozen=True):
    """A cashback, discount or coupon campaign (`POST /v1/campaigns`)."""

    name: Name
    kind: Literal["cashback", "discount", "coupon"]
    reward: RewardSpec
    conditions: ConditionsSpec | None = None
    limits: LimitsSpec | None = None
    starts_at: Annotated[datetime, Meta(description="RFC 3339. Omitted: now.")] | None = None
    ends_at: Annotated[datetime, Meta(description="RFC 3339. Omitted: never.")] | None = None


class CouponIssue(_Body, frozen=True):
    """A coupon of a coupon campaign for one user (`POST /v1/campaigns/{id}/coupons`)."""

    user: Annotated[str, Meta(pattern=r"^[0-9A-Za-z_-]{1,64}$", description=(
        "The user who may use it: a payment's `payer.user`."))]


CAMPAIGN_BODIES: Final[dict[tuple[str, str], type[Struct]]] = {
    ("POST", "/v1/campaigns"): CampaignCreate,
    ("POST", "/v1/campaigns/{id}/coupons"): CouponIssue,
}
