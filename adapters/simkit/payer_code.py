"""The payer-code script every rail follows (SANDBOX.md, "Driving outcomes"): the last digit
of the payer's code decides a charge. Each rail records and words the outcomes its own way."""

from __future__ import annotations

from typing import Protocol, TypeVar

from adapters.simkit.runtime import Schedule

CONFIRM_DELAY = 3.0  # "...5": the payer confirms after this many seconds (× time_scale)

_Record = TypeVar("_Record", contravariant=True)
_Answer = TypeVar("_Answer", covariant=True)


class PayerCodeLedger(Protocol[_Record, _Answer]):
    """What a rail's ledger does at each step of the script, for one charge's record."""

    def pay_by_code(self, record: _Record, *, withhold: bool) -> _Answer:
        """Take the money and answer; `withhold`: the answer is lost on its way."""

    def decline_code(self, record: _Record) -> _Answer:
        """The payer's balance is insufficient: record the refusal and answer it."""

    def await_payer(self, record: _Record) -> _Answer:
        """The payer is still confirming (USERPAYING, 10003): record and answer that."""

    def payer_confirmed(self, record: _Record) -> None:
        """The confirming payer confirms: take the money if the charge still waits."""


def run_payer_code(
    auth_code: str,
    record: _Record,
    ledger: PayerCodeLedger[_Record, _Answer],
    schedule: Schedule,
) -> _Answer:
    """Charge a new `record` as its payer's code says."""
    match auth_code[-1]:
        case "2":
            return ledger.decline_code(record)
        case "5":
            schedule(CONFIRM_DELAY, lambda: ledger.payer_confirmed(record))
            return ledger.await_payer(record)
        case "6":
            return ledger.await_payer(record)  # the payer never confirms
        case "9":
            return ledger.pay_by_code(record, withhold=True)
        case _:
            return ledger.pay_by_code(record, withhold=False)
