"""The Alipay simulator's ledger: trades of one app and the one place money is taken.

Every method is synchronous on purpose: each check-and-apply runs without an await in
between, so concurrent identical requests can never charge a trade twice.
"""

from __future__ import annotations

import itertools
import secrets
import string
import time
from collections.abc import Callable, Iterable, Mapping
from typing import final

from adapters.alipay import protocol
from adapters.alipay.protocol import Method, SubCode, TradeStatus
from adapters.alipay.simulator import abroad, checks, pricing
from adapters.alipay.simulator.answers import (
    Answer,
    Refused,
    business,
    in_progress,
    invalid,
    notification_fields,
    ok,
    paid_answer,
    trade_view,
)
from adapters.alipay.simulator.records import PAID, Kind, RefundRecord, TradeRecord
from adapters.simkit.payer_code import run_payer_code
from adapters.simkit.replies import Reply, error
from adapters.simkit.runtime import Schedule
from adapters.simkit.snapshot import ledger_snapshot

_PAYER_SCENES = {"bar_code": "bar_code", "wave_code": "bar_code", "security_code": "security_code"}
PRESENTED = {
    Method.APP_PAY: frozenset({"QUICK_MSECURITY_PAY"}),
    # The Python SDK sends the latter.
    Method.WAP_PAY: frozenset({"QUICK_WAP_WAY", "QUICK_WAP_PAY"}),
    Method.PAGE_PAY: frozenset({"FAST_INSTANT_TRADE_PAY"}),
}

Emit = Callable[[str, dict[str, str]], None]  # (notify_url, unsigned notification fields)


