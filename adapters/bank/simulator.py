"""Simulator of the bank rail: speaks the real signed protocol, keeps a ledger, breaks on demand.

The ledger (`Ledger`) is a synchronous state machine: every check-and-apply runs without
an await in between, so concurrent identical requests can never charge an order twice.
`Runtime` owns what needs the event loop: timers, notification deliveries, faults.
"""

from __future__ import annotations

import itertools
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import final
from urllib.parse import urlsplit

from aiohttp import web

from adapters.bank import protocol
from adapters.bank.protocol import BankCredentials, OrderStatus, RefundStatus
from adapters.simkit import Delivery, Faults, SimRuntime, fault_routes, install

__all__ = ["SIM_KEY", "Faults", "Ledger", "Runtime", "SimulatorOptions", "create_app"]

log = logging.getLogger(__name__)

CONFIRM_DELAY = 3.0  # payer-code "still confirming" orders pay after this (× time_scale)
REFUND_DELAY = 1.0
# Delays before the 2nd..10th notification attempts (× time_scale).
NOTIFY_RETRY_DELAYS = (15.0, 15.0, 30.0, 180.0, 600.0, 1800.0, 1800.0, 3600.0, 3600.0)
NOTIFY_TIMEOUT = 10.0

_OPEN = frozenset({OrderStatus.WAITING, OrderStatus.PAYING})
_ENDED = frozenset({OrderStatus.CLOSED, OrderStatus.REVERSED})


@dataclass(frozen=True)
class SimulatorOptions:
    time_scale: float = (
        1.0  # multiplies every delay (confirm delay, refund delay, notify retry schedule)
    )
    hang_seconds: float = 30.0  # how long a withheld answer hangs before the connection is dropped
    seed: int | None = None


# --------------------------------------------------------------------------- ledger records
@dataclass(slots=True)
class _Order:
    order_no: str
    bank_txn_id: str
    params: tuple[object, ...] | None  # None: only known through a reversal
    status: OrderStatus
    amount: int
    currency: str
    created_at: str
    qr_code: str | None = None
    notify_url: str | None = None
    charged: int = 0
    charges: int = 0
    refunded: int = 0
    refund_reserved: int = 0  # refunded + refunds still processing
    paid_at: str | None = None
    failure_code: str | None = None

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "order_no": self.order_no,
            "bank_txn_id": self.bank_txn_id,
            "status": self.status.value,
            "amount": self.amount,
            "currency": self.currency,
            "charged": self.charged,
            "refunded": self.refunded,
            "created_at": self.created_at,
        }
        if self.qr_code is not None:
            out["qr_code"] = self.qr_code
        if self.paid_at is not None:
            out["paid_at"] = self.paid_at
        if self.failure_code is not None:
            out["failure_code"] = self.failure_code
        return out


@dataclass(slots=True)
class _Refund:
    refund_no: str
    order_no: str
    amount: int
    bank_refund_id: str
    notify_url: str | None
    status: RefundStatus = RefundStatus.PROCESSING

    def to_json(self) -> dict[str, object]:
        return {
            "refund_no": self.refund_no,
            "order_no": self.order_no,
            "amount": self.amount,
            "status": self.status.value,
            "bank_refund_id": self.bank_refund_id,
        }


@final
@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    payload: Mapping[str, object]
    withhold: bool = False  # applied, but the caller must never see the answer


class _Invalid(Exception):
    pass


def _error(status: int, code: str, message: str) -> Reply:
    return Reply(status, {"code": code, "message": message})


def _now_text() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


Schedule = Callable[[float, Callable[[], None]], None]
Emit = Callable[[str, str, Mapping[str, object]], None]


