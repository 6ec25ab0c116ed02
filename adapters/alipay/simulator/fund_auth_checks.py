"""Checks of the fund-auth calls' business fields (`biz_content`) in the Alipay simulator,
and their refusals as the fund API words them (no `ACQ.` prefix)."""

from __future__ import annotations

import json
from collections.abc import Mapping

from adapters.alipay.fund_auth_wire import MIN_SCORE_KEY, CaptureSubCode, FundAuthSubCode
from adapters.alipay.protocol import Code
from adapters.alipay.simulator import checks
from adapters.alipay.simulator.answers import Answer, Refused, failure


def refused(sub: FundAuthSubCode | CaptureSubCode, sub_msg: str) -> Refused:
    return Refused(failure(Code.BUSINESS_FAILED, sub.value, sub_msg))


def invalid(sub_msg: str) -> Refused:
    return refused(FundAuthSubCode.ILLEGAL_ARGUMENT, sub_msg)


def text(biz: Mapping[str, object], key: str, limit: int = 256) -> str:
    value = biz.get(key)
    if not isinstance(value, str) or not value or len(value) > limit:
        raise invalid(f"{key} must be 1-{limit} characters")
    return value


def fen(biz: Mapping[str, object], key: str) -> int:
    try:
        return checks.amount(biz, key)
    except Refused:
        raise invalid(f"{key} must be 0.01-100000000.00 yuan, 2 decimals") from None


def json_field(biz: Mapping[str, object], key: str) -> dict[str, object]:
    raw = biz.get(key)
    if raw is None:
        return {}
    try:
        value = json.loads(raw) if isinstance(raw, str) else None
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise invalid(f"{key} must be a JSON object")
    return value


def min_score(biz: Mapping[str, object]) -> int | None:
    """The score a credit authorisation needs, if the freeze asks for credit."""
    extra = json_field(biz, "extra_param")
    credit = json_field(extra, "creditExtInfo") if "creditExtInfo" in extra else {}
    raw = credit.get(MIN_SCORE_KEY)
    if raw is None:
        return None
    if not isinstance(raw, str | int) or not str(raw).isdigit():
        raise invalid(f"creditExtInfo.{MIN_SCORE_KEY} must be a number")
    return int(raw)


def declined() -> Answer:
    return failure(Code.BUSINESS_FAILED, FundAuthSubCode.PAYER_BALANCE_NOT_ENOUGH.value,
                   "the payer's balance is not enough to freeze")
