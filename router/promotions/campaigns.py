"""A campaign as the gateway holds it: whose payments it is for, what it gives, its
limits, and whether a payment meets its conditions at the moment it is created.

Matching runs in memory on every payment created while campaigns are live, so it
checks the cheap conditions (merchant, currency, amount, method, scene) before the
one that needs the local time in the campaign's timezone (its weekly windows).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, final
from zoneinfo import ZoneInfo

import orjson

from router.domain import Payment, iso
from router.promotions.applied import RewardKind

DAY_MS: Final = 86_400_000
DEFAULT_TIMEZONE: Final = "Asia/Shanghai"
ADMIN: Final = "admin"  # the owner of a campaign the admin made


class CampaignStatus(enum.StrEnum):
    ACTIVE = "active"
    SCHEDULED = "scheduled"
    EXHAUSTED = "exhausted"
    ENDED = "ended"


class RewardType(enum.StrEnum):
    FIXED = "fixed"
    PERCENT = "percent"
    RANDOM = "random"  # drawn in [amount or 1, max]


@final
@dataclass(frozen=True, slots=True)
class Window:
    """A weekly window in the campaign's timezone: `start_ms` (since local midnight) is
    in it, `end_ms` is not (24:00 is 86 400 000)."""

    days: frozenset[int]  # ISO weekdays, 1 = Monday
    start_ms: int
    end_ms: int

    def holds(self, weekday: int, ms_of_day: int) -> bool:
        return weekday in self.days and self.start_ms <= ms_of_day < self.end_ms

    def to_json(self) -> dict[str, Any]:
        return {"days": sorted(self.days), "start": _hhmm(self.start_ms),
                "end": _hhmm(self.end_ms)}


@final
@dataclass(frozen=True, slots=True)
class Reward:
    type: RewardType
    max: int
    amount: int | None = None  # fixed: the reward; random: the least it draws
    percent_bp: int | None = None  # percent: of the payment's amount, in basis points

    def wanted(self, payment_amount: int, draw: int) -> int:
        """The reward for a payment before the campaign's limits cut it."""
        match self.type:
            case RewardType.FIXED:
                base = self.amount or 0
            case RewardType.PERCENT:
                base = payment_amount * (self.percent_bp or 0) // 10_000
            case RewardType.RANDOM:
                least = self.amount or 1
                base = least + draw % (self.max - least + 1)
        return min(base, self.max)

    def most(self, payment_amount: int) -> int:
        """The largest reward this payment could get (whatever the draw)."""
        if self.type is RewardType.RANDOM:
            return self.max
        return self.wanted(payment_amount, 0)

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"type": self.type.value, "max": self.max}
        if self.amount is not None:
            body["amount"] = self.amount
        if self.percent_bp is not None:
            body["percent_bp"] = self.percent_bp
        return body


@final
@dataclass(frozen=True, slots=True)
class Figures:
    """What the campaign's shard says now."""

    spent: int = 0  # rewards reserved or granted
    payers: int = 0  # distinct payers holding a reward
    ended_ms: int = 0  # ended early by `POST /v1/campaigns/{id}/end` (0: not)


