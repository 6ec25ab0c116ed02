"""Payouts of the Alipay simulator: `alipay.fund.trans.uni.transfer` pays an Alipay user at
once, `alipay.fund.trans.common.query` reports it.

The payee's user id decides the outcome as every simulator's payees do
(`adapters.simkit.payees`): frozen → 40004 `PAYEE_ACCOUNT_STATUS_ERROR`, answer lost →
paid and the answer withheld, otherwise SUCCESS. A name that is not the one set by
`POST /sim/payees` → 40004 `PAYEE_USER_INFO_ERROR`. A refused transfer is kept as FAIL, so a
repeat gets the same refusal and a query shows why. No notification is sent: Alipay's
payout notice is unconfirmed, and the router settles payouts by query.

Every method is synchronous on purpose: check and apply run without an await between
them, so concurrent identical transfers pay at most once.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import final

from adapters.alipay import protocol
from adapters.alipay.fund_wire import (
    BIZ_SCENE,
    ORDER_TITLE_MAX,
    PRODUCT_CODE,
    FundSubCode,
    IdentityType,
    TransferStatus,
    new_transfer_ids,
    valid_out_biz_no,
    valid_user_id,
)
from adapters.alipay.protocol import Code
from adapters.alipay.simulator import checks
from adapters.alipay.simulator.answers import Answer, Refused, failure, ok
from adapters.simkit.payees import PayeeOutcome, Payees, PayoutRow, payee_outcome, payouts_snapshot

_FROZEN_MESSAGE = "the payee's account is abnormal and cannot receive"
_NAME_MESSAGE = "the name does not match the payee's Alipay account"


@final
@dataclass(slots=True)
class TransferRecord:
    out_biz_no: str
    order_id: str
    pay_fund_order_id: str
    fingerprint: tuple[object, ...]  # what a repeat must match
    amount: int  # fen
    payee: str
    status: TransferStatus = TransferStatus.DEALING
    paid: int = 0
    payouts: int = 0
    paid_at: float | None = None
    error_code: str | None = None
    fail_reason: str | None = None

    def ledger_row(self) -> PayoutRow:
        return PayoutRow(self.status.value, self.amount, self.payee, self.paid, self.payouts)


def _refused(sub: FundSubCode | str, sub_msg: str) -> Refused:
    return Refused(failure(Code.BUSINESS_FAILED, str(sub), sub_msg))


def _invalid(sub_msg: str) -> Refused:
    return _refused(FundSubCode.INVALID_PARAMETER, sub_msg)


@final
class Transfers:
    """Transfers of one app, keyed by `out_biz_no`; every method is synchronous on purpose."""

    __slots__ = ("_ids", "_records", "payees")

    def __init__(self, payees: Payees) -> None:
        self.payees = payees
        self._records: dict[str, TransferRecord] = {}
        self._ids = itertools.count(1)

    def transfer(self, biz: Mapping[str, object]) -> Answer:
        no, amount, identity, name, fingerprint = _transfer_fields(biz)
        record = self._records.get(no)
        if record is not None:
            if record.fingerprint != fingerprint:
                raise _refused(FundSubCode.PAYMENT_INFO_INCONSISTENCY,
                               "out_biz_no was used with other parameters")
            return _transfer_answer(record)  # the same order: nothing is paid again
        order_id, pay_fund_order_id = new_transfer_ids(time.time(), next(self._ids))
        record = TransferRecord(no, order_id, pay_fund_order_id, fingerprint, amount, identity)
        self._records[no] = record
        outcome = payee_outcome(identity)
        if not self.payees.name_matches(identity, name):
            _fail(record, FundSubCode.PAYEE_USER_INFO_ERROR, _NAME_MESSAGE)
        elif outcome is PayeeOutcome.FROZEN:
            _fail(record, FundSubCode.PAYEE_ACCOUNT_STATUS_ERROR, _FROZEN_MESSAGE)
        else:
            self._pay(record)
        answer = _transfer_answer(record)
        lost = record.status is TransferStatus.SUCCESS and outcome is PayeeOutcome.ANSWER_LOST
        return Answer(answer.payload, withhold=lost)

    def _pay(self, record: TransferRecord) -> None:
        # The one place money is paid out: guarded so a transfer never pays twice.
        if record.payouts:
            return
        record.payouts = 1
        record.paid = record.amount
        record.paid_at = time.time()
        record.status = TransferStatus.SUCCESS

    def query(self, biz: Mapping[str, object]) -> Answer:
        record = self._find(biz)
        fields: dict[str, object] = {
            "order_id": record.order_id,
            "out_biz_no": record.out_biz_no,
            "status": record.status.value,
        }
        if record.paid_at is not None:
            fields["pay_fund_order_id"] = record.pay_fund_order_id
            fields["trans_amount"] = protocol.fen_to_yuan(record.paid)
            fields["pay_date"] = protocol.format_time(record.paid_at)
        if record.error_code is not None:
            fields["error_code"] = record.error_code
            fields["fail_reason"] = record.fail_reason or record.error_code
        return ok(**fields)

    def _find(self, biz: Mapping[str, object]) -> TransferRecord:
        order_id, no = biz.get("order_id"), biz.get("out_biz_no")
        if isinstance(order_id, str) and order_id:
            found = next((r for r in self._records.values() if r.order_id == order_id), None)
        elif isinstance(no, str) and no:
            if biz.get("product_code") is None or biz.get("biz_scene") is None:
                raise _invalid("product_code and biz_scene are required with out_biz_no")
            found = self._records.get(no)
        else:
            raise _invalid("out_biz_no or order_id is required")
        if found is None:
            raise _refused(FundSubCode.ORDER_NOT_EXIST, "the transfer order does not exist")
        return found

    def snapshot(self) -> dict[str, object]:
        return payouts_snapshot({no: r.ledger_row() for no, r in self._records.items()})


def _fail(record: TransferRecord, sub: FundSubCode, reason: str) -> None:
    record.status = TransferStatus.FAIL
    record.error_code = sub.value
    record.fail_reason = reason


def _transfer_answer(record: TransferRecord) -> Answer:
    """How the transfer call answers for `record`: paid, or the refusal it met."""
    if record.status is TransferStatus.FAIL:
        return failure(Code.BUSINESS_FAILED, record.error_code or FundSubCode.SYSTEM_ERROR.value,
                       record.fail_reason or "")
    return ok(
        out_biz_no=record.out_biz_no,
        order_id=record.order_id,
        pay_fund_order_id=record.pay_fund_order_id,
        status=record.status.value,
        trans_date=protocol.format_time(record.paid_at or time.time()),
    )


def _transfer_fields(
    biz: Mapping[str, object],
) -> tuple[str, int, str, str | None, tuple[object, ...]]:
    """(out_biz_no, fen, payee identity, name, fingerprint) of a transfer; refused if bad."""
    no = biz.get("out_biz_no")
    if not valid_out_biz_no(no):
        raise _invalid("out_biz_no must be 1-64 of [A-Za-z0-9_-]")
    try:
        amount = checks.amount(biz, "trans_amount")
    except Refused:
        raise _invalid("trans_amount must be 0.01-100000000.00 yuan, 2 decimals") from None
    if biz.get("product_code") != PRODUCT_CODE or biz.get("biz_scene") != BIZ_SCENE:
        raise _invalid(f"only {PRODUCT_CODE} with {BIZ_SCENE} is offered")
    title = biz.get("order_title")
    if not isinstance(title, str) or not title or len(title) > ORDER_TITLE_MAX:
        raise _invalid(f"order_title must be 1-{ORDER_TITLE_MAX} characters")
    payee = biz.get("payee_info")
    if not isinstance(payee, dict):
        raise _invalid("payee_info is required")
    identity, kind, name = payee.get("identity"), payee.get("identity_type"), payee.get("name")
    if name is not None and (not isinstance(name, str) or not name):
        raise _invalid("payee_info.name must be a non-empty string")
    if kind == IdentityType.USER_ID.value:
        if not valid_user_id(identity):
            raise _invalid("an ALIPAY_USER_ID is 2088 and 12 digits")
    elif kind == IdentityType.LOGON_ID.value:
        if not isinstance(identity, str) or not identity or name is None:
            raise _invalid("an ALIPAY_LOGON_ID needs the identity and the payee's name")
    else:
        raise _invalid("identity_type must be ALIPAY_USER_ID or ALIPAY_LOGON_ID")
    fingerprint = (amount, kind, identity, name, title, biz.get("remark"))
    return no, amount, identity, name, fingerprint
