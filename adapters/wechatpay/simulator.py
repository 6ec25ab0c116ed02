"""Simulator of WeChat Pay API v3: the real signed protocol, a ledger, faults on demand.

The ledger (`Ledger`) is a synchronous state machine: every check-and-apply runs without
an await in between, so concurrent identical requests can never charge an order twice.
`Runtime` owns what needs the event loop: timers, notification deliveries, faults.
Orders are keyed by (sub_mchid, out_trade_no); direct-merchant orders have sub_mchid "".
"""

from __future__ import annotations

import itertools
import json
import logging
import re
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import final
from urllib.parse import urlsplit

from aiohttp import web

from adapters.simkit import Delivery, Faults, SimRuntime, fault_routes, install
from adapters.wechatpay import protocol
from adapters.wechatpay.protocol import RefundStatus, TradeState, WeChatPayCredentials

__all__ = ["SIM_KEY", "Faults", "Ledger", "Runtime", "SimulatorOptions", "create_app"]

log = logging.getLogger(__name__)

CONFIRM_DELAY = 3.0  # codepay "...5": the payer confirms after this (× time_scale)
REFUND_DELAY = 1.0  # a refund stays PROCESSING this long (× time_scale)
# WeChat's documented resend schedule after the first attempt (× time_scale): ~24 h.
NOTIFY_RETRY_DELAYS = (
    15.0, 15.0, 30.0, 180.0, 600.0, 1200.0, 1800.0, 1800.0,
    1800.0, 3600.0, 10800.0, 10800.0, 10800.0, 21600.0, 21600.0,
)  # fmt: skip
NOTIFY_TIMEOUT = 5.0
MAX_REFUNDS_PER_ORDER = 50

_CN = timezone(timedelta(hours=8))
_KINDS = ("codepay", "native", "jsapi", "app", "h5")
_TRADE_TYPES: Mapping[str, str] = {
    "codepay": "MICROPAY",
    "native": "NATIVE",
    "jsapi": "JSAPI",
    "app": "APP",
    "h5": "MWEB",
}
_DESCS: Mapping[TradeState, str] = {
    TradeState.NOTPAY: "订单未支付",
    TradeState.USERPAYING: "需要用户输入支付密码",
    TradeState.SUCCESS: "支付成功",
    TradeState.REFUND: "转入退款",
    TradeState.PAYERROR: "支付失败",
    TradeState.CLOSED: "订单已关闭",
    TradeState.REVOKED: "订单已撤销",
}
_OPEN = frozenset({TradeState.NOTPAY, TradeState.USERPAYING})
_PAID = frozenset({TradeState.SUCCESS, TradeState.REFUND})
_ENDED = frozenset({TradeState.CLOSED, TradeState.REVOKED})
_DIGITS_RE = re.compile(r"[0-9]{1,32}")
_AUTH_CODE_RE = re.compile(r"[0-9A-Za-z]{1,128}")


@dataclass(frozen=True)
class SimulatorOptions:
    time_scale: float = 1.0  # multiplies every delay (confirm, refund, notification resends)
    hang_seconds: float = 30.0  # how long a withheld answer hangs before the connection drops
    seed: int | None = None
    userpaying_as_202: bool = False  # codepay "payer confirming": 202 {"code"} or 200 Transaction


@final
@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    payload: Mapping[str, object] | None  # None: no body (204)
    withhold: bool = False  # applied, but the caller must never see the answer


class _Invalid(Exception):
    """400 PARAM_ERROR: a field is missing or malformed."""


class _Mismatch(Exception):
    """400 APPID_MCHID_NOT_MATCH: the body names another merchant or app."""


def _error(status: int, code: str, message: str) -> Reply:
    return Reply(status, {"code": code, "message": message})


def _now_text() -> str:
    return datetime.now(_CN).isoformat(timespec="seconds")


