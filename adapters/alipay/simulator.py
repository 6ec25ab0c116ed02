"""Simulator of the Alipay OpenAPI gateway: RSA2-signed `gateway.do`, a ledger, faults.

`Ledger` is a synchronous state machine: every check-and-apply runs without an await in
between, so concurrent identical requests can never charge a trade twice. `Runtime`
owns what needs the event loop: timers, notification deliveries, faults, hanging.
"""

from __future__ import annotations

import contextlib
import enum
import itertools
import json
import logging
import secrets
import string
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import final
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

from adapters.alipay import protocol
from adapters.alipay.protocol import (
    AlipayCredentials,
    Code,
    FormError,
    Method,
    SubCode,
    TradeStatus,
)
from adapters.simkit import Delivery, Faults, SimRuntime, fault_routes, install

__all__ = [
    "SIM_KEY",
    "Answer",
    "Faults",
    "Ledger",
    "Runtime",
    "SimulatorOptions",
    "create_app",
]

log = logging.getLogger(__name__)

CONFIRM_DELAY = 3.0  # payer code `…5`: the payer confirms after this (× time_scale)
# Delays before the 2nd..8th notification attempts (× time_scale): 4m 10m 10m 1h 2h 6h 15h.
NOTIFY_RETRY_DELAYS = (240.0, 600.0, 600.0, 3600.0, 7200.0, 21600.0, 54000.0)
NOTIFY_TIMEOUT = 10.0
MAX_REFUNDS = 50  # refunds per trade

_JSON = "application/json;charset=utf-8"
_FORM = "application/x-www-form-urlencoded;charset=utf-8"
_ERROR_KEY = "error_response"
_MESSAGES = {
    Code.SUCCESS: "Success",
    Code.IN_PROGRESS: "order success pay inprocess",
    Code.UNKNOWN_ERROR: "Service Currently Unavailable",
    Code.AUTH_TOKEN_PROBLEM: "Insufficient Token Permissions",
    Code.MISSING_PARAMETER: "Missing Required Arguments",
    Code.INVALID_PARAMETER: "Invalid Arguments",
    Code.BUSINESS_FAILED: "Business Failed",
}
_REQUIRED_COMMON = (
    ("method", "isv.missing-method"),
    ("app_id", "isv.missing-app-id"),
    ("sign", "isv.missing-signature"),
    ("sign_type", "isv.missing-signature-type"),
    ("timestamp", "isv.missing-timestamp"),
    ("version", "isv.missing-version"),
)
_PAYER_SCENES = {"bar_code": "bar_code", "wave_code": "bar_code", "security_code": "security_code"}
_PRESENTED = {
    Method.APP_PAY: frozenset({"QUICK_MSECURITY_PAY"}),
    Method.WAP_PAY: frozenset(
        {"QUICK_WAP_WAY", "QUICK_WAP_PAY"}
    ),  # the Python SDK sends the latter
    Method.PAGE_PAY: frozenset({"FAST_INSTANT_TRADE_PAY"}),
}
_PAID = frozenset({TradeStatus.TRADE_SUCCESS, TradeStatus.TRADE_FINISHED})


@dataclass(frozen=True)
class SimulatorOptions:
    time_scale: float = 1.0  # multiplies every delay (confirm delay, notification schedule)
    hang_seconds: float = 30.0  # how long a withheld answer hangs before the connection drops
    seed: int | None = None


# --------------------------------------------------------------------------- records
class Kind(enum.StrEnum):
    PRECREATE = "precreate"
    PAY = "pay"
    CREATE = "create"
    APP = "app"
    WAP = "wap"
    PAGE = "page"
    CANCELLED = "cancelled"  # only known through a cancel that came first


@dataclass(slots=True)
class _Refund:
    out_request_no: str
    amount: int
    at: float


@dataclass(slots=True)
class _Trade:
    out_trade_no: str
    trade_no: str
    kind: Kind
    fingerprint: tuple[object, ...] | None  # what a repeat must match; None: cancel record
    amount: int
    subject: str
    notify_url: str | None
    created_at: float
    status: TradeStatus = TradeStatus.WAIT_BUYER_PAY
    scanned: bool = True  # a precreate trade exists for queries only once scanned
    buyer_id: str = ""
    qr_code: str | None = None
    charged: int = 0
    charges: int = 0
    refunded: int = 0
    refunds: dict[str, _Refund] = field(default_factory=dict)
    paid_at: float | None = None
    closed_at: float | None = None