# --------------------------------------------------------------------------- ledger
@final
class Ledger:
    """Orders and refunds of one merchant; every method is synchronous on purpose."""

    __slots__ = ("_emit", "_ids", "_key", "_orders", "_refunds", "_schedule")

    def __init__(self, hmac_key: bytes, schedule: Schedule, emit: Emit) -> None:
        self._key = hmac_key
        self._schedule = schedule  # (unscaled delay, callback)
        self._emit = emit  # (notify_url, event, data)
        self._orders: dict[str, _Order] = {}
        self._refunds: dict[str, _Refund] = {}
        self._ids = itertools.count(1)

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}{datetime.now(UTC):%Y%m%d}{next(self._ids):012d}"

    # ----------------------------------------------------------------- payer-code charges
    def charge(self, body: Mapping[str, object]) -> Reply:
        order_no = _order_no(body, "order_no")
        amount, currency = _money(body)
        auth_code = _text(body, "auth_code", max_len=64, pattern_alnum=True)
        description = _text(body, "description", required=False)
        params = ("charge", amount, currency, auth_code, description)
        existing = self._existing(order_no, params)
        if existing is not None:
            return existing
        order = self._open_order(order_no, params, amount, currency, OrderStatus.PAYING)
        match auth_code[-1]:
            case "2":
                order.status = OrderStatus.FAILED
                order.failure_code = "INSUFFICIENT_FUNDS"
                return _error(402, "INSUFFICIENT_FUNDS", "the payer's balance is insufficient")
            case "5":
                self._schedule(CONFIRM_DELAY, lambda: self._confirm(order_no))
            case "6":
                pass  # the payer never confirms
            case "9":
                self._take_money(order)
                return Reply(200, order.to_json(), withhold=True)
            case _:
                self._take_money(order)
        return Reply(200, order.to_json())

    def _confirm(self, order_no: str) -> None:
        order = self._orders[order_no]
        if order.status is OrderStatus.PAYING:
            self._take_money(order)
            self._notify_order(order, "order.paid")

    # ----------------------------------------------------------------- QR orders
    def qr_order(self, body: Mapping[str, object]) -> Reply:
        order_no = _order_no(body, "order_no")
        amount, currency = _money(body)
        description = _text(body, "description", required=False)
        notify_url = _url(body, "notify_url", required=True)
        expire = body.get("expire_seconds")
        if expire is not None and (type(expire) is not int or expire <= 0):
            raise _Invalid("expire_seconds must be a positive integer")
        params = ("qr", amount, currency, description, notify_url, expire)
        existing = self._existing(order_no, params)
        if existing is not None:
            return existing
        order = self._open_order(order_no, params, amount, currency, OrderStatus.WAITING)
        order.notify_url = notify_url
        order.qr_code = f"bankqr://pay/{order_no}?sig={protocol.qr_signature(self._key, order_no)}"
        if expire is not None:
            self._schedule(float(expire), lambda: self._expire(order_no))
        return Reply(200, order.to_json())

    def _expire(self, order_no: str) -> None:
        order = self._orders[order_no]
        if order.status is OrderStatus.WAITING:
            order.status = OrderStatus.CLOSED

    def _existing(self, order_no: str, params: tuple[object, ...]) -> Reply | None:
        order = self._orders.get(order_no)
        if order is None:
            return None
        if order.status in _ENDED:
            return _error(409, "ORDER_CLOSED", "the order was closed or reversed")
        if order.params != params:
            return _error(409, "DUPLICATE_ORDER_NO", "order_no already used with other parameters")
        return Reply(200, order.to_json())

    def _open_order(
        self,
        order_no: str,
        params: tuple[object, ...],
        amount: int,
        currency: str,
        status: OrderStatus,
    ) -> _Order:
        order = _Order(order_no, self._new_id("BT"), params, status, amount, currency, _now_text())
        self._orders[order_no] = order
        return order

    def _take_money(self, order: _Order) -> None:
        # The one place money is taken: guarded so an order is never charged twice.
        if order.charges:
            return
        order.charges = 1
        order.charged = order.amount
        order.status = OrderStatus.SUCCESS
        order.paid_at = _now_text()

    # ----------------------------------------------------------------- order operations
    def get_order(self, order_no: str) -> Reply:
        order = self._orders.get(order_no)
        if order is None:
            return _error(404, "ORDER_NOT_FOUND", "no such order")
        return Reply(200, order.to_json())

    def reverse(self, order_no: str) -> Reply:
        order = self._orders.get(order_no)
        if order is None:
            # Remember the reversal so a charge arriving late cannot take money.
            order = _Order(
                order_no, self._new_id("BT"), None, OrderStatus.REVERSED, 0, "CNY", _now_text()
            )
            self._orders[order_no] = order
        elif order.status is OrderStatus.SUCCESS:
            order.refunded += order.charged - order.refund_reserved
            order.refund_reserved = order.charged
            order.status = OrderStatus.REVERSED
        elif order.status is not OrderStatus.CLOSED:
            order.status = OrderStatus.REVERSED
        return Reply(200, order.to_json())

    def close(self, order_no: str) -> Reply:
        order = self._orders.get(order_no)
        if order is None:
            return _error(404, "ORDER_NOT_FOUND", "no such order")
        if order.status is OrderStatus.SUCCESS:
            return _error(409, "ORDER_PAID", "the order is paid; refund it instead")
        if order.status not in _ENDED:
            order.status = OrderStatus.CLOSED
        return Reply(200, order.to_json())

    # ----------------------------------------------------------------- refunds
    def refund(self, body: Mapping[str, object]) -> Reply:
        order_no = _order_no(body, "order_no")
        refund_no = _order_no(body, "refund_no")
        amount = body.get("amount")
        if not protocol.valid_amount(amount):
            raise _Invalid("amount must be a positive integer of minor units")
        _text(body, "reason", required=False, max_len=256)
        notify_url = _url(body, "notify_url", required=False)
        known = self._refunds.get(refund_no)
        if known is not None:
            if (known.order_no, known.amount) != (order_no, amount):
                return _error(
                    409, "DUPLICATE_REFUND_NO", "refund_no already used with other parameters"
                )
            return Reply(200, known.to_json())
        order = self._orders.get(order_no)
        if order is None:
            return _error(404, "ORDER_NOT_FOUND", "no such order")
        if order.charged == 0:
            return _error(409, "ORDER_NOT_PAID", "nothing was charged on this order")
        if order.refund_reserved + amount > order.charged:
            return _error(422, "REFUND_EXCEEDS_AMOUNT", "refunds would exceed the charged amount")
        order.refund_reserved += amount
        refund = _Refund(refund_no, order_no, amount, self._new_id("BR"), notify_url)
        self._refunds[refund_no] = refund
        self._schedule(REFUND_DELAY, lambda: self._settle_refund(refund))
        return Reply(200, refund.to_json())

    def _settle_refund(self, refund: _Refund) -> None:
        refund.status = RefundStatus.SUCCESS
        self._orders[refund.order_no].refunded += refund.amount
        if refund.notify_url is not None:
            self._emit(refund.notify_url, "refund.succeeded", refund.to_json())

    def get_refund(self, refund_no: str) -> Reply:
        refund = self._refunds.get(refund_no)
        if refund is None:
            return _error(404, "REFUND_NOT_FOUND", "no such refund")
        return Reply(200, refund.to_json())

    # ----------------------------------------------------------------- simulated payer
    def payer_pays(self, order_no: str) -> Reply:
        order = self._orders.get(order_no)
        if order is None:
            return _error(404, "ORDER_NOT_FOUND", "no such order")
        if order.status not in _OPEN:
            return _error(409, "ORDER_NOT_OPEN", f"order is {order.status.value}")
        self._take_money(order)
        self._notify_order(order, "order.paid")
        return Reply(200, order.to_json())

    def payer_fails(self, order_no: str) -> Reply:
        order = self._orders.get(order_no)
        if order is None:
            return _error(404, "ORDER_NOT_FOUND", "no such order")
        if order.status not in _OPEN:
            return _error(409, "ORDER_NOT_OPEN", f"order is {order.status.value}")
        order.status = OrderStatus.FAILED
        order.failure_code = "CARD_DECLINED"
        self._notify_order(order, "order.failed")
        return Reply(200, order.to_json())

    def _notify_order(self, order: _Order, event: str) -> None:
        if order.notify_url is not None:
            self._emit(order.notify_url, event, order.to_json())

    # ----------------------------------------------------------------- ledger view
    def snapshot(self) -> dict[str, object]:
        orders = {
            no: {
                "status": o.status.value,
                "charged": o.charged,
                "charges": o.charges,
                "refunded": o.refunded,
            }
            for no, o in self._orders.items()
        }
        totals = {
            "orders": len(self._orders),
            "charged": sum(o.charged for o in self._orders.values()),
            "charges": sum(o.charges for o in self._orders.values()),
            "refunded": sum(o.refunded for o in self._orders.values()),
        }
        return {"orders": orders, "totals": totals}