@final
@dataclass(frozen=True, slots=True)
class Campaign:
    id: str
    name: str
    kind: RewardKind
    reward: Reward
    currency: str  # the campaign's money (rewards, budget, min_amount) and its payments'
    owner: str  # the merchant that made it, or ADMIN
    merchants: frozenset[str]
    # A merchant's campaign covers the payments made in its scope only (Merchant.scope:
    # a service provider acting for it has a scope of its own).
    scope: str | None
    min_amount: int = 0
    methods: frozenset[str] | None = None
    scenes: frozenset[str] | None = None
    windows: tuple[Window, ...] = ()
    timezone: str = DEFAULT_TIMEZONE
    first_n: int = 0  # 0: no limit (likewise below)
    per_payer_count: int = 0
    per_payer_amount: int = 0
    budget: int = 0
    starts_ms: int = 0
    ends_ms: int = 0
    created_ms: int = 0

    def matches(self, merchant_id: str, scope: str, payment: Payment, at_ms: int) -> bool:
        """Whether `payment`, created at `at_ms`, meets every condition."""
        if (merchant_id not in self.merchants or (self.scope is not None and scope != self.scope)
                or payment.currency != self.currency or payment.amount < self.min_amount
                or at_ms < self.starts_ms or (self.ends_ms and at_ms >= self.ends_ms)):
            return False
        if self.methods is not None and payment.method not in self.methods:
            return False
        if self.scenes is not None and payment.scene not in self.scenes:
            return False
        if not self.windows:
            return True
        weekday, ms_of_day = local_time(self.timezone, at_ms)
        return any(w.holds(weekday, ms_of_day) for w in self.windows)

    def status(self, figures: Figures, now_ms: int) -> CampaignStatus:
        if figures.ended_ms or (self.ends_ms and now_ms >= self.ends_ms):
            return CampaignStatus.ENDED
        if now_ms < self.starts_ms:
            return CampaignStatus.SCHEDULED
        if self.budget and figures.spent >= self.budget:
            return CampaignStatus.EXHAUSTED
        return CampaignStatus.ACTIVE

    # -- stored: the definition's JSON (immutable; the counters live beside it)
    def pack(self) -> bytes:
        return orjson.dumps({
            "name": self.name, "kind": self.kind.value, "reward": self.reward.to_json(),
            "currency": self.currency, "owner": self.owner,
            "merchants": sorted(self.merchants), "scope": self.scope,
            "min_amount": self.min_amount,
            "methods": sorted(self.methods) if self.methods is not None else None,
            "scenes": sorted(self.scenes) if self.scenes is not None else None,
            "windows": [[sorted(w.days), w.start_ms, w.end_ms] for w in self.windows],
            "timezone": self.timezone, "first_n": self.first_n,
            "per_payer": [self.per_payer_count, self.per_payer_amount],
            "budget": self.budget, "starts_ms": self.starts_ms, "ends_ms": self.ends_ms,
            "created_ms": self.created_ms,
        })

    @classmethod
    def unpack(cls, campaign_id: str, raw: bytes) -> Campaign:
        d = orjson.loads(raw)
        r = d["reward"]
        methods, scenes = d["methods"], d["scenes"]
        return cls(
            id=campaign_id, name=d["name"], kind=RewardKind(d["kind"]),
            reward=Reward(RewardType(r["type"]), r["max"], r.get("amount"),
                          r.get("percent_bp")),
            currency=d["currency"], owner=d["owner"], merchants=frozenset(d["merchants"]),
            scope=d["scope"], min_amount=d["min_amount"],
            methods=frozenset(methods) if methods is not None else None,
            scenes=frozenset(scenes) if scenes is not None else None,
            windows=tuple(Window(frozenset(days), start, end)
                          for days, start, end in d["windows"]),
            timezone=d["timezone"], first_n=d["first_n"], per_payer_count=d["per_payer"][0],
            per_payer_amount=d["per_payer"][1], budget=d["budget"],
            starts_ms=d["starts_ms"], ends_ms=d["ends_ms"], created_ms=d["created_ms"])

    def to_json(self, figures: Figures, now_ms: int) -> dict[str, Any]:
        per_payer = {k: v for k, v in (("count", self.per_payer_count),
                                        ("amount", self.per_payer_amount)) if v}
        body: dict[str, Any] = {
            "id": self.id, "object": "campaign", "name": self.name, "kind": self.kind.value,
            "status": self.status(figures, now_ms).value, "currency": self.currency,
            "reward": self._reward_json(),
            "conditions": {
                "min_amount": self.min_amount or None, "currency": self.currency,
                "methods": sorted(self.methods) if self.methods is not None else None,
                "scenes": sorted(self.scenes) if self.scenes is not None else None,
                "merchants": sorted(self.merchants),
                "windows": [w.to_json() for w in self.windows] or None,
                "timezone": self.timezone,
            },
            "limits": {"first_n_payers": self.first_n or None, "per_payer": per_payer or None,
                       "budget": self.budget or None},
            "starts_at": iso(self.starts_ms),
            "ends_at": iso(self.ends_ms) if self.ends_ms else None,
            "spent": figures.spent, "payers_rewarded": figures.payers,
            "created_at": iso(self.created_ms),
        }
        if figures.ended_ms:
            body["ended_at"] = iso(figures.ended_ms)
        return body

    def _reward_json(self) -> dict[str, Any]:
        if self.kind is RewardKind.COUPON:  # each coupon: amount off, from min_spend on
            return {"amount": self.reward.max, "min_spend": self.min_amount or None}
        return self.reward.to_json()


def local_time(timezone: str, at_ms: int) -> tuple[int, int]:
    """(ISO weekday, milliseconds since local midnight) of `at_ms` in `timezone`."""
    seconds, millis = divmod(at_ms, 1000)
    local = datetime.fromtimestamp(seconds, ZoneInfo(timezone))  # ZoneInfo caches zones
    seconds_of_day = local.hour * 3600 + local.minute * 60 + local.second
    return local.isoweekday(), seconds_of_day * 1000 + millis


def _hhmm(ms: int) -> str:
    minutes = ms // 60_000
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def epoch_ms(moment: datetime) -> int:
    """An aware datetime in epoch milliseconds."""
    return int(moment.astimezone(UTC).timestamp() * 1000)