@final
@dataclass(frozen=True, slots=True)
class Answer:
    """A gateway answer before signing. `withhold`: applied, but never answered."""

    payload: Mapping[str, object]
    withhold: bool = False
    key: str | None = None  # `error_response` for gateway-level failures


class _Refused(Exception):
    def __init__(self, answer: Answer) -> None:
        super().__init__(answer.payload.get("sub_code"))
        self.answer = answer


def _ok(**fields: object) -> Answer:
    return Answer({"code": Code.SUCCESS.value, "msg": _MESSAGES[Code.SUCCESS], **fields})


def _failure(code: Code, sub_code: str, sub_msg: str, *, key: str | None = None) -> Answer:
    payload = {"code": code.value, "msg": _MESSAGES[code], "sub_code": sub_code, "sub_msg": sub_msg}
    return Answer(payload, key=key)


def _business(sub: SubCode, sub_msg: str) -> _Refused:
    return _Refused(_failure(Code.BUSINESS_FAILED, sub.value, sub_msg))


def _invalid(sub_msg: str) -> _Refused:
    return _business(SubCode.INVALID_PARAMETER, sub_msg)


Schedule = Callable[[float, Callable[[], None]], None]
Emit = Callable[[str, dict[str, str]], None]


# --------------------------------------------------------------------------- ledger
@final
class Ledger:
    """Trades of one app, keyed by `out_trade_no`; every method is synchronous on purpose."""

    __slots__ = ("_app_id", "_emit", "_ids", "_schedule", "_trades", "seller_id")

    def __init__(self, app_id: str, schedule: Schedule, emit: Emit) -> None:
        self._app_id = app_id
        self.seller_id = protocol.sandbox_seller_id(app_id)
        self._schedule = schedule  # (unscaled delay, callback)
        self._emit = emit  # (notify_url, unsigned notification fields)
        self._trades: dict[str, _Trade] = {}
        self._ids = itertools.count(1)

    def apply(self, method: Method, biz: Mapping[str, object], common: Mapping[str, str]) -> Answer:
        try:
            match method:
                case Method.PRECREATE:
                    return self.precreate(biz, common)
                case Method.PAY:
                    return self.pay(biz, common)
                case Method.CREATE:
                    return self.create(biz, common)
                case Method.APP_PAY | Method.WAP_PAY | Method.PAGE_PAY:
                    return self.present(method, biz, common)
                case Method.QUERY:
                    return self.query(biz)
                case Method.CLOSE:
                    return self.close(biz)
                case Method.CANCEL:
                    return self.cancel(biz)
                case Method.REFUND:
                    return self.refund(biz)
                case Method.REFUND_QUERY:
                    return self.refund_query(biz)
        except _Refused as refused:
            return refused.answer

    # ----------------------------------------------------------------- creating trades
    def precreate(self, biz: Mapping[str, object], common: Mapping[str, str]) -> Answer:
        no, amount, subject = _order_fields(biz)
        trade = self._open(no, Kind.PRECREATE, (amount, subject), amount, subject, common)
        if trade.qr_code is None:
            trade.scanned = False
            token = "".join(
                secrets.choice(string.ascii_lowercase + string.digits) for _ in range(22)
            )
            trade.qr_code = f"https://qr.alipay.com/bax{token}"
        return _ok(out_trade_no=no, qr_code=trade.qr_code)

    def pay(self, biz: Mapping[str, object], common: Mapping[str, str]) -> Answer:
        no, amount, subject = _order_fields(biz)
        auth_code = _auth_code(biz)
        scene = _PAYER_SCENES.get(str(biz.get("scene", "")))
        if scene is None:
            raise _invalid("scene must be bar_code, wave_code or security_code")
        product = biz.get("product_code", "FACE_TO_FACE_PAYMENT")
        if product != "FACE_TO_FACE_PAYMENT":
            raise _invalid("product_code must be FACE_TO_FACE_PAYMENT")
        fingerprint = (amount, subject, auth_code, scene)
        known = no in self._trades
        trade = self._open(no, Kind.PAY, fingerprint, amount, subject, common)
        if known:  # still waiting for the payer: the same answer again
            return _in_progress(trade)
        match auth_code[-1]:
            case "2":
                trade.status = TradeStatus.TRADE_CLOSED
                trade.closed_at = time.time()
                raise _business(SubCode.BUYER_BALANCE_NOT_ENOUGH, "buyer balance is not enough")
            case "5":
                self._schedule(CONFIRM_DELAY, lambda: self._confirm(trade))
                return _in_progress(trade)
            case "6":
                return _in_progress(trade)  # the payer never confirms
            case "9":
                self._take_money(trade)
                return Answer(self._paid_answer(trade), withhold=True)
            case _:
                self._take_money(trade)
                return Answer(self._paid_answer(trade))

    def _confirm(self, trade: _Trade) -> None:
        if trade.status is TradeStatus.WAIT_BUYER_PAY:
            self._take_money(trade)

    def create(self, biz: Mapping[str, object], common: Mapping[str, str]) -> Answer:
        no, amount, subject = _order_fields(biz)
        buyer = tuple(
            str(biz.get(k, "")) for k in ("buyer_id", "buyer_open_id", "op_buyer_open_id")
        )
        if not any(buyer):
            raise _invalid("buyer_id or buyer_open_id is required")
        trade = self._open(no, Kind.CREATE, (amount, subject, buyer), amount, subject, common)
        trade.buyer_id = trade.buyer_id or buyer[0]
        return _ok(out_trade_no=no, trade_no=trade.trade_no)

    def present(
        self, method: Method, biz: Mapping[str, object], common: Mapping[str, str]
    ) -> Answer:
        """A wallet (app) or browser (wap, page) opens a signed order: the trade now exists."""
        no, amount, subject = _order_fields(biz)
        if biz.get("product_code") not in _PRESENTED[method]:
            raise _invalid(f"product_code must be one of {sorted(_PRESENTED[method])}")
        kind = {Method.APP_PAY: Kind.APP, Method.WAP_PAY: Kind.WAP}.get(method, Kind.PAGE)
        trade = self._open(no, kind, (amount, subject), amount, subject, common)
        return _ok(
            out_trade_no=no,
            trade_no=trade.trade_no,
            total_amount=protocol.fen_to_yuan(amount),
            seller_id=self.seller_id,
        )

    def _open(
        self,
        no: str,
        kind: Kind,
        fingerprint: tuple[object, ...],
        amount: int,
        subject: str,
        common: Mapping[str, str],
    ) -> _Trade:
        """The trade for `no`: created, or the open one an identical request made before."""
        trade = self._trades.get(no)
        if trade is None:
            trade = _Trade(
                no,
                self._new_trade_no(),
                kind,
                (kind, *fingerprint),
                amount,
                subject,
                common.get("notify_url") or None,
                time.time(),
                buyer_id=protocol.new_buyer_id() if kind is not Kind.CREATE else "",
            )
            self._trades[no] = trade
            return trade
        if trade.fingerprint is None:
            raise _business(SubCode.TRADE_HAS_CLOSE, "the trade was cancelled")
        if trade.fingerprint != (kind, *fingerprint):
            raise _business(SubCode.CONTEXT_INCONSISTENT, "out_trade_no used with other parameters")
        if trade.status in _PAID:
            raise _business(SubCode.TRADE_HAS_SUCCESS, "the trade is already paid")
        if trade.status is TradeStatus.TRADE_CLOSED:
            raise _business(SubCode.TRADE_HAS_CLOSE, "the trade is closed")
        return trade

    def _new_trade_no(self) -> str:
        return protocol.new_trade_no(time.time(), next(self._ids))

    def _take_money(self, trade: _Trade) -> None:
        # The one place money is taken: guarded so a trade is never charged twice.
        if trade.charges:
            return
        trade.charges = 1
        trade.charged = trade.amount
        trade.status = TradeStatus.TRADE_SUCCESS
        trade.scanned = True
        trade.paid_at = time.time()
        trade.buyer_id = trade.buyer_id or protocol.new_buyer_id()
        self._notify(trade)

    # ----------------------------------------------------------------- trade operations
    def _find(self, biz: Mapping[str, object], *, scanned_only: bool = True) -> _Trade:
        no = biz.get("out_trade_no")
        trade = self._trades.get(no) if isinstance(no, str) else None
        if trade is None and isinstance(biz.get("trade_no"), str):
            trade = next((t for t in self._trades.values() if t.trade_no == biz["trade_no"]), None)
        if no is None and "trade_no" not in biz:
            raise _invalid("out_trade_no or trade_no is required")
        if trade is None or (scanned_only and not trade.scanned):
            raise _business(SubCode.TRADE_NOT_EXIST, "the trade does not exist")
        return trade

    def query(self, biz: Mapping[str, object]) -> Answer:
        trade = self._find(biz)
        return _ok(**self._trade_view(trade))

    def close(self, biz: Mapping[str, object]) -> Answer:
        # Unlike Alipay, an unscanned precreate QR can be closed here (see README).
        trade = self._find(biz, scanned_only=False)
        if trade.status in _PAID:
            raise _business(SubCode.TRADE_STATUS_ERROR, "a paid trade cannot be closed")
        self._close(trade)
        return _ok(out_trade_no=trade.out_trade_no, trade_no=trade.trade_no)

    def cancel(self, biz: Mapping[str, object]) -> Answer:
        no = biz.get("out_trade_no")
        if isinstance(no, str) and protocol.valid_out_no(no) and no not in self._trades:
            # Remember it closed, so a trade.pay arriving late cannot take money.
            self._trades[no] = _Trade(
                no, self._new_trade_no(), Kind.CANCELLED, None, 0, "", None, time.time()
            )
        trade = self._find(biz, scanned_only=False)
        if trade.status in _PAID:
            trade.refunded = trade.charged
        self._close(trade)
        action = "refund" if trade.charged else "close"
        fields: dict[str, object] = {"retry_flag": "N", "action": action}
        if action == "refund":
            fields["gmt_refund_pay"] = protocol.format_time(time.time())
        return _ok(out_trade_no=trade.out_trade_no, trade_no=trade.trade_no, **fields)

    def _close(self, trade: _Trade) -> None:
        if trade.status is not TradeStatus.TRADE_CLOSED:
            trade.status = TradeStatus.TRADE_CLOSED
            trade.closed_at = time.time()

    # ----------------------------------------------------------------- refunds
    def refund(self, biz: Mapping[str, object]) -> Answer:
        trade = self._find(biz)
        amount = _amount(biz, "refund_amount")
        request_no = biz.get("out_request_no", trade.out_trade_no)
        if not protocol.valid_out_no(request_no):
            raise _invalid("out_request_no must be 1-64 of [A-Za-z0-9_]")
        if request_no not in trade.refunds:
            self._new_refund(trade, request_no, amount)
            moved = "Y"
        else:
            moved = "N"  # one out_request_no refunds once: nothing moves again
        return _ok(
            out_trade_no=trade.out_trade_no,
            trade_no=trade.trade_no,
            buyer_user_id=trade.buyer_id,
            fund_change=moved,
            refund_fee=protocol.fen_to_yuan(trade.refunded),
            gmt_refund_pay=protocol.format_time(trade.refunds[request_no].at),
        )

    def _new_refund(self, trade: _Trade, request_no: str, amount: int) -> None:
        if not trade.charged:
            raise _business(SubCode.TRADE_STATUS_ERROR, "the trade is not paid")
        if trade.status is TradeStatus.TRADE_FINISHED:
            raise _business(SubCode.TRADE_HAS_FINISHED, "the trade can no longer be refunded")
        if len(trade.refunds) >= MAX_REFUNDS:
            raise _invalid(f"at most {MAX_REFUNDS} refunds per trade")
        if trade.refunded + amount > trade.charged:
            raise _business(
                SubCode.REFUND_AMT_NOT_EQUAL_TOTAL, "refunds would exceed the paid amount"
            )
        refund = _Refund(request_no, amount, time.time())
        trade.refunds[request_no] = refund
        trade.refunded += amount
        if trade.refunded == trade.charged:
            self._close(trade)
        self._notify(trade, refund)

    def refund_query(self, biz: Mapping[str, object]) -> Answer:
        trade = self._find(biz)
        request_no = biz.get("out_request_no")
        if not isinstance(request_no, str) or not request_no:
            raise _invalid("out_request_no is required")
        refund = trade.refunds.get(request_no)
        if refund is None:
            return _ok()  # Alipay's "no such refund (yet)": success without refund fields
        return _ok(
            out_trade_no=trade.out_trade_no,
            trade_no=trade.trade_no,
            out_request_no=request_no,
            total_amount=protocol.fen_to_yuan(trade.amount),
            refund_amount=protocol.fen_to_yuan(refund.amount),
            refund_status="REFUND_SUCCESS",
            gmt_refund_pay=protocol.format_time(refund.at),
        )

    # ----------------------------------------------------------------- simulated payer
    def payer_pays(self, no: str) -> tuple[int, dict[str, object]]:
        trade = self._trades.get(no)
        if trade is None:
            return 404, {"code": "TRADE_NOT_EXIST", "message": "no such order (present it first)"}
        if trade.status is not TradeStatus.WAIT_BUYER_PAY or trade.fingerprint is None:
            return 409, {"code": "ORDER_NOT_OPEN", "message": f"order is {trade.status.value}"}
        self._take_money(trade)
        return 200, self._trade_view(trade)

    def payer_fails(self, no: str) -> tuple[int, dict[str, object]]:
        trade = self._trades.get(no)
        if trade is None:
            return 404, {"code": "TRADE_NOT_EXIST", "message": "no such order (present it first)"}
        if trade.status is not TradeStatus.WAIT_BUYER_PAY or trade.fingerprint is None:
            return 409, {"code": "ORDER_NOT_OPEN", "message": f"order is {trade.status.value}"}
        trade.scanned = True
        self._close(trade)
        self._notify(trade)
        return 200, self._trade_view(trade)

    # ----------------------------------------------------------------- views
    def _buyer_fields(self, trade: _Trade) -> dict[str, str]:
        if not trade.buyer_id:
            return {}
        return {"buyer_user_id": trade.buyer_id, "buyer_logon_id": f"159****{trade.buyer_id[-4:]}"}

    def _paid_answer(self, trade: _Trade) -> dict[str, object]:
        paid = protocol.fen_to_yuan(trade.charged)
        return {
            "code": Code.SUCCESS.value,
            "msg": _MESSAGES[Code.SUCCESS],
            "out_trade_no": trade.out_trade_no,
            "trade_no": trade.trade_no,
            **self._buyer_fields(trade),
            "total_amount": protocol.fen_to_yuan(trade.amount),
            "receipt_amount": paid,
            "buyer_pay_amount": paid,
            "gmt_payment": protocol.format_time(trade.paid_at or time.time()),
            "fund_bill_list": [{"fund_channel": "ALIPAYACCOUNT", "amount": paid}],
        }

    def _trade_view(self, trade: _Trade) -> dict[str, object]:
        view: dict[str, object] = {
            "out_trade_no": trade.out_trade_no,
            "trade_no": trade.trade_no,
            "trade_status": trade.status.value,
            **self._buyer_fields(trade),
        }
        if trade.fingerprint is not None:
            view["total_amount"] = protocol.fen_to_yuan(trade.amount)
        if trade.charged:
            paid = protocol.fen_to_yuan(trade.charged)
            view["buyer_pay_amount"] = view["receipt_amount"] = paid
            view["send_pay_date"] = protocol.format_time(trade.paid_at or time.time())
            view["fund_bill_list"] = [{"fund_channel": "ALIPAYACCOUNT", "amount": paid}]
        return view

    def _notify(self, trade: _Trade, refund: _Refund | None = None) -> None:
        if trade.notify_url is None:
            return
        fields = {
            "notify_type": "trade_status_sync",
            "notify_id": uuid.uuid4().hex,
            "app_id": self._app_id,
            "charset": protocol.CHARSET,
            "version": "1.0",
            "sign_type": protocol.SIGN_TYPE,
            "trade_no": trade.trade_no,
            "out_trade_no": trade.out_trade_no,
            "buyer_id": trade.buyer_id,
            "buyer_logon_id": self._buyer_fields(trade).get("buyer_logon_id", ""),
            "seller_id": self.seller_id,
            "trade_status": trade.status.value,
            "total_amount": protocol.fen_to_yuan(trade.amount),
            "subject": trade.subject,
            "gmt_create": protocol.format_time(trade.created_at),
            **_paid_fields(trade),
        }
        if refund is not None:
            fields["out_biz_no"] = refund.out_request_no
            fields["refund_fee"] = protocol.fen_to_yuan(trade.refunded)
            fields["gmt_refund"] = protocol.format_time(refund.at)
        if trade.closed_at is not None:
            fields["gmt_close"] = protocol.format_time(trade.closed_at)
        # Alipay leaves empty fields out; the Python SDK's verify would choke on them.
        self._emit(trade.notify_url, {k: v for k, v in fields.items() if v})

    def snapshot(self) -> dict[str, object]:
        orders = {
            no: {
                "status": t.status.value,
                "charged": t.charged,
                "charges": t.charges,
                "refunded": t.refunded,
            }
            for no, t in self._trades.items()
        }
        totals = {
            "orders": len(self._trades),
            "charged": sum(t.charged for t in self._trades.values()),
            "charges": sum(t.charges for t in self._trades.values()),
            "refunded": sum(t.refunded for t in self._trades.values()),
        }
        return {"orders": orders, "totals": totals}