# --------------------------------------------------------------------------- body checks
def _order_no(body: Mapping[str, object], key: str) -> str:
    value = body.get(key)
    if not protocol.valid_order_no(value):
        raise _Invalid(f"{key} must be 1-64 characters of [0-9A-Za-z_-]")
    return value


def _money(body: Mapping[str, object]) -> tuple[int, str]:
    amount, currency = body.get("amount"), body.get("currency")
    if not protocol.valid_amount(amount):
        raise _Invalid("amount must be a positive integer of minor units")
    if not protocol.valid_currency(currency):
        raise _Invalid(f"currency must be one of {sorted(protocol.SUPPORTED_CURRENCIES)}")
    return amount, currency


def _text(
    body: Mapping[str, object],
    key: str,
    *,
    required: bool = True,
    max_len: int = 128,
    pattern_alnum: bool = False,
) -> str:
    value = body.get(key, None if required else "")
    if not isinstance(value, str) or len(value) > max_len or (required and not value):
        raise _Invalid(f"{key} must be a string of at most {max_len} characters")
    if pattern_alnum and not (value.isascii() and value.isalnum()):
        raise _Invalid(f"{key} must be ASCII letters and digits")
    return value


def _url(body: Mapping[str, object], key: str, *, required: bool) -> str | None:
    value = body.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or len(value) > 512:
        raise _Invalid(f"{key} must be an http(s) URL")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise _Invalid(f"{key} must be an http(s) URL")
    return value


