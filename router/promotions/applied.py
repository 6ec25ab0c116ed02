"""A campaign's reward as a payment carries it: which campaign, which kind, how much.

Written once into the payment's creation blob by the request that reserved it, so a
payment is rendered (and its rail charge built) without a word from the campaign's
shard. What the reward became is read off the payment's own status: the campaign's
counters follow the same status (router/promotions/campaign_keeper.py), so the two
cannot disagree for long, and reading a payment stays one command.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Final, final


class RewardKind(enum.StrEnum):
    CASHBACK = "cashback"  # paid to the payer by a payout once the payment succeeded
    DISCOUNT = "discount"  # taken off what the rail charges
    COUPON = "coupon"  # a user's coupon: taken off what the rail charges, like a discount


class RewardStatus(enum.StrEnum):
    RESERVED = "reserved"
    GRANTED = "granted"
    RELEASED = "released"
    CLAWED_BACK = "clawed_back"


# The payment's status → what its rewards are (payments/domain.py statuses, by value).
_SHOWN: Final[dict[str, RewardStatus]] = {
    "processing": RewardStatus.RESERVED,
    "requires_action": RewardStatus.RESERVED,
    "succeeded": RewardStatus.GRANTED,
    "partially_refunded": RewardStatus.GRANTED,  # part of it clawed back, the rest stands
    "refunded": RewardStatus.CLAWED_BACK,
    "failed": RewardStatus.RELEASED,
    "closed": RewardStatus.RELEASED,
}


@final
@dataclass(frozen=True, slots=True)
class AppliedReward:
    campaign: str
    kind: RewardKind
    amount: int
    coupon: str | None = None  # the coupon's id (kind coupon)

    def to_wire(self) -> list[Any]:
        wire: list[Any] = [self.campaign, self.kind.value, self.amount]
        return [*wire, self.coupon] if self.coupon else wire

    @classmethod
    def from_wire(cls, raw: list[Any]) -> AppliedReward:
        campaign, kind, amount, *coupon = raw
        return cls(campaign, RewardKind(kind), amount, coupon[0] if coupon else None)

    def to_json(self, payment_status: str) -> dict[str, Any]:
        body: dict[str, Any] = {"campaign": self.campaign, "kind": self.kind.value,
                                "amount": self.amount, "status": _SHOWN[payment_status].value}
        if self.coupon:
            body["coupon"] = self.coupon
        return body


_OFF: Final = frozenset({RewardKind.DISCOUNT, RewardKind.COUPON})


def discount_of(rewards: tuple[AppliedReward, ...]) -> int:
    """What the payer is not charged: discounts and coupons."""
    return sum(r.amount for r in rewards if r.kind in _OFF)