def _in_progress(trade: _Trade) -> Answer:
    return Answer(
        {
            "code": Code.IN_PROGRESS.value,
            "msg": _MESSAGES[Code.IN_PROGRESS],
            "out_trade_no": trade.out_trade_no,
            "trade_no": trade.trade_no,
        }
    )


def _paid_fields(trade: _Trade) -> dict[str, str]:
    if not trade.charged:
        return {}
    paid = protocol.fen_to_yuan(trade.charged)
    return {
        "receipt_amount": paid,
        "invoice_amount": paid,
        "buyer_pay_amount": paid,
        "point_amount": "0.00",
        "gmt_payment": protocol.format_time(trade.paid_at or time.time()),
        "fund_bill_list": json.dumps(
            [{"amount": paid, "fundChannel": "ALIPAYACCOUNT"}], separators=(",", ":")
        ),
    }


# --------------------------------------------------------------------------- biz checks
def _order_fields(biz: Mapping[str, object]) -> tuple[str, int, str]:
    no = biz.get("out_trade_no")
    if not protocol.valid_out_no(no):
        raise _invalid("out_trade_no must be 1-64 of [A-Za-z0-9_]")
    subject = biz.get("subject")
    if not isinstance(subject, str) or not subject or len(subject) > 256:
        raise _invalid("subject must be 1-256 characters")
    return no, _amount(biz, "total_amount"), subject