# --------------------------------------------------------------------------- runtime
@final
class Runtime(SimRuntime):
    """Event-loop side of the simulator: timers, notifications, faults, randomness."""

    __slots__ = ("credentials", "ledger", "options")

    def __init__(self, credentials: BankCredentials, options: SimulatorOptions) -> None:
        super().__init__(options, Delivery("bank", NOTIFY_RETRY_DELAYS, NOTIFY_TIMEOUT, log))
        self.credentials = credentials
        self.options = options
        self.ledger = Ledger(credentials.hmac_key, self.schedule, self.emit)

    def __repr__(self) -> str:
        return f"Runtime(merchant_id={self.credentials.merchant_id!r}, options={self.options!r})"

    # ----------------------------------------------------------------- notifications
    def emit(self, url: str, event: str, data: Mapping[str, object]) -> None:
        body = _dump({"id": f"ntf_{uuid.uuid4().hex}", "event": event, "data": data})
        self.notify(url, body, self._signed_notification)

    def _signed_notification(self, body: bytes) -> tuple[bytes, dict[str, str]]:
        headers = protocol.sign_notification(self.credentials.hmac_key, body, now=time.time())
        headers["Content-Type"] = "application/json"
        return body, headers

    # ----------------------------------------------------------------- answers
    def authentic(self, request: web.Request, body: bytes) -> bool:
        headers = request.headers
        merchant = headers.get(protocol.H_MERCHANT)
        ts = headers.get(protocol.H_TIMESTAMP)
        nonce = headers.get(protocol.H_NONCE)
        signature = headers.get(protocol.H_SIGNATURE)
        if (
            merchant != self.credentials.merchant_id
            or ts is None
            or nonce is None
            or signature is None
        ):
            return False
        if not protocol.valid_nonce(nonce) or not protocol.is_fresh(ts, time.time()):
            return False
        message = protocol.request_string(request.method, request.raw_path, ts, nonce, body)
        return protocol.verify(self.credentials.hmac_key, message, signature)

    def answer(self, reply: Reply) -> web.Response:
        body = _dump(reply.payload)
        headers = protocol.sign_response(
            self.credentials.hmac_key, reply.status, body, now=time.time()
        )
        headers["Content-Type"] = "application/json"
        return web.Response(status=reply.status, body=body, headers=headers)


