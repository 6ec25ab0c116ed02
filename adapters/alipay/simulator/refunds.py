"""Refunds of the Alipay simulator's trades: `trade.refund` moves money back at once (one
`out_request_no` refunds once), `trade.fastpay.refund.query` reports it."""

from __future__ import annotations

import time
from collections.abc import Mapping

from adapters.alipay import protocol
from adapters.alipay.protocol import SubCode, TradeStatus
from adapters.alipay.simulator import checks
from adapters.alipay.simulator.answers import Answer, Refused, business, invalid, ok
from adapters.alipay.simulator.ledger import Ledger
from adapters.alipay.simulator.records import RefundRecord, TradeRecord

MAX_REFUNDS = 50  # refunds per trade


def refund(ledger: Ledger, biz: Mapping[str, object]) -> Answer:
    trade = ledger.find(biz)
    amount = checks.amount(biz, "refund_amount", trade.currency)  # in the trade's currency
    request_no = biz.get("out_request_no", trade.out_trade_no)
    if not protocol.valid_out_no(request_no):
        raise invalid("out_request_no must be 1-64 of [A-Za-z0-9_]")
    if request_no not in trade.refunds:
        _new_refund(ledger, trade, request_no, amount)
        moved = "Y"
    else:
        moved = "N"  # one out_request_no refunds once: nothing moves again
    return ok(
        out_trade_no=trade.out_trade_no,
        trade_no=trade.trade_no,
        buyer_user_id=trade.buyer_id,
        fund_change=moved,
        refund_fee=trade.money(trade.refunded),
        gmt_refund_pay=protocol.format_time(trade.refunds[request_no].at),
        **_currency(trade),
    )


def _new_refund(ledger: Ledger, trade: TradeRecord, request_no: str, amount: int) -> None:
    if not trade.charged:
        raise Refused(business(SubCode.TRADE_STATUS_ERROR, "the trade is not paid"))
    if trade.status is TradeStatus.TRADE_FINISHED:
        raise Refused(business(SubCode.TRADE_HAS_FINISHED, "the trade can no longer be refunded"))
    if len(trade.refunds) >= MAX_REFUNDS:
        raise invalid(f"at most {MAX_REFUNDS} refunds per trade")
    if trade.refunded + amount > trade.charged:
        raise Refused(
            business(SubCode.REFUND_AMT_NOT_EQUAL_TOTAL, "refunds would exceed the paid amount")
        )
    record = RefundRecord(request_no, amount, time.time())
    trade.refunds[request_no] = record
    trade.refunded += amount
    if trade.refunded == trade.charged:
        ledger.close_trade(trade)
    ledger.notify(trade, record)


def refund_query(ledger: Ledger, biz: Mapping[str, object]) -> Answer:
    trade = ledger.find(biz)
    request_no = biz.get("out_request_no")
    if not isinstance(request_no, str) or not request_no:
        raise invalid("out_request_no is required")
    record = trade.refunds.get(request_no)
    if record is None:
        return ok()  # Alipay's "no such refund (yet)": success without refund fields
    return ok(
        out_trade_no=trade.out_trade_no,
        trade_no=trade.trade_no,
        out_request_no=request_no,
        total_amount=trade.money(trade.amount),
        refund_amount=trade.money(record.amount),
        refund_status="REFUND_SUCCESS",
        gmt_refund_pay=protocol.format_time(record.at),
        **_currency(trade),
    )


def _currency(trade: TradeRecord) -> dict[str, str]:
    # A cross-border trade's refund amounts are in its currency: the answer names it.
    return {} if trade.abroad is None else {"trans_currency": trade.currency}
