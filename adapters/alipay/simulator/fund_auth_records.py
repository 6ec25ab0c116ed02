"""The Alipay simulator's records of fund authorisations, the payer behind each (and their
credit score), and how an authorisation shows in answers and notifications."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import final

from adapters.alipay import protocol
from adapters.alipay.fund_auth_wire import (
    CREDIT_AUTH,
    FREEZE_NOTIFY_TYPE,
    AuthOrderStatus,
    FundOperationStatus,
    OperationType,
)
from adapters.alipay.wire import CHINA_TZ

LOW_SCORE, SCORE = 500, 700  # SANDBOX.md: a payer whose id ends in 3 scores 500


def payer_of(seed: str, last: str | None = None) -> str:
    """The Alipay user id behind a payer code (or another seed): always the same one. It ends
    in the code's last digit (`last` when given), so a code ending in 3 is a low scorer."""
    tail = last if last is not None else (seed[-1] if seed[-1:].isdigit() else "0")
    digest = int.from_bytes(hashlib.sha256(seed.encode("utf-8")).digest()[:8], "big")
    return f"2088{digest % 10**11:011d}{tail}"


def credit_score(payer: str) -> int:
    return LOW_SCORE if payer.endswith("3") else SCORE


def new_ids(now: float, serial: int) -> tuple[str, str]:
    """(`auth_no`, `operation_id`) in Alipay's shapes: 28 and 20 digits, dated."""
    day = datetime.fromtimestamp(now, UTC).astimezone(CHINA_TZ).strftime("%Y%m%d")
    return f"{day}10002001{serial % 10**12:012d}", f"{day}{serial % 10**12:012d}"


@final
@dataclass(slots=True)
class OperationRecord:
    """One fund operation of an authorisation: its freeze, an unfreeze, a capture."""

    out_request_no: str
    operation_id: str
    kind: OperationType
    amount: int
    fingerprint: tuple[object, ...]  # what a repeat must match
    at: float
    status: FundOperationStatus = FundOperationStatus.SUCCESS


@final
@dataclass(slots=True)
class AuthRecord:
    out_order_no: str
    auth_no: str
    product: str
    fingerprint: tuple[object, ...]
    amount: int
    title: str
    payer: str
    min_score: int | None
    notify_url: str | None
    created_at: float
    status: AuthOrderStatus = AuthOrderStatus.INIT
    credit: bool = False  # authorised on the payer's credit: nothing frozen
    frozen: int = 0  # fen of the payer's money frozen
    captured: int = 0  # fen paid to the merchant
    released: int = 0  # fen of the hold given back (no money moves on credit)
    rest: int = 0  # fen still authorised (frozen, or on credit)
    operations: dict[str, OperationRecord] = field(default_factory=dict)

    @property
    def score(self) -> int:
        return credit_score(self.payer)

    @property
    def freeze(self) -> OperationRecord:
        return self.operations[next(iter(self.operations))]  # the first operation

    def ledger_row(self) -> dict[str, object]:
        return {
            "status": self.status.value,
            "amount": self.amount,
            "frozen": self.frozen,
            "captured": self.captured,
            "released": self.released,
            "rest": self.rest,
            "credit": self.credit,
            "score": self.score,
        }

    def _money(self, fen: int) -> dict[str, str]:
        """How `fen` of this authorisation splits into credit and frozen money."""
        yuan, zero = protocol.fen_to_yuan(fen), "0.00"
        return {"credit_amount": yuan if self.credit else zero,
                "fund_amount": zero if self.credit else yuan}

    def _payer(self) -> dict[str, str]:
        return {"payer_user_id": self.payer, "payer_logon_id": f"159****{self.payer[-4:]}"}

    def operation_view(self, op: OperationRecord) -> dict[str, object]:
        """An operation as the freeze and unfreeze answers show it."""
        view: dict[str, object] = {
            "auth_no": self.auth_no,
            "out_order_no": self.out_order_no,
            "operation_id": op.operation_id,
            "out_request_no": op.out_request_no,
            "amount": protocol.fen_to_yuan(op.amount),
            "status": op.status.value,
            "gmt_trans": protocol.format_time(op.at),
            "trans_currency": "CNY",
            **self._payer(),
            **self._money(op.amount),
        }
        if self.credit:
            view["pre_auth_type"] = CREDIT_AUTH
        return view

    def detail_view(self, op: OperationRecord) -> dict[str, object]:
        """The authorisation and one operation, as the detail query shows them."""
        authorised = self.amount if self.status is not AuthOrderStatus.INIT else 0
        paid, rest = protocol.fen_to_yuan(self.captured), protocol.fen_to_yuan(self.rest)
        zero = "0.00"
        return {
            **self.operation_view(op),
            "order_status": self.status.value,
            "order_title": self.title,
            "operation_type": op.kind.value,
            "gmt_create": protocol.format_time(self.created_at),
            "total_freeze_amount": protocol.fen_to_yuan(authorised),
            "rest_amount": rest,
            "total_pay_amount": paid,
            "total_freeze_credit_amount": protocol.fen_to_yuan(authorised if self.credit else 0),
            "total_freeze_fund_amount": protocol.fen_to_yuan(self.frozen),
            "total_pay_credit_amount": paid if self.credit else zero,
            "total_pay_fund_amount": zero if self.credit else paid,
            "rest_credit_amount": rest if self.credit else zero,
            "rest_fund_amount": zero if self.credit else rest,
        }

    def notification_fields(self, app_id: str) -> dict[str, str]:
        """The unsigned fields of the `fund_auth_freeze` notification of its freeze."""
        freeze = self.freeze
        fields = {
            "notify_type": FREEZE_NOTIFY_TYPE,
            "notify_id": uuid.uuid4().hex,
            "app_id": app_id,
            "auth_app_id": app_id,
            "charset": protocol.CHARSET,
            "version": "1.0",
            "sign_type": protocol.SIGN_TYPE,
            **{k: str(v) for k, v in self.operation_view(freeze).items()},
            "operation_type": OperationType.FREEZE.value,
            "gmt_create": protocol.format_time(self.created_at),
            "total_freeze_amount": protocol.fen_to_yuan(self.amount),
            "total_unfreeze_amount": protocol.fen_to_yuan(self.released),
            "total_pay_amount": protocol.fen_to_yuan(self.captured),
            "rest_amount": protocol.fen_to_yuan(self.rest),
        }
        return {k: v for k, v in fields.items() if v}  # Alipay leaves empty fields out