SIM_KEY: web.AppKey[Runtime] = web.AppKey("bank_simulator", Runtime)


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
            return sim.answer(
                _error(401, "SIGNATURE_INVALID", "signature, merchant or timestamp rejected")
            )
        return await sim.perform(
            request,
            lambda: _apply(op, sim.ledger, request, raw, has_body),
            sim.answer,
            lambda: sim.answer(_error(500, "SYSTEM_ERROR", "temporary failure, nothing was done")),
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
            return _error(400, "INVALID_REQUEST", "body must be a JSON object")
        body = parsed
    try:
        return op(ledger, request, body)
    except _Invalid as exc:
        return _error(400, "INVALID_REQUEST", str(exc))
    except Exception:
        log.exception("bank simulator failed on %s %s", request.method, request.path)
        return _error(500, "SYSTEM_ERROR", "internal error")


def _path_no(request: web.Request) -> str:
    return request.match_info["no"]


# --------------------------------------------------------------------------- sim controls
async def _sim_pay(request: web.Request) -> web.Response:
    reply = request.app[SIM_KEY].ledger.payer_pays(_path_no(request))
    return web.json_response(dict(reply.payload), status=reply.status)


async def _sim_fail(request: web.Request) -> web.Response:
    reply = request.app[SIM_KEY].ledger.payer_fails(_path_no(request))
    return web.json_response(dict(reply.payload), status=reply.status)


async def _sim_ledger(request: web.Request) -> web.Response:
    return web.json_response(request.app[SIM_KEY].ledger.snapshot())


def create_app(
    credentials: BankCredentials, options: SimulatorOptions = SimulatorOptions()
) -> web.Application:
    app = web.Application()
    install(app, SIM_KEY, Runtime(credentials, options))
    app.add_routes(
        [
            web.post("/v1/charges", _signed_api(lambda lg, _r, b: lg.charge(b), has_body=True)),
            web.post("/v1/qr-orders", _signed_api(lambda lg, _r, b: lg.qr_order(b), has_body=True)),
            web.get(
                "/v1/orders/{no}",
                _signed_api(lambda lg, r, _b: lg.get_order(_path_no(r)), has_body=False),
            ),
            web.post(
                "/v1/orders/{no}/reverse",
                _signed_api(lambda lg, r, _b: lg.reverse(_path_no(r)), has_body=False),
            ),
            web.post(
                "/v1/orders/{no}/close",
                _signed_api(lambda lg, r, _b: lg.close(_path_no(r)), has_body=False),
            ),
            web.post("/v1/refunds", _signed_api(lambda lg, _r, b: lg.refund(b), has_body=True)),
            web.get(
                "/v1/refunds/{no}",
                _signed_api(lambda lg, r, _b: lg.get_refund(_path_no(r)), has_body=False),
            ),
            web.post("/sim/orders/{no}/pay", _sim_pay),
            web.post("/sim/orders/{no}/fail", _sim_fail),
            *fault_routes(SIM_KEY),
            web.get("/sim/ledger", _sim_ledger),
        ]
    )
    return app