# --------------------------------------------------------------------------- ledger records
@dataclass(slots=True)
class _Order:
    key: tuple[str, str]  # (sub_mchid or "", out_trade_no)
    kind: str  # codepay | native | jsapi | app | h5
    params: Mapping[str, object]  # the whole request body: repeats must match it exactly
    ident: Mapping[str, str]  # appid/mchid, or sp_appid/sp_mchid/sub_mchid/sub_appid
    amount: int
    notify_url: str | None
    payer: dict[str, str] = field(default_factory=dict)
    state: TradeState = TradeState.NOTPAY
    state_desc: str | None = None
    transaction_id: str | None = None
    prepay: Mapping[str, str] | None = None  # {prepay_id} | {code_url} | {h5_url}
    refusal: Reply | None = None  # codepay declines are answered the same on a repeat
    success_time: str | None = None
    charged: int = 0
    charges: int = 0
    refunded: int = 0
    refund_reserved: int = 0  # refunded + refunds still processing
    refund_count: int = 0

    @property
    def out_trade_no(self) -> str:
        return self.key[1]

    def transaction(self) -> dict[str, object]:
        amount: dict[str, object] = {"total": self.amount, "currency": "CNY"}
        out: dict[str, object] = {
            **self.ident,
            "out_trade_no": self.out_trade_no,
            "trade_type": _TRADE_TYPES[self.kind],
            "trade_state": self.state.value,
            "trade_state_desc": self.state_desc or _DESCS[self.state],
            "amount": amount,
        }
        if self.transaction_id is not None:
            out["transaction_id"] = self.transaction_id
            out["bank_type"] = "OTHERS"
            out["success_time"] = self.success_time
            amount.update(payer_total=self.charged, payer_currency="CNY")
        if self.payer:
            out["payer"] = dict(self.payer)
        if isinstance(self.params.get("attach"), str):
            out["attach"] = self.params["attach"]
        return out


@dataclass(slots=True)
class _Refund:
    key: tuple[str, str]  # (sub_mchid or "", out_refund_no)
    params: tuple[object, ...]
    order: _Order
    refund_id: str
    amount: int
    notify_url: str | None
    create_time: str
    status: RefundStatus = RefundStatus.PROCESSING
    success_time: str | None = None

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "refund_id": self.refund_id,
            "out_refund_no": self.key[1],
            "transaction_id": self.order.transaction_id,
            "out_trade_no": self.order.out_trade_no,
            "channel": "ORIGINAL",
            "user_received_account": "支付用户零钱",
            "create_time": self.create_time,
            "status": self.status.value,
            "funds_account": "AVAILABLE",
            "amount": self._amount(),
        }
        if self.success_time is not None:
            out["success_time"] = self.success_time
        return out

    def _amount(self) -> dict[str, object]:
        total = self.order.amount
        return {
            "total": total,
            "refund": self.amount,
            "payer_total": total,
            "payer_refund": self.amount,
            "settlement_total": total,
            "settlement_refund": self.amount,
            "discount_refund": 0,
            "currency": "CNY",
        }

    def notification(self) -> dict[str, object]:
        ident = self.order.ident
        owner = (
            {"sp_mchid": ident["sp_mchid"], "sub_mchid": ident["sub_mchid"]}
            if "sub_mchid" in ident
            else {"mchid": ident["mchid"]}
        )
        amount = self._amount()
        return {
            **owner,
            "transaction_id": self.order.transaction_id,
            "out_trade_no": self.order.out_trade_no,
            "refund_id": self.refund_id,
            "out_refund_no": self.key[1],
            "refund_status": self.status.value,
            "success_time": self.success_time,
            "user_received_account": "支付用户零钱",
            "amount": {k: amount[k] for k in ("total", "refund", "payer_total", "payer_refund")},
        }


Schedule = Callable[[float, Callable[[], None]], None]
# (notify_url, event_type, summary, original_type, plaintext)
Emit = Callable[[str, str, str, str, Mapping[str, object]], None]


