"""A `Check`, the `check` registry (`CHECKS`, `plan`) and the helpers the checks share.

The checks themselves are in the `checks_*` modules; `adapters.conformance` imports them
(in the order of `CHECKS`), so a check registers itself when the package is imported.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final, final

from adapters.base import ActionType, Operation, RailError, RailResult, RailStatus
from adapters.conformance.env import RailEnv
from adapters.conformance.kit import CAPABILITIES, RailKit, expect

PAYER_CODE_SCENE: Final = "quickpay"


CheckFn = Callable[[RailEnv], Awaitable[None]]


@final
@dataclass(frozen=True)
class Check:
    name: str
    run: CheckFn
    requires: frozenset[str]
    doc: str

    def skip_reason(self, kit: RailKit) -> str | None:
        missing = sorted(self.requires - kit.capabilities)
        if not missing:
            return None
        return f"{kit.name} skips {self.name}: " + "; ".join(CAPABILITIES[m] for m in missing)


CHECKS: list[Check] = []


def check(*requires: str) -> Callable[[CheckFn], CheckFn]:
    unknown = set(requires) - CAPABILITIES.keys()
    if unknown:
        raise ValueError(f"unknown capabilities {sorted(unknown)}")

    def register(fn: CheckFn) -> CheckFn:
        CHECKS.append(Check(fn.__name__.removeprefix("check_"), fn, frozenset(requires),
                            (fn.__doc__ or "").strip()))
        return fn

    return register


def plan(kit: RailKit) -> list[tuple[str, str | None]]:
    """Every check by name, with the reason it is skipped for `kit` (None: it runs)."""
    return [(c.name, c.skip_reason(kit)) for c in CHECKS]


def _is_definitive_refusal(outcome: RailResult | RailError) -> bool:
    if isinstance(outcome, RailError):
        return outcome.definitive
    return outcome.status is RailStatus.FAILED


def _describe(outcome: RailResult | RailError) -> str:
    if isinstance(outcome, RailError):
        return f"RailError({outcome.code}, definitive={outcome.definitive})"
    return f"RailResult({outcome.status.value}, failure_code={outcome.failure_code})"


def _check_shape(op: Operation, result: RailResult) -> None:
    """What every RailResult must look like, whatever the rail."""
    where = f"{type(op).__name__} {getattr(op, 'rail_order_no', '')}"
    expect(isinstance(result.status, RailStatus), f"{where}: status {result.status!r} is not "
                                                 "an adapters.base.RailStatus")
    if result.action is not None:
        expect(result.status is RailStatus.REQUIRES_ACTION,
               f"{where}: an action with status {result.status.value}")
        expect(isinstance(result.action.type, ActionType),
               f"{where}: action type {result.action.type!r} is not an adapters.base.ActionType")
        expect(bool(result.action.data), f"{where}: an action without data")
    if result.status is RailStatus.FAILED:
        expect(bool(result.failure_code), f"{where}: FAILED without a failure_code")
    for name in ("amount", "refunded_amount"):
        value = getattr(result, name)
        expect(value is None or (type(value) is int and value >= 0),
               f"{where}: {name} {value!r} is not a non-negative int")


def _unsettled(result: RailResult) -> bool:
    # A payer-code order still being decided: PROCESSING, or (Alipay: a Query has no
    # scene) REQUIRES_ACTION, which the core reads as "the payer is confirming".
    return result.status in (RailStatus.PROCESSING, RailStatus.REQUIRES_ACTION)


async def _ledger_charges(env: RailEnv, order_no: str) -> int:
    entry = await env.ledger_order(order_no)
    return 0 if entry is None else int(entry["charges"])