@final
class Ledger:
    """Trades of one app, keyed by `out_trade_no`; every method is synchronous on purpose."""

    __slots__ = ("_app_id", "_emit", "_ids", "_schedule", "_trades", "rates", "seller_id")

    def __init__(self, app_id: str, schedule: Schedule, emit: Emit) -> None:
        self._app_id = app_id
        self.seller_id = protocol.sandbox_seller_id(app_id)
        self._schedule = schedule
        self._emit = emit
        self._trades: dict[str, TradeRecord] = {}
        self._ids = itertools.count(1)
        self.rates = abroad.alipay_rates()  # what buyers of cross-border trades pay

    # ----------------------------------------------------------------- creating trades
    def precreate(self, biz: Mapping[str, object], common: Mapping[str, str]) -> Answer:
        no, amount, subject = checks.order_fields(biz)
        trade = self._open(no, Kind.PRECREATE, (amount, subject), amount, subject, common,
                           pricing.price_of(biz))
        if trade.qr_code is None:
            trade.scanned = False
            token = "".join(
                secrets.choice(string.ascii_lowercase + string.digits) for _ in range(22)
            )
            trade.qr_code = f"https://qr.alipay.com/bax{token}"
        return ok(out_trade_no=no, qr_code=trade.qr_code)

    def pay(self, biz: Mapping[str, object], common: Mapping[str, str]) -> Answer:
        no, amount, subject = checks.order_fields(biz)
        auth_code = checks.auth_code(biz)
        scene = _PAYER_SCENES.get(str(biz.get("scene", "")))
        if scene is None:
            raise invalid("scene must be bar_code, wave_code or security_code")
        product = biz.get("product_code", "FACE_TO_FACE_PAYMENT")
        if product != "FACE_TO_FACE_PAYMENT":
            raise invalid("product_code must be FACE_TO_FACE_PAYMENT")
        fingerprint = (amount, subject, auth_code, scene)
        known = no in self._trades
        trade = self._open(no, Kind.PAY, fingerprint, amount, subject, common,
                           pricing.price_of(biz))
        if known:  # still waiting for the payer: the same answer again
            return in_progress(trade)
        return run_payer_code(auth_code, trade, self, self._schedule)

    def pay_by_code(self, trade: TradeRecord, *, withhold: bool) -> Answer:
        self._take_money(trade)
        return Answer(paid_answer(trade), withhold=withhold)

    def decline_code(self, trade: TradeRecord) -> Answer:
        trade.status = TradeStatus.TRADE_CLOSED
        trade.closed_at = time.time()
        return business(SubCode.BUYER_BALANCE_NOT_ENOUGH, "buyer balance is not enough")

    def await_payer(self, trade: TradeRecord) -> Answer:
        return in_progress(trade)  # WAIT_BUYER_PAY since it was opened

    def payer_confirmed(self, trade: TradeRecord) -> None:
        if trade.status is TradeStatus.WAIT_BUYER_PAY:
            self._take_money(trade)

    def create(self, biz: Mapping[str, object], common: Mapping[str, str]) -> Answer:
        no, amount, subject = checks.order_fields(biz)
        buyer = tuple(
            str(biz.get(k, "")) for k in ("buyer_id", "buyer_open_id", "op_buyer_open_id")
        )
        if not any(buyer):
            raise invalid("buyer_id or buyer_open_id is required")
        trade = self._open(no, Kind.CREATE, (amount, subject, buyer), amount, subject, common,
                           pricing.price_of(biz))
        trade.buyer_id = trade.buyer_id or buyer[0]
        return ok(out_trade_no=no, trade_no=trade.trade_no)

    def present(
        self, method: Method, biz: Mapping[str, object], common: Mapping[str, str]
    ) -> Answer:
        """A wallet (app) or browser (wap, page) opens a signed order: the trade now exists."""
        no, amount, subject = checks.order_fields(biz)
        if biz.get("product_code") not in PRESENTED[method]:
            raise invalid(f"product_code must be one of {sorted(PRESENTED[method])}")
        kind = {Method.APP_PAY: Kind.APP, Method.WAP_PAY: Kind.WAP}.get(method, Kind.PAGE)
        trade = self._open(no, kind, (amount, subject), amount, subject, common,
                           pricing.price_of(biz))
        return ok(
            out_trade_no=no,
            trade_no=trade.trade_no,
            total_amount=protocol.fen_to_yuan(amount),
            seller_id=self.seller_id,
        )

    def captured(self, no: str, fingerprint: tuple[object, ...], amount: int, subject: str,
                 buyer_id: str) -> TradeRecord:
        """A trade paid at once from a fund authorisation (a capture); a number in use is
        refused as for `trade.pay`, before anything is taken."""
        trade = self._open(no, Kind.PAY, ("auth", *fingerprint), amount, subject, {})
        trade.buyer_id = buyer_id
        self._take_money(trade)
        return trade

    def _open(
        self,
        no: str,
        kind: Kind,
        fingerprint: tuple[object, ...],
        amount: int,
        subject: str,
        common: Mapping[str, str],
        price: pricing.Price = pricing.DOMESTIC_PRICE,
    ) -> TradeRecord:
        """The trade for `no`: created, or the open one an identical request made before."""
        trade = self._trades.get(no)
        if trade is None:
            trade = TradeRecord(
                no,
                self._new_trade_no(),
                kind,
                (kind, *fingerprint, price),
                amount,
                subject,
                common.get("notify_url") or None,
                time.time(),
                buyer_id=protocol.new_buyer_id() if kind is not Kind.CREATE else "",
                currency=price.currency,
                abroad=price.abroad(),
            )
            self._trades[no] = trade
            return trade
        if trade.fingerprint is None:
            raise Refused(business(SubCode.TRADE_HAS_CLOSE, "the trade was cancelled"))
        if trade.fingerprint != (kind, *fingerprint, price):
            raise Refused(
                business(SubCode.CONTEXT_INCONSISTENT, "out_trade_no used with other parameters")
            )
        if trade.status in PAID:
            raise Refused(business(SubCode.TRADE_HAS_SUCCESS, "the trade is already paid"))
        if trade.status is TradeStatus.TRADE_CLOSED:
            raise Refused(business(SubCode.TRADE_HAS_CLOSE, "the trade is closed"))
        return trade

    def _new_trade_no(self) -> str:
        return protocol.new_trade_no(time.time(), next(self._ids))

    def _take_money(self, trade: TradeRecord) -> None:
        # The one place money is taken: guarded so a trade is never charged twice.
        if trade.charges:
            return
        trade.charges = 1
        trade.charged = trade.amount
        trade.status = TradeStatus.TRADE_SUCCESS
        trade.scanned = True
        trade.paid_at = time.time()
        trade.buyer_id = trade.buyer_id or protocol.new_buyer_id()
        abroad.quote(trade, self.rates)
        self.notify(trade)

    # ----------------------------------------------------------------- trade operations
    def find(self, biz: Mapping[str, object], *, scanned_only: bool = True) -> TradeRecord:
        """The trade `biz` names by out_trade_no or trade_no; refused when there is none."""
        no = biz.get("out_trade_no")
        trade = self._trades.get(no) if isinstance(no, str) else None
        if trade is None and isinstance(biz.get("trade_no"), str):
            trade = next((t for t in self._trades.values() if t.trade_no == biz["trade_no"]), None)
        if no is None and "trade_no" not in biz:
            raise invalid("out_trade_no or trade_no is required")
        if trade is None or (scanned_only and not trade.scanned):
            raise Refused(business(SubCode.TRADE_NOT_EXIST, "the trade does not exist"))
        return trade

    def query(self, biz: Mapping[str, object]) -> Answer:
        return ok(**trade_view(self.find(biz)))

    def close(self, biz: Mapping[str, object]) -> Answer:
        # Unlike Alipay, an unscanned precreate QR can be closed here (see README).
        trade = self.find(biz, scanned_only=False)
        if trade.status in PAID:
            raise Refused(business(SubCode.TRADE_STATUS_ERROR, "a paid trade cannot be closed"))
        self.close_trade(trade)
        return ok(out_trade_no=trade.out_trade_no, trade_no=trade.trade_no)

    def cancel(self, biz: Mapping[str, object]) -> Answer:
        no = biz.get("out_trade_no")
        if isinstance(no, str) and protocol.valid_out_no(no) and no not in self._trades:
            # Remember it closed, so a trade.pay arriving late cannot take money.
            self._trades[no] = TradeRecord(
                no, self._new_trade_no(), Kind.CANCELLED, None, 0, "", None, time.time()
            )
        trade = self.find(biz, scanned_only=False)
        if trade.status in PAID:
            trade.refunded = trade.charged
        self.close_trade(trade)
        action = "refund" if trade.charged else "close"
        fields: dict[str, object] = {"retry_flag": "N", "action": action}
        if action == "refund":
            fields["gmt_refund_pay"] = protocol.format_time(time.time())
        return ok(out_trade_no=trade.out_trade_no, trade_no=trade.trade_no, **fields)

    def close_trade(self, trade: TradeRecord) -> None:
        if trade.status is not TradeStatus.TRADE_CLOSED:
            trade.status = TradeStatus.TRADE_CLOSED
            trade.closed_at = time.time()

    def notify(self, trade: TradeRecord, refund: RefundRecord | None = None) -> None:
        if trade.notify_url is not None:
            fields = notification_fields(
                trade, refund, app_id=self._app_id, seller_id=self.seller_id
            )
            self._emit(trade.notify_url, fields)

    # ----------------------------------------------------------------- simulated payer
    def _payer_trade(self, no: str) -> TradeRecord | Reply:
        """The open trade the simulated payer acts on, or why there is none."""
        trade = self._trades.get(no)
        if trade is None:
            return error(404, "TRADE_NOT_EXIST", "no such order (present it first)")
        if trade.status is not TradeStatus.WAIT_BUYER_PAY or trade.fingerprint is None:
            return error(409, "ORDER_NOT_OPEN", f"order is {trade.status.value}")
        return trade

    def payer_pays(self, no: str) -> Reply:
        trade = self._payer_trade(no)
        if isinstance(trade, Reply):
            return trade
        self._take_money(trade)
        return Reply(200, trade_view(trade))

    def payer_fails(self, no: str) -> Reply:
        trade = self._payer_trade(no)
        if isinstance(trade, Reply):
            return trade
        trade.scanned = True
        self.close_trade(trade)
        self.notify(trade)
        return Reply(200, trade_view(trade))

    def trades(self) -> Iterable[TradeRecord]:
        return self._trades.values()

    def snapshot(self) -> dict[str, object]:
        return ledger_snapshot({no: t.ledger_row() for no, t in self._trades.items()})