# --------------------------------------------------------------------------- ledger
@final
class Ledger:
    """Orders and refunds of one (service-provider) merchant; synchronous on purpose."""

    __slots__ = ("_appid", "_emit", "_ids", "_mchid", "_orders", "_refunds", "_schedule", "_u202")

    def __init__(
        self, creds: WeChatPayCredentials, schedule: Schedule, emit: Emit, *, userpaying_202: bool
    ) -> None:
        self._mchid = creds.mchid
        self._appid = creds.appid
        self._schedule = schedule  # (unscaled delay, callback)
        self._emit = emit
        self._u202 = userpaying_202
        self._orders: dict[tuple[str, str], _Order] = {}
        self._refunds: dict[tuple[str, str], _Refund] = {}
        self._ids = itertools.count(1)

    def _serial(self) -> int:
        return next(self._ids)

    # ----------------------------------------------------------------- identities
    def _identity(self, body: Mapping[str, object], partner: bool) -> dict[str, str]:
        """appid + mchid (or the partner quartet) of a body; they must be ours."""
        if not partner:
            appid, mchid = _text(body, "appid", max_len=32), _text(body, "mchid", max_len=32)
            if (appid, mchid) != (self._appid, self._mchid):
                raise _Mismatch
            return {"appid": appid, "mchid": mchid}
        ident = {
            "sp_appid": _text(body, "sp_appid", max_len=32),
            "sp_mchid": _text(body, "sp_mchid", max_len=32),
            "sub_mchid": _digits(body, "sub_mchid"),
        }
        if (ident["sp_appid"], ident["sp_mchid"]) != (self._appid, self._mchid):
            raise _Mismatch
        if "sub_appid" in body:
            ident["sub_appid"] = _text(body, "sub_appid", max_len=32)
        return ident

    def _mch_scope(self, fields: Mapping[str, object], partner: bool) -> str:
        """The sub_mchid a close/query acts for ("" when direct); the mchid must be ours."""
        if not partner:
            if _text(fields, "mchid", max_len=32) != self._mchid:
                raise _Mismatch
            return ""
        if _text(fields, "sp_mchid", max_len=32) != self._mchid:
            raise _Mismatch
        return _digits(fields, "sub_mchid")

    # ----------------------------------------------------------------- order creation
    def create(self, kind: str, partner: bool, body: Mapping[str, object]) -> Reply:
        ident = self._identity(body, partner)
        no = _out_trade_no(body)
        amount = _amount_total(body)
        _text(body, "description", max_len=127)
        _text(body, "attach", max_len=128, required=False)
        _time_expire(body)
        notify_url = None if kind == "codepay" else _notify_url(body, required=True)
        payer = _payer(kind, body, ident)
        key = (ident.get("sub_mchid", ""), no)
        existing = self._orders.get(key)
        if existing is not None:
            return self._repeat(existing, kind, body)
        order = _Order(key, kind, dict(body), ident, amount, notify_url, payer=payer)
        self._orders[key] = order
        if kind == "codepay":
            return self._codepay(order, str(_obj(body, "payer")["auth_code"]))
        order.prepay = self._prepay(kind)
        return Reply(200, order.prepay)

    def _repeat(self, order: _Order, kind: str, body: Mapping[str, object]) -> Reply:
        if order.kind != kind or order.params != body:
            return _error(403, "OUT_TRADE_NO_USED", "商户订单号重复")
        if order.state in _ENDED:
            return _error(400, "ORDER_CLOSED", "订单已关闭")
        if kind == "codepay":
            return self._codepay_answer(order)
        if order.state in _PAID:
            return _error(400, "ORDERPAID", "该订单已支付")
        return Reply(200, order.prepay)

    def _prepay(self, kind: str) -> dict[str, str]:
        prepay_id = f"wx{datetime.now(_CN):%d%H%M%S}{secrets.token_hex(13)}"
        if kind == "native":
            return {"code_url": f"weixin://wxpay/bizpayurl?pr={protocol.new_nonce(7)}"}
        if kind == "h5":
            url = "https://wx.tenpay.com/cgi-bin/mmpayweb-bin/checkmweb"
            return {"h5_url": f"{url}?prepay_id={prepay_id}&package={self._serial():010d}"}
        return {"prepay_id": prepay_id}

    def _codepay(self, order: _Order, auth_code: str) -> Reply:
        match auth_code[-1]:
            case "2":
                order.state, order.state_desc = TradeState.PAYERROR, "余额不足"
                order.refusal = _error(403, "NOTENOUGH", "用户余额不足")
                return order.refusal
            case "5":
                order.state = TradeState.USERPAYING
                self._schedule(CONFIRM_DELAY, lambda: self._confirm(order))
            case "6":
                order.state = TradeState.USERPAYING  # the payer never confirms
            case "9":
                self._take_money(order)
                return Reply(200, order.transaction(), withhold=True)
            case _:
                self._take_money(order)
        return self._codepay_answer(order)

    def _codepay_answer(self, order: _Order) -> Reply:
        if order.state is TradeState.USERPAYING and self._u202:
            return _error(202, "USERPAYING", "用户支付中，需要输入密码")
        if order.state is TradeState.PAYERROR and order.refusal is not None:
            return order.refusal
        return Reply(200, order.transaction())

    def _confirm(self, order: _Order) -> None:
        if order.state is TradeState.USERPAYING:
            self._take_money(order)

    def _take_money(self, order: _Order) -> None:
        # The one place money is taken: guarded so an order is never charged twice.
        if order.charges:
            return
        order.charges = 1
        order.charged = order.amount
        order.state, order.state_desc = TradeState.SUCCESS, None
        order.success_time = _now_text()
        order.transaction_id = f"42000{datetime.now(_CN):%Y%m%d}{self._serial():015d}"
        if not order.payer:
            openid = "oUpF8u" + protocol.new_nonce(22)
            order.payer = (
                {"sp_openid": openid} if "sub_mchid" in order.ident else {"openid": openid}
            )

    # ----------------------------------------------------------------- order operations
    def query(self, partner: bool, no: str, params: Mapping[str, str]) -> Reply:
        order = self._orders.get((self._mch_scope(params, partner), no))
        if order is None:
            return _error(404, "ORDER_NOT_EXIST", "订单不存在")
        return Reply(200, order.transaction())

    def query_by_id(self, partner: bool, transaction_id: str, params: Mapping[str, str]) -> Reply:
        scope = self._mch_scope(params, partner)
        for order in self._orders.values():
            if order.key[0] == scope and order.transaction_id == transaction_id:
                return Reply(200, order.transaction())
        return _error(404, "ORDER_NOT_EXIST", "订单不存在")

    def close(self, partner: bool, no: str, body: Mapping[str, object]) -> Reply:
        order = self._orders.get((self._mch_scope(body, partner), no))
        if order is None:
            return _error(404, "ORDER_NOT_EXIST", "订单不存在")
        if order.state in _PAID:
            return _error(400, "ORDERPAID", "订单已支付，不能关闭")
        if order.state not in _ENDED:
            order.state, order.state_desc = TradeState.CLOSED, None
        return Reply(204, None)

    def reverse(self, partner: bool, no: str, body: Mapping[str, object]) -> Reply:
        ident = self._identity(body, partner)
        order = self._orders.get((ident.get("sub_mchid", ""), no))
        if order is None:
            return _error(404, "ORDER_NOT_EXIST", "订单不存在")
        if order.kind != "codepay":
            return _error(400, "INVALID_REQUEST", "只有付款码支付订单可以撤销")
        if order.state in _PAID:
            # Everything not refunded yet goes back to the payer.
            order.refunded += order.charged - order.refund_reserved
            order.refund_reserved = order.charged
        if order.state is not TradeState.CLOSED:
            order.state, order.state_desc = TradeState.REVOKED, None
        return Reply(200, {**ident, "out_trade_no": no})

    # ----------------------------------------------------------------- refunds
    def refund(self, body: Mapping[str, object]) -> Reply:
        scope = _digits(body, "sub_mchid") if "sub_mchid" in body else ""
        refund_no = _text(body, "out_refund_no", max_len=64)
        if not protocol.valid_out_refund_no(refund_no):
            raise _Invalid("out_refund_no must be 1-64 characters of [0-9A-Za-z_-]")
        refund_amount, total = _refund_amounts(body)
        _text(body, "reason", max_len=80, required=False)
        notify_url = _notify_url(body, required=False)
        order = self._refund_target(scope, body)
        params = (order.key if order else None, refund_amount, total)
        known = self._refunds.get((scope, refund_no))
        if known is not None:
            if known.params != params:
                return _error(400, "INVALID_REQUEST", "退款单号已用于其他退款参数")
            return Reply(200, known.to_json())
        if order is None:
            return _error(404, "RESOURCE_NOT_EXISTS", "订单不存在")
        refusal = _refund_refusal(order, refund_amount, total)
        if refusal is not None:
            return refusal
        order.refund_reserved += refund_amount
        order.refund_count += 1
        refund = _Refund(
            (scope, refund_no),
            params,
            order,
            f"50{datetime.now(_CN):%Y%m%d}{self._serial():020d}",
            refund_amount,
            notify_url,
            _now_text(),
        )
        self._refunds[refund.key] = refund
        self._schedule(REFUND_DELAY, lambda: self._settle_refund(refund))
        return Reply(200, refund.to_json())

    def _refund_target(self, scope: str, body: Mapping[str, object]) -> _Order | None:
        if "out_trade_no" in body:
            return self._orders.get((scope, _out_trade_no(body)))
        transaction_id = _text(body, "transaction_id", max_len=32)
        for order in self._orders.values():
            if order.key[0] == scope and order.transaction_id == transaction_id:
                return order
        return None

    def _settle_refund(self, refund: _Refund) -> None:
        refund.status = RefundStatus.SUCCESS
        refund.success_time = _now_text()
        order = refund.order
        order.refunded += refund.amount
        if order.state is TradeState.SUCCESS:
            order.state = TradeState.REFUND
        if refund.notify_url is not None:
            self._emit(
                refund.notify_url, "REFUND.SUCCESS", "退款成功", "refund", refund.notification()
            )

    def get_refund(self, refund_no: str, params: Mapping[str, str]) -> Reply:
        scope = _digits(params, "sub_mchid") if "sub_mchid" in params else ""
        refund = self._refunds.get((scope, refund_no))
        if refund is None:
            return _error(404, "RESOURCE_NOT_EXISTS", "退款单不存在")
        return Reply(200, refund.to_json())

    # ----------------------------------------------------------------- simulated payer
    def find(self, no: str, sub_mchid: str | None) -> _Order | None:
        if sub_mchid is not None:
            return self._orders.get((sub_mchid, no))
        matches = [o for (_, o_no), o in self._orders.items() if o_no == no]
        return matches[0] if len(matches) == 1 else None

    def payer_pays(self, order: _Order) -> Reply:
        if order.state not in _OPEN:
            return _error(409, "ORDER_NOT_OPEN", f"order is {order.state.value}")
        self._take_money(order)
        if order.notify_url is not None:
            self._emit(
                order.notify_url, "TRANSACTION.SUCCESS", "支付成功", "transaction",
                order.transaction(),
            )  # fmt: skip
        return Reply(200, order.transaction())

    def payer_fails(self, order: _Order) -> Reply:
        if order.state not in _OPEN:
            return _error(409, "ORDER_NOT_OPEN", f"order is {order.state.value}")
        order.state, order.state_desc = TradeState.PAYERROR, "银行卡已冻结"
        return Reply(200, order.transaction())  # WeChat notifies successes only

    # ----------------------------------------------------------------- ledger view
    def snapshot(self) -> dict[str, object]:
        orders = {
            (no if not sub else f"{sub}/{no}"): {
                "status": o.state.value,
                "charged": o.charged,
                "charges": o.charges,
                "refunded": o.refunded,
            }
            for (sub, no), o in self._orders.items()
        }
        totals = {
            "orders": len(self._orders),
            "charged": sum(o.charged for o in self._orders.values()),
            "charges": sum(o.charges for o in self._orders.values()),
            "refunded": sum(o.refunded for o in self._orders.values()),
        }
        return {"orders": orders, "totals": totals}


