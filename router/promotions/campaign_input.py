"""A decoded `POST /v1/campaigns` body made into a Campaign, with every rule the body's
shape cannot express checked first: each refusal names its field, and nothing is
written before all of them hold."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from router.api.schemas_campaigns import CampaignCreate, ConditionsSpec, RewardSpec
from router.errors import validation_error
from router.merchants import Merchant
from router.promotions.applied import RewardKind
from router.promotions.campaigns import (
    ADMIN,
    DAY_MS,
    DEFAULT_TIMEZONE,
    Campaign,
    Reward,
    RewardType,
    Window,
    epoch_ms,
)
from router.validation import CURRENCIES


def campaign_from(body: CampaignCreate, campaign_id: str, maker: Merchant | None,
                  methods: Collection[str], now_ms: int) -> Campaign:
    """`maker`: the merchant whose campaign it is (None: the admin's); `methods`: the
    methods payments can name here."""
    cond = body.conditions or ConditionsSpec()
    limits = body.limits
    per_payer = limits.per_payer if limits else None
    starts_ms, ends_ms = _period(body, now_ms)
    currency = cond.currency or "CNY"
    if currency not in CURRENCIES:
        raise validation_error("conditions.currency",
                               "Unknown currency; use an ISO 4217 code like CNY.")
    if cond.methods is not None and (unknown := sorted(set(cond.methods) - set(methods))):
        raise validation_error("conditions.methods",
                               f"No rail takes the method {unknown[0]!r} here.")
    kind = RewardKind(body.kind)
    if kind is RewardKind.COUPON:
        reward, min_amount = _coupon(body, cond)
    else:
        reward, min_amount = _reward(body.reward), cond.min_amount or 0
    return Campaign(
        id=campaign_id, name=body.name, kind=kind,
        reward=reward, currency=currency,
        owner=maker.id if maker else ADMIN,
        merchants=_merchants(cond, maker), scope=maker.scope if maker else None,
        min_amount=min_amount,
        methods=frozenset(cond.methods) if cond.methods is not None else None,
        scenes=frozenset(s.value for s in cond.scenes) if cond.scenes is not None else None,
        windows=_windows(cond), timezone=_timezone(cond.timezone),
        first_n=limits.first_n_payers or 0 if limits else 0,
        per_payer_count=per_payer.count or 0 if per_payer else 0,
        per_payer_amount=per_payer.amount or 0 if per_payer else 0,
        budget=limits.budget or 0 if limits else 0,
        starts_ms=starts_ms, ends_ms=ends_ms, created_ms=now_ms,
    )


def _coupon(body: CampaignCreate, cond: ConditionsSpec) -> tuple[Reward, int]:
    """A coupon takes a fixed amount off; its `min_spend` is the campaign's min_amount.
    Its budget applies when a coupon is reserved; no per-payer or first-N limits."""
    spec = body.reward
    for name in ("type", "max", "percent_bp"):
        if getattr(spec, name) is not None:
            raise validation_error(f"reward.{name}", f"A coupon's reward takes amount (and "
                                                     f"min_spend), not {name}.")
    if spec.amount is None:
        raise validation_error("reward.amount", "A coupon's reward needs amount.")
    if cond.min_amount is not None:
        raise validation_error("conditions.min_amount",
                               "A coupon campaign names reward.min_spend instead.")
    if body.limits and (body.limits.first_n_payers or body.limits.per_payer):
        param = "first_n_payers" if body.limits.first_n_payers else "per_payer"
        raise validation_error(f"limits.{param}", "A coupon campaign takes a budget only: "
                                                  "each coupon is one user's, used once.")
    return Reward(RewardType.FIXED, spec.amount, spec.amount), spec.min_spend or 0


def _reward(spec: RewardSpec) -> Reward:
    if spec.type is None:
        raise validation_error("reward.type", "A cashback or discount reward needs type.")
    if spec.max is None:
        raise validation_error("reward.max", "A cashback or discount reward needs max.")
    if spec.min_spend is not None:
        raise validation_error("reward.min_spend", "Only a coupon takes min_spend; use "
                                                   "conditions.min_amount.")
    kind = RewardType(spec.type)
    if kind is RewardType.PERCENT:
        if spec.percent_bp is None:
            raise validation_error("reward.percent_bp", "A percent reward needs percent_bp.")
        if spec.amount is not None:
            raise validation_error("reward.amount", "A percent reward takes percent_bp, "
                                                    "not amount.")
    else:
        if spec.percent_bp is not None:
            raise validation_error("reward.percent_bp",
                                   f"A {kind.value} reward takes no percent_bp.")
        if kind is RewardType.FIXED and spec.amount is None:
            raise validation_error("reward.amount", "A fixed reward needs amount.")
        if spec.amount is not None and spec.amount > spec.max:
            raise validation_error("reward.amount",
                                   f"reward.amount ({spec.amount}) is over reward.max "
                                   f"({spec.max}).")
    return Reward(kind, spec.max, spec.amount, spec.percent_bp)


def _merchants(cond: ConditionsSpec, maker: Merchant | None) -> frozenset[str]:
    listed = frozenset(cond.merchants or ())
    if maker is None:
        if not listed:
            raise validation_error("conditions.merchants",
                                   "An admin campaign lists the merchants it covers.")
        return listed
    if listed and listed != {maker.id}:
        raise validation_error("conditions.merchants",
                               "A merchant's campaign covers its own payments only.")
    return frozenset({maker.id})


def _windows(cond: ConditionsSpec) -> tuple[Window, ...]:
    windows = []
    for spec in cond.windows or ():
        start, end = _clock_ms(spec.start), _clock_ms(spec.end)
        if start == DAY_MS:
            raise validation_error("conditions.windows.start",
                                   "A window starts at 23:59 at the latest.")
        if end <= start:
            raise validation_error("conditions.windows.end",
                                   f"The window {spec.start}-{spec.end} ends before it starts; "
                                   "split a window across midnight in two (…-24:00, 00:00-…).")
        windows.append(Window(frozenset(spec.days or range(1, 8)), start, end))
    return tuple(windows)


def _timezone(name: str | None) -> str:
    if name is None:
        return DEFAULT_TIMEZONE
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise validation_error("conditions.timezone",
                               f"Unknown timezone {name!r}; use an IANA name like "
                               "Asia/Shanghai.") from None
    return name


def _period(body: CampaignCreate, now_ms: int) -> tuple[int, int]:
    starts = _moment(body.starts_at, "starts_at") if body.starts_at else now_ms
    ends = _moment(body.ends_at, "ends_at") if body.ends_at else 0
    if ends and ends <= max(starts, now_ms):
        raise validation_error("ends_at", "ends_at must be after starts_at and in the future.")
    return starts, ends


def _moment(value: datetime, param: str) -> int:
    if value.tzinfo is None:
        raise validation_error(param, f"{param} needs a UTC offset (RFC 3339, e.g. ...Z).")
    return epoch_ms(value)


def _clock_ms(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return (int(hours) * 60 + int(minutes)) * 60_000
