"""Splits (royalty) of the Alipay simulator's trades: `alipay.trade.order.settle` shares
part of a paid trade at once (synchronous mode), `alipay.trade.order.settle.query` reports
each share.

A trade may have at most 30 % of what was paid (less what was refunded) shared, over all
its splits; above that the split is refused (`ACQ.ALLOC_AMOUNT_VALIDATE_ERROR`) and nothing
is shared. An unpaid or closed trade, or one whose split was finished (`royalty_finish`),
cannot be shared (`ACQ.ILLEGAL_SETTLE_STATE`). One `out_request_no` splits once: repeated
identically it answers the same, with other parameters it is refused
(`ACQ.DISCORDANT_REPEAT_REQUEST`).

Every method is synchronous on purpose: the check against the cap and the split run
without an await between them, so concurrent splits never exceed it.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import final

from adapters.alipay import protocol
from adapters.alipay.fund_wire import valid_user_id
from adapters.alipay.protocol import Code, Method
from adapters.alipay.royalty_wire import (
    MAX_SPLIT_BP,
    ROYALTY_MODE,
    RoyaltyState,
    RoyaltySubCode,
    RoyaltyType,
    TransInType,
)
from adapters.alipay.simulator import checks
from adapters.alipay.simulator.answers import Answer, Refused, failure, ok
from adapters.alipay.simulator.ledger import Ledger
from adapters.alipay.simulator.records import PAID, TradeRecord
from adapters.alipay.wire import CHINA_TZ

Share = tuple[str, int, str]  # (trans_in, fen, desc)


@final
@dataclass(slots=True)
class SplitRecord:
    out_request_no: str
    settle_no: str
    trade: TradeRecord
    fingerprint: tuple[object, ...]  # what a repeat must match
    shares: tuple[Share, ...]
    at: float
    status: RoyaltyState = RoyaltyState.SUCCESS
    returned: int = 0  # nothing is ever returned: see the adapter's README

    @property
    def amount(self) -> int:
        return sum(fen for _, fen, _ in self.shares)

    def ledger_row(self) -> dict[str, object]:
        return {
            "order": self.trade.out_trade_no,
            "amount": self.amount,
            "status": self.status.value,
            "receivers": [{"account": who, "amount": fen} for who, fen, _ in self.shares],
            "returned": self.returned,
        }


def _refused(sub: RoyaltySubCode, sub_msg: str) -> Refused:
    return Refused(failure(Code.BUSINESS_FAILED, sub.value, sub_msg))


def _invalid(sub_msg: str) -> Refused:
    return _refused(RoyaltySubCode.INVALID_PARAMETER, sub_msg)


@final
class Royalties:
    """Splits of one app, keyed by `out_request_no`; every method is synchronous on purpose."""

    __slots__ = ("_finished", "_ids", "_ledger", "_records", "_shared")

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger
        self._records: dict[str, SplitRecord] = {}
        self._shared: dict[str, int] = {}  # trade_no -> fen shared so far
        self._finished: set[str] = set()  # trade_nos whose split is over
        self._ids = itertools.count(1)

    def apply(self, method: Method, biz: Mapping[str, object]) -> Answer:
        return self.settle(biz) if method is Method.SETTLE else self.query(biz)

    def settle(self, biz: Mapping[str, object]) -> Answer:
        no, trade_no, shares, finish = _settle_fields(biz)
        fingerprint = (trade_no, shares, finish)
        record = self._records.get(no)
        if record is not None:
            if record.fingerprint != fingerprint:
                raise _refused(RoyaltySubCode.DISCORDANT_REPEAT_REQUEST,
                               "out_request_no was used with other parameters")
            return _settle_answer(record)  # the same split: nothing is shared again
        trade = self._ledger.find({"trade_no": trade_no})
        if trade.status not in PAID or trade_no in self._finished:
            raise _refused(RoyaltySubCode.ILLEGAL_SETTLE_STATE,
                           f"the trade cannot be split ({trade.status.value})")
        amount = sum(fen for _, fen, _ in shares)
        shared = self._shared.get(trade_no, 0) + amount
        cap = min(trade.charged * MAX_SPLIT_BP // 10_000, trade.charged - trade.refunded)
        if shared > cap:
            raise _refused(RoyaltySubCode.ALLOC_AMOUNT_VALIDATE_ERROR,
                           f"splits would share {shared} fen, above the {cap} fen allowed")
        record = SplitRecord(no, self._new_settle_no(), trade, fingerprint, shares, time.time())
        self._records[no] = record
        self._shared[trade_no] = shared
        if finish:
            self._finished.add(trade_no)
        return _settle_answer(record)

    def query(self, biz: Mapping[str, object]) -> Answer:
        no, trade_no = biz.get("out_request_no"), biz.get("trade_no")
        if not isinstance(no, str) or not isinstance(trade_no, str) or not no or not trade_no:
            raise _invalid("out_request_no and trade_no are required")
        self._ledger.find({"trade_no": trade_no})  # ACQ.TRADE_NOT_EXIST when unknown
        record = self._records.get(no)
        if record is None or record.trade.trade_no != trade_no:
            return ok()  # no such split (yet): success without a split, as for refunds
        executed = protocol.format_time(record.at)
        details = [
            {
                "operation_type": RoyaltyType.TRANSFER.value,
                "execute_dt": executed,
                "trans_out": self._ledger.seller_id,
                "trans_out_type": TransInType.USER_ID.value,
                "trans_in": who,
                "trans_in_type": TransInType.USER_ID.value,
                "amount": protocol.fen_to_yuan(fen),
                "state": record.status.value,
                "detail_id": f"{record.settle_no}{index:02d}",
            }
            for index, (who, fen, _) in enumerate(record.shares, 1)
        ]
        return ok(out_request_no=no, settle_no=record.settle_no, operation_dt=executed,
                  royalty_detail_list=details)

    def snapshot(self) -> dict[str, object]:
        return {no: record.ledger_row() for no, record in self._records.items()}

    def _new_settle_no(self) -> str:
        day = datetime.now(UTC).astimezone(CHINA_TZ).strftime("%Y%m%d")
        return f"{day}0025300200{next(self._ids) % 10**14:014d}"


def _settle_answer(record: SplitRecord) -> Answer:
    return ok(trade_no=record.trade.trade_no, settle_no=record.settle_no)


def _settle_fields(
    biz: Mapping[str, object],
) -> tuple[str, str, tuple[Share, ...], bool]:
    """(out_request_no, trade_no, shares, royalty_finish) of a settle; refused if bad."""
    no, trade_no = biz.get("out_request_no"), biz.get("trade_no")
    if not protocol.valid_out_no(no):
        raise _invalid("out_request_no must be 1-64 of [A-Za-z0-9_]")
    if not isinstance(trade_no, str) or not trade_no:
        raise _invalid("trade_no is required")
    if biz.get("royalty_mode", ROYALTY_MODE) != ROYALTY_MODE:
        raise _invalid("only royalty_mode sync is offered")
    extend = biz.get("extend_params") or {}
    if not isinstance(extend, dict) or extend.get("royalty_finish", "false") not in (
        "true", "false",
    ):
        raise _invalid("extend_params.royalty_finish must be true or false")
    finish = extend.get("royalty_finish") == "true"
    params = biz.get("royalty_parameters", [])
    if not isinstance(params, list) or (not params and not finish):
        raise _invalid("royalty_parameters must list the shares")
    shares = tuple(_share(p) for p in params)
    return no, trade_no, shares, finish


def _share(param: object) -> Share:
    if not isinstance(param, dict):
        raise _invalid("each royalty parameter must be an object")
    if param.get("royalty_type", RoyaltyType.TRANSFER.value) != RoyaltyType.TRANSFER.value:
        raise _invalid("only royalty_type transfer is offered")
    if param.get("trans_in_type") != TransInType.USER_ID.value:
        raise _invalid("trans_in_type must be userId")
    who = param.get("trans_in")
    if not valid_user_id(who):
        raise _refused(RoyaltySubCode.ROYALTY_ACCOUNT_NOT_EXIST,
                       "trans_in is not an Alipay user id")
    desc = param.get("desc", "")
    if not isinstance(desc, str):
        raise _invalid("desc must be a string")
    try:
        fen = checks.amount(param, "amount")
    except Refused:
        raise _invalid("amount must be 0.01-100000000.00 yuan, 2 decimals") from None
    return who, fen, desc