def _amount(biz: Mapping[str, object], key: str) -> int:
    """Yuan with at most 2 decimals, as a string or a JSON number (parsed as Decimal)."""
    raw = biz.get(key)
    fen: int | None = None
    if isinstance(raw, str | int | Decimal) and not isinstance(raw, bool):
        with contextlib.suppress(InvalidOperation, ValueError):
            value = Decimal(raw)
            if value.is_finite() and value == value.quantize(Decimal("0.01")):
                fen = int(value * 100)
    if fen is None:
        raise _invalid(f"{key} must be yuan with at most two decimals")
    if fen > protocol.MAX_FEN:
        raise _business(SubCode.TOTAL_FEE_EXCEED, f"{key} is above the limit")
    if fen <= 0:
        raise _invalid(f"{key} must be at least 0.01")
    return fen


def _auth_code(biz: Mapping[str, object]) -> str:
    # Real codes are 16-24 digits starting 25-30 (or fp… for faces); the sandbox takes
    # any code of 10-64 letters and digits so every rail's test codes work here.
    code = biz.get("auth_code")
    if not isinstance(code, str) or not (
        10 <= len(code) <= 64 and code.isascii() and code.isalnum()
    ):
        raise _business(SubCode.PAYMENT_AUTH_CODE_INVALID, "auth_code is invalid")
    return code


