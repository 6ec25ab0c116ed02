"""The `instant` rail: no network, no state, immediate answers.

Every charge succeeds, except a payer code ending in `2`, which is declined (so the
failure path can be exercised without a simulator). Queries report success, refunds
succeed, closes and reversals close. Payouts are paid at once, except to a payee whose
identity ends in `2` (a frozen account, as in the simulators); so are splits and their
returns, except with a receiver whose account ends in `2` (no relation with the payer).
It keeps no ledger: it is a stand-in for a rail, not a model of one (it checks no cap).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import final

from adapters.base import (
    AdapterConfig,
    Charge,
    Close,
    HttpRequest,
    HttpResponse,
    Notification,
    Operation,
    Payout,
    PayoutQuery,
    Query,
    RailError,
    RailResult,
    RailStatus,
    Refund,
    RefundQuery,
    Reverse,
    Scene,
    unsupported,
)
from adapters.commerce_ops import Split, SplitQuery, SplitReturn

_SCENES = frozenset(Scene)  # a stand-in takes every scene
_SUCCEEDED = RailResult(RailStatus.SUCCEEDED)
_CLOSED = RailResult(RailStatus.CLOSED)
_DECLINED = RailResult(
    RailStatus.FAILED, failure_code="INSUFFICIENT_FUNDS", failure_message="Declined by instant."
)
_NO_RELATION = RailResult(
    RailStatus.FAILED, failure_code="NO_RELATION", failure_message="No such receiver."
)
_FROZEN = RailResult(
    RailStatus.FAILED, failure_code="ACCOUNT_FROZEN", failure_message="The payee cannot receive."
)


@final
class InstantAdapter:
    __slots__ = ("_name",)

    def __init__(self, name: str = "instant") -> None:
        self._name = name

    @property
    def name(self) -> str:
        return self._name

    @property
    def scenes(self) -> frozenset[str]:
        return _SCENES

    def build(self, op: Operation) -> HttpRequest | RailResult:
        match op:
            case Charge():
                if op.payer.get("auth_code", "").endswith("2"):
                    return _DECLINED
                return RailResult(RailStatus.SUCCEEDED, rail_reference="inst_" + op.rail_order_no)
            case Query() | Refund() | RefundQuery():
                return _SUCCEEDED
            case Close() | Reverse():
                return _CLOSED
            case Payout():
                if op.payee.endswith("2"):
                    return _FROZEN
                return RailResult(RailStatus.SUCCEEDED, rail_reference="inst_" + op.rail_payout_no,
                                  amount=op.amount)
            case PayoutQuery() | SplitQuery():
                return _SUCCEEDED
            case Split():
                if any(r.account.endswith("2") for r in op.receivers):
                    return _NO_RELATION
                return RailResult(RailStatus.SUCCEEDED, rail_reference="inst_" + op.rail_split_no)
            case SplitReturn():
                return _NO_RELATION if op.account.endswith("2") else _SUCCEEDED
            case _:
                raise unsupported(self._name, op)  # the merchant-services operations

    def parse(self, op: Operation, response: HttpResponse) -> RailResult:
        raise RailError("NOT_HTTP", "the instant rail makes no HTTP calls", definitive=True)

    def verify_notification(self, headers: Mapping[str, str], body: bytes) -> Notification:
        raise RailError("NO_NOTIFICATIONS", "the instant rail sends no notifications",
                        definitive=False)

    def notification_reply(self, accepted: bool) -> HttpResponse:
        return HttpResponse(404, {}, b"")


def create_adapter(config: AdapterConfig) -> InstantAdapter:
    return InstantAdapter(config.name)
