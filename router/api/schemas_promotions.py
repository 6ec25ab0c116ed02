"""Request bodies of the promotions API (policies, merchant points), decoded like every
other body (`schemas.decode`) and listed in `schemas.BODIES`."""

from __future__ import annotations

from typing import Annotated, Final

from msgspec import Meta, Struct

MerchantId = Annotated[str, Meta(pattern=r"^mch_[0-9A-Za-z]{1,64}$", description=(
    "A merchant id (`mch_...`)."))]


class _Body(Struct, forbid_unknown_fields=True, frozen=True):
    pass


class QuotaPut(_Body, frozen=True):
    """At most `count` calls per merchant in a window of `per_s` seconds that opens at the
    merchant's first call."""

    count: Annotated[int, Meta(ge=1, le=1_000_000_000)]
    per_s: Annotated[int, Meta(ge=1, le=31_536_000, description="Window length, seconds.")]


class PolicyPut(_Body, frozen=True):
    """The whole policy of an action (what is left out is not enforced)."""

    whitelist: Annotated[list[MerchantId], Meta(max_length=100_000, description=(
        "Only these merchants may take the action; empty or absent: every merchant."
    ))] | None = None
    quota: QuotaPut | None = None


class RedemptionCreate(_Body, frozen=True):
    """Points to take from the merchant's balance for a reward."""

    points: Annotated[int, Meta(ge=1, le=1_000_000_000)]
    reward: Annotated[str, Meta(min_length=1, max_length=128, description=(
        "What the points are exchanged for, as the merchant names it."))]


PROMOTION_BODIES: Final[dict[tuple[str, str], type[Struct]]] = {
    ("PUT", "/v1/admin/policies/{action}"): PolicyPut,
    ("POST", "/v1/points/redemptions"): RedemptionCreate,
}