def _sanitize(value: object) -> object:
    """No `{`/`}` in string values: naive brace counters (the Python SDK) would misparse."""
    if isinstance(value, str):
        return value.replace("{", "(").replace("}", ")")
    if isinstance(value, Mapping):
        return {k: _sanitize(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_sanitize(v) for v in value]
    return value


# --------------------------------------------------------------------------- runtime
@final
class Runtime(SimRuntime):
    """Event-loop side of the simulator: checks, signing, timers, notifications, faults."""

    __slots__ = ("_signing_key", "credentials", "ledger", "options")

    def __init__(self, credentials: AlipayCredentials, options: SimulatorOptions) -> None:
        if credentials.alipay_private_key is None:
            raise ValueError("the simulator needs the bundle's alipay_private_key.pem")
        super().__init__(
            options,
            Delivery("alipay", NOTIFY_RETRY_DELAYS, NOTIFY_TIMEOUT, log, acknowledged=_success),
        )
        self._signing_key = credentials.alipay_private_key
        self.credentials = credentials
        self.options = options
        self.ledger = Ledger(credentials.app_id, self.schedule, self.emit)

    def __repr__(self) -> str:
        return f"Runtime(app_id={self.credentials.app_id!r}, options={self.options!r})"

    # ----------------------------------------------------------------- requests
    def check(self, params: Mapping[str, str]) -> tuple[Method, dict[str, object]] | Answer:
        """The method and business fields of an authentic request, or the refusal."""
        for name, sub_code in _REQUIRED_COMMON:
            if not params.get(name):
                key = None if name != "method" else _ERROR_KEY
                return _failure(Code.MISSING_PARAMETER, sub_code, f"{name} is required", key=key)
        try:
            method = Method(params["method"])
        except ValueError:
            return _failure(
                Code.INVALID_PARAMETER, "isv.invalid-method", "unknown method", key=_ERROR_KEY
            )
        refusal = self._authenticate(params)
        if refusal is not None:
            return refusal
        try:
            biz = json.loads(params.get("biz_content") or "{}", parse_float=Decimal)
        except ValueError:
            biz = None
        if not isinstance(biz, dict):
            return _failure(
                Code.BUSINESS_FAILED, SubCode.INVALID_PARAMETER.value, "biz_content is not JSON"
            )
        return method, biz

    def _authenticate(self, params: Mapping[str, str]) -> Answer | None:
        if params["app_id"] != self.credentials.app_id:
            return _failure(Code.INVALID_PARAMETER, "isv.invalid-app-id", "unknown app_id")
        if params["sign_type"] != protocol.SIGN_TYPE:
            return _failure(Code.INVALID_PARAMETER, "isv.invalid-signature-type", "RSA2 only")
        if params.get("charset", protocol.CHARSET).lower() != protocol.CHARSET:
            return _failure(Code.INVALID_PARAMETER, "isv.invalid-charset", "utf-8 only")
        if not protocol.verify_request_params(self.credentials.app_public_key, params):
            return _failure(Code.INVALID_PARAMETER, "isv.invalid-signature", "signature mismatch")
        return None

    async def serve(self, request: web.Request, params: Mapping[str, str]) -> web.StreamResponse:
        """One `gateway.do` call: authenticate, maybe fail on purpose, apply, answer."""
        checked = self.check(params)
        if isinstance(checked, Answer):
            return self.respond(params.get("method", ""), checked)
        method, biz = checked
        return await self.perform(
            request,
            lambda: self.ledger.apply(method, biz, params),
            lambda answer: self.respond(method, answer),
            lambda: self.respond(method, self._system_error()),  # not applied
        )

    def _system_error(self) -> Answer:
        if self._rng.random() < 0.5:
            return _failure(Code.UNKNOWN_ERROR, "isp.unknow-error", "system busy")
        return _failure(Code.BUSINESS_FAILED, SubCode.SYSTEM_ERROR.value, "system error")

    def respond(self, method: str, answer: Answer) -> web.Response:
        key = answer.key or protocol.response_key(method)
        payload = _sanitize(answer.payload)
        assert isinstance(payload, Mapping)
        body = protocol.signed_answer(key, payload, self._signing_key)
        return web.Response(body=body, headers={"Content-Type": _JSON})

    # ----------------------------------------------------------------- notifications
    def emit(self, url: str, fields: dict[str, str]) -> None:
        self.notify(url, fields, self._encode_notification)

    def sign_notification(self, fields: Mapping[str, str], now: float) -> dict[str, str]:
        """A send of `fields`: stamped with this attempt's time and signed afresh."""
        params = {**fields, "notify_time": protocol.format_time(now)}
        params["sign"] = protocol.rsa2_sign(
            self._signing_key, protocol.notification_content(params)
        )
        return params

    def _encode_notification(self, fields: Mapping[str, str]) -> tuple[bytes, dict[str, str]]:
        body = protocol.urlencode_params(self.sign_notification(fields, time.time()))
        return body.encode("ascii"), {"Content-Type": _FORM}


async def _success(resp: aiohttp.ClientResponse) -> bool:
    # Alipay stops only on the exact 7 bytes `success`.
    return resp.status == 200 and await resp.read() == b"success"


SIM_KEY: web.AppKey[Runtime] = web.AppKey("alipay_simulator", Runtime)


# --------------------------------------------------------------------------- handlers
async def _request_params(request: web.Request) -> dict[str, str]:
    """Query and form body merged, as the Java SDK splits them (raises `FormError`)."""
    query = protocol.decode_form(request.rel_url.raw_query_string)
    body: dict[str, str] = {}
    if request.method == "POST":
        raw = await request.read()
        if raw:
            body = protocol.decode_form(raw)
    return protocol.merge_params([query.items(), body.items()])


async def _gateway(request: web.Request) -> web.StreamResponse:
    sim = request.app[SIM_KEY]
    try:
        params = await _request_params(request)
    except FormError as exc:
        answer = _failure(Code.INVALID_PARAMETER, "isv.invalid-parameter", str(exc), key=_ERROR_KEY)
        return sim.respond("", answer)
    return await sim.serve(request, params)


async def _sim_present(request: web.Request) -> web.Response:
    """Open an app order string or a wap/page URL as the wallet or browser would."""
    sim = request.app[SIM_KEY]
    text = (await request.text()).strip()
    if text.startswith(("http://", "https://")):
        text = urlsplit(text).query
    try:
        params = protocol.decode_form(text)
    except FormError as exc:
        return web.json_response({"code": "INVALID_REQUEST", "message": str(exc)}, status=400)
    if params.get("method") not in _PRESENTED:
        message = "body must be an app/wap/page order string"
        return web.json_response({"code": "INVALID_REQUEST", "message": message}, status=400)
    checked = sim.check(params)
    if isinstance(checked, Answer):
        return sim.respond(params["method"], checked)
    method, biz = checked
    return sim.respond(method, sim.ledger.apply(method, biz, params))


async def _sim_pay(request: web.Request) -> web.Response:
    status, body = request.app[SIM_KEY].ledger.payer_pays(request.match_info["no"])
    return web.json_response(body, status=status)


async def _sim_fail(request: web.Request) -> web.Response:
    status, body = request.app[SIM_KEY].ledger.payer_fails(request.match_info["no"])
    return web.json_response(body, status=status)


async def _sim_ledger(request: web.Request) -> web.Response:
    return web.json_response(request.app[SIM_KEY].ledger.snapshot())


def create_app(
    credentials: AlipayCredentials, options: SimulatorOptions = SimulatorOptions()
) -> web.Application:
    """The simulator; `credentials` must come from `load_or_create_bundle` (or
    `load_simulator_bundle`): it signs with the bundle's `alipay_private_key.pem`."""
    app = web.Application()
    install(app, SIM_KEY, Runtime(credentials, options))
    app.add_routes(
        [
            web.get(protocol.GATEWAY_PATH, _gateway),
            web.post(protocol.GATEWAY_PATH, _gateway),
            web.post("/sim/present", _sim_present),
            web.post("/sim/orders/{no}/pay", _sim_pay),
            web.post("/sim/orders/{no}/fail", _sim_fail),
            *fault_routes(SIM_KEY),
            web.get("/sim/ledger", _sim_ledger),
        ]
    )
    return app
