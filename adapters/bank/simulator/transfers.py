"""Credit transfers (payouts) of the bank simulator: `POST /v1/credit-transfers` and
`GET /v1/credit-transfers/{transfer_no}`.

A transfer the bank takes is answered PROCESSING and settles SUCCEEDED `TRANSFER_DELAY`
later (× time_scale), when the money reaches the payee and `transfer.succeeded` is sent.
The payee's account decides as every simulator's payees do (`adapters.simkit.payees`):
frozen → FAILED `ACCOUNT_FROZEN` at once, answer lost → taken (then paid) with the answer
withheld. A name other than the one set by `POST /sim/payees` → FAILED `NAME_NOT_CORRECT`.
Failures are answered 200 like any state, and notified as `transfer.failed`.

Every method is synchronous on purpose: check and apply run without an await between
them, so concurrent identical transfers pay at most once.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import final

from adapters.bank.simulator import checks
from adapters.bank.simulator.records import now_text
from adapters.bank.wire import TransferFailure, TransferStatus, valid_account
from adapters.simkit.payees import PayeeOutcome, Payees, PayoutRow, payee_outcome, payouts_snapshot
from adapters.simkit.replies import Reply, error
from adapters.simkit.runtime import Schedule

TRANSFER_DELAY = 1.0  # a taken transfer stays PROCESSING this long (× time_scale)
MAX_NAME = 128

Emit = Callable[[str, str, Mapping[str, object]], None]  # (notify_url, event, data)

_MESSAGES = {
    TransferFailure.ACCOUNT_FROZEN: "the payee's account is frozen and cannot receive",
    TransferFailure.NAME_NOT_CORRECT: "the name does not match the account holder",
}


@final
@dataclass(slots=True)
class TransferRecord:
    transfer_no: str
    bank_transfer_id: str
    params: tuple[object, ...]  # what a repeat must match
    amount: int
    currency: str
    account: str
    notify_url: str | None
    created_at: str
    status: TransferStatus = TransferStatus.PROCESSING
    paid: int = 0
    payouts: int = 0
    paid_at: str | None = None
    failure_code: TransferFailure | None = None

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "transfer_no": self.transfer_no,
            "bank_transfer_id": self.bank_transfer_id,
            "status": self.status.value,
            "amount": self.amount,
            "currency": self.currency,
            "account": self.account,
            "created_at": self.created_at,
        }
        if self.paid_at is not None:
            out["paid_at"] = self.paid_at
        if self.failure_code is not None:
            out["failure_code"] = self.failure_code.value
            out["failure_message"] = _MESSAGES[self.failure_code]
        return out

    def ledger_row(self) -> PayoutRow:
        return PayoutRow(self.status.value, self.amount, self.account, self.paid, self.payouts)


@final
class Transfers:
    """Credit transfers of one merchant; every method is synchronous on purpose."""

    __slots__ = ("_emit", "_ids", "_records", "_schedule", "payees")

    def __init__(self, schedule: Schedule, emit: Emit, payees: Payees) -> None:
        self._schedule = schedule
        self._emit = emit
        self.payees = payees
        self._records: dict[str, TransferRecord] = {}
        self._ids = itertools.count(1)

    def create(self, body: Mapping[str, object]) -> Reply:
        transfer_no = checks.order_no(body, "transfer_no")
        amount, currency = checks.money(body)
        account = body.get("account")
        if not valid_account(account):
            raise checks.invalid("account must be 1-64 characters of [0-9A-Za-z-]")
        name = body.get("name")
        if name is not None and (not isinstance(name, str) or not 0 < len(name) <= MAX_NAME):
            raise checks.invalid(f"name must be a string of 1-{MAX_NAME} characters")
        remark = checks.text(body, "remark", required=False)
        notify_url = checks.url(body, "notify_url", required=False)
        params = (amount, currency, account, name, remark, notify_url)
        known = self._records.get(transfer_no)
        if known is not None:
            if known.params != params:
                return error(409, "DUPLICATE_TRANSFER_NO",
                             "transfer_no already used with other parameters")
            return Reply(200, known.to_json())  # the same transfer: nothing is paid again
        record = TransferRecord(transfer_no, self._new_id(), params, amount, currency, account,
                                notify_url, now_text())
        self._records[transfer_no] = record
        outcome = payee_outcome(account)
        if not self.payees.name_matches(account, name):
            self._fail(record, TransferFailure.NAME_NOT_CORRECT)
        elif outcome is PayeeOutcome.FROZEN:
            self._fail(record, TransferFailure.ACCOUNT_FROZEN)
        else:
            self._schedule(TRANSFER_DELAY, lambda: self._settle(record))
        return Reply(200, record.to_json(), withhold=outcome is PayeeOutcome.ANSWER_LOST)

    def _settle(self, record: TransferRecord) -> None:
        # The one place money is paid out: guarded so a transfer never pays twice.
        if record.payouts:
            return
        record.payouts = 1
        record.paid = record.amount
        record.paid_at = now_text()
        record.status = TransferStatus.SUCCEEDED
        self._notify(record, "transfer.succeeded")

    def _fail(self, record: TransferRecord, reason: TransferFailure) -> None:
        record.status = TransferStatus.FAILED
        record.failure_code = reason
        self._notify(record, "transfer.failed")

    def _notify(self, record: TransferRecord, event: str) -> None:
        if record.notify_url is not None:
            self._emit(record.notify_url, event, record.to_json())

    def get(self, transfer_no: str) -> Reply:
        record = self._records.get(transfer_no)
        if record is None:
            return error(404, "TRANSFER_NOT_FOUND", "no such transfer")
        return Reply(200, record.to_json())

    def _new_id(self) -> str:
        return f"BX{datetime.now(UTC):%Y%m%d}{next(self._ids):012d}"

    def snapshot(self) -> dict[str, object]:
        return payouts_snapshot({no: r.ledger_row() for no, r in self._records.items()})