def _refund_refusal(order: _Order, refund_amount: int, total: int) -> Reply | None:
    if order.charged == 0:
        return _error(400, "INVALID_REQUEST", "订单未支付，不能退款")
    if total != order.amount:
        return _error(400, "INVALID_REQUEST", "订单金额与原订单不一致")
    if order.refund_count >= MAX_REFUNDS_PER_ORDER:
        return _error(400, "INVALID_REQUEST", "退款次数超过限制")
    if order.refund_reserved + refund_amount > order.charged:
        return _error(400, "INVALID_REQUEST", "申请退款金额超过订单可退金额")
    return None


# --------------------------------------------------------------------------- body checks
def _text(body: Mapping[str, object], key: str, *, max_len: int, required: bool = True) -> str:
    value = body.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or not value or len(value) > max_len:
        raise _Invalid(f"{key} must be a string of 1-{max_len} characters")
    return value


def _digits(body: Mapping[str, object], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not _DIGITS_RE.fullmatch(value):
        raise _Invalid(f"{key} must be 1-32 digits")
    return value


def _obj(body: Mapping[str, object], key: str) -> Mapping[str, object]:
    value = body.get(key)
    if not isinstance(value, dict):
        raise _Invalid(f"{key} must be an object")
    return value


def _out_trade_no(body: Mapping[str, object]) -> str:
    value = body.get("out_trade_no")
    if not protocol.valid_out_trade_no(value):
        raise _Invalid("out_trade_no must be 6-32 characters of [0-9A-Za-z_-]")
    return value


def _currency(amount: Mapping[str, object]) -> None:
    if amount.get("currency", "CNY") != "CNY":
        raise _Invalid("amount.currency must be CNY")


def _amount_total(body: Mapping[str, object]) -> int:
    amount = _obj(body, "amount")
    total = amount.get("total")
    if not protocol.valid_amount(total):
        raise _Invalid("amount.total must be a positive integer of fen")
    _currency(amount)
    return total


def _refund_amounts(body: Mapping[str, object]) -> tuple[int, int]:
    amount = _obj(body, "amount")
    refund, total = amount.get("refund"), amount.get("total")
    if not protocol.valid_amount(refund) or not protocol.valid_amount(total):
        raise _Invalid("amount.refund and amount.total must be positive integers of fen")
    _currency(amount)
    return refund, total


def _time_expire(body: Mapping[str, object]) -> None:
    value = body.get("time_expire")
    if value is None:
        return
    try:
        parsed = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise _Invalid("time_expire must be an RFC 3339 time with an offset")


def _notify_url(body: Mapping[str, object], *, required: bool) -> str | None:
    value = body.get("notify_url")
    if value is None and not required:
        return None
    if not isinstance(value, str) or len(value) > 256:
        raise _Invalid("notify_url must be an http(s) URL")
    parts = urlsplit(value)
    # Real WeChat wants https; http is accepted so local receivers work.
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query:
        raise _Invalid("notify_url must be an http(s) URL without a query string")
    return value


def _payer(kind: str, body: Mapping[str, object], ident: Mapping[str, str]) -> dict[str, str]:
    """Scene-specific checks; returns the payer as a Transaction shows it."""
    if kind == "codepay":
        auth_code = _obj(body, "payer").get("auth_code")
        if not isinstance(auth_code, str) or not _AUTH_CODE_RE.fullmatch(auth_code):
            raise _Invalid("payer.auth_code must be the scanned payment code")
        _obj(_obj(body, "scene_info"), "store_info")
        return {}
    if kind == "jsapi":
        return _jsapi_payer(_obj(body, "payer"), ident)
    if kind == "h5":
        scene = _obj(body, "scene_info")
        _text(scene, "payer_client_ip", max_len=45)
        if _obj(scene, "h5_info").get("type") not in ("iOS", "Android", "Wap"):
            raise _Invalid("scene_info.h5_info.type must be iOS, Android or Wap")
    return {}


def _jsapi_payer(payer: Mapping[str, object], ident: Mapping[str, str]) -> dict[str, str]:
    if "sub_mchid" not in ident:
        return {"openid": _text(payer, "openid", max_len=128)}
    if "sub_openid" in payer:
        if "sub_appid" not in ident:
            raise _Invalid("payer.sub_openid needs sub_appid")
        return {"sub_openid": _text(payer, "sub_openid", max_len=128)}
    return {"sp_openid": _text(payer, "sp_openid", max_len=128)}


# --------------------------------------------------------------------------- runtime
@final
class Runtime(SimRuntime):
    """Event-loop side of the simulator: timers, notifications, faults, randomness."""

    __slots__ = ("_platform_key", "credentials", "ledger", "options")

    def __init__(self, credentials: WeChatPayCredentials, options: SimulatorOptions) -> None:
        if credentials.platform_private_key is None:
            raise ValueError("the simulator needs platform_private_key.pem in its bundle")
        super().__init__(options, Delivery("wechatpay", NOTIFY_RETRY_DELAYS, NOTIFY_TIMEOUT, log))
        self._platform_key = credentials.platform_private_key
        self.credentials = credentials
        self.options = options
        self.ledger = Ledger(
            credentials, self.schedule, self.emit, userpaying_202=options.userpaying_as_202
        )

    def __repr__(self) -> str:
        return f"Runtime(mchid={self.credentials.mchid!r}, options={self.options!r})"

    # ----------------------------------------------------------------- notifications
    def emit(
        self,
        url: str,
        event_type: str,
        summary: str,
        original_type: str,
        plaintext: Mapping[str, object],
    ) -> None:
        if self._closing.is_set() or self._session is None:
            return
        resource = protocol.encrypt_resource(
            self.credentials.apiv3_key,
            _dump(plaintext),
            associated_data=original_type,
            original_type=original_type,
        )
        envelope = {
            "id": str(uuid.uuid4()),
            "create_time": _now_text(),
            "resource_type": "encrypt-resource",
            "event_type": event_type,
            "summary": summary,
            "resource": resource,
        }
        # Every attempt is signed afresh, so a late retry is still inside the 300 s window.
        self.notify(url, _dump(envelope), lambda body: (body, self.signed_headers(body)))

    # ----------------------------------------------------------------- answers
    def authentic(self, request: web.Request, body: bytes) -> bool:
        return protocol.verify_request(
            self.credentials, request.method, request.raw_path, request.headers, body,
            now=time.time(),
        )  # fmt: skip

    def signed_headers(self, body: bytes) -> dict[str, str]:
        headers = protocol.sign_response(
            self._platform_key, self.credentials.platform_public_key_id, body, now=time.time()
        )
        headers["Content-Type"] = "application/json"
        return headers

    def answer(self, reply: Reply) -> web.Response:
        body = b"" if reply.payload is None else _dump(reply.payload)
        return web.Response(status=reply.status, body=body, headers=self.signed_headers(body))


SIM_KEY: web.AppKey[Runtime] = web.AppKey("wechatpay_simulator", Runtime)


def _dump(payload: Mapping[str, object]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


# --------------------------------------------------------------------------- signed API
ApiOp = Callable[[Ledger, web.Request, Mapping[str, object]], Reply]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _signed_api(op: ApiOp, *, has_body: bool) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        sim = request.app[SIM_KEY]
        raw = await request.read()
        if not sim.authentic(request, raw):
            return sim.answer(_error(401, "SIGN_ERROR", "签名错误，请检查后再试"))
        return await sim.perform(
            request,
            lambda: _apply(op, sim.ledger, request, raw, has_body),
            sim.answer,
            lambda: sim.answer(_error(500, "SYSTEM_ERROR", "系统错误")),
        )

    return handler


def _apply(op: ApiOp, ledger: Ledger, request: web.Request, raw: bytes, has_body: bool) -> Reply:
    body: Mapping[str, object] = {}
    if has_body:
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = None
        if not isinstance(parsed, dict):
            return _error(400, "PARAM_ERROR", "请求体不是 JSON 对象")
        body = parsed
    try:
        return op(ledger, request, body)
    except _Invalid as exc:
        return _error(400, "PARAM_ERROR", str(exc))
    except _Mismatch:
        return _error(400, "APPID_MCHID_NOT_MATCH", "appid和mch_id不匹配")
    except Exception:
        log.exception("wechatpay simulator failed on %s %s", request.method, request.path)
        return _error(500, "SYSTEM_ERROR", "系统错误")


def _no(request: web.Request) -> str:
    return request.match_info["no"]


def _order_routes(prefix: str, partner: bool) -> list[web.RouteDef]:
    def create(kind: str) -> ApiOp:
        return lambda lg, _r, b: lg.create(kind, partner, b)

    routes = [
        web.post(f"{prefix}/{kind}", _signed_api(create(kind), has_body=True)) for kind in _KINDS
    ]
    by_no = f"{prefix}/out-trade-no/{{no}}"
    routes += [
        web.get(
            by_no,
            _signed_api(lambda lg, r, _b: lg.query(partner, _no(r), r.query), has_body=False),
        ),
        web.get(
            f"{prefix}/id/{{no}}",
            _signed_api(lambda lg, r, _b: lg.query_by_id(partner, _no(r), r.query), has_body=False),
        ),
        web.post(
            f"{by_no}/close",
            _signed_api(lambda lg, r, b: lg.close(partner, _no(r), b), has_body=True),
        ),
        web.post(
            f"{by_no}/reverse",
            _signed_api(lambda lg, r, b: lg.reverse(partner, _no(r), b), has_body=True),
        ),
    ]
    return routes


# --------------------------------------------------------------------------- sim controls
def _sim_order(request: web.Request) -> _Order | web.Response:
    sub = request.query.get("sub_mchid")
    order = request.app[SIM_KEY].ledger.find(_no(request), sub)
    if order is None:
        return web.json_response(
            {"code": "ORDER_NOT_EXIST", "message": "no such order (or ambiguous: add ?sub_mchid=)"},
            status=404,
        )
    return order


async def _sim_pay(request: web.Request) -> web.Response:
    order = _sim_order(request)
    if isinstance(order, web.Response):
        return order
    reply = request.app[SIM_KEY].ledger.payer_pays(order)
    return web.json_response(dict(reply.payload or {}), status=reply.status)


async def _sim_fail(request: web.Request) -> web.Response:
    order = _sim_order(request)
    if isinstance(order, web.Response):
        return order
    reply = request.app[SIM_KEY].ledger.payer_fails(order)
    return web.json_response(dict(reply.payload or {}), status=reply.status)


async def _sim_ledger(request: web.Request) -> web.Response:
    return web.json_response(request.app[SIM_KEY].ledger.snapshot())


def create_app(
    credentials: WeChatPayCredentials, options: SimulatorOptions = SimulatorOptions()
) -> web.Application:
    """The simulator as an aiohttp application; `credentials` must hold the platform key."""
    app = web.Application()
    install(app, SIM_KEY, Runtime(credentials, options))
    app.add_routes(_order_routes("/v3/pay/transactions", partner=False))
    app.add_routes(_order_routes("/v3/pay/partner/transactions", partner=True))
    app.add_routes(
        [
            web.post(
                "/v3/refund/domestic/refunds",
                _signed_api(lambda lg, _r, b: lg.refund(b), has_body=True),
            ),
            web.get(
                "/v3/refund/domestic/refunds/{no}",
                _signed_api(lambda lg, r, _b: lg.get_refund(_no(r), r.query), has_body=False),
            ),
            web.post("/sim/orders/{no}/pay", _sim_pay),
            web.post("/sim/orders/{no}/fail", _sim_fail),
            *fault_routes(SIM_KEY),
            web.get("/sim/ledger", _sim_ledger),
        ]
    )
    return app
