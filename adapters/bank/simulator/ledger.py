"""The bank simulator's ledger: orders and refunds of one merchant, and the one place money
is taken.

Every method is synchronous on purpose: each check-and-apply runs without an await in
between, so concurrent identical requests can never charge an order twice.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import final

from adapters.bank import protocol
from adapters.bank.protocol import OrderStatus, RefundStatus
from adapters.bank.simulator import checks
from adapters.bank.simulator.records import OrderRecord, RefundRecord, now_text
from adapters.simkit.payer_code import run_payer_code
from adapters.simkit.replies import Reply, error
from adapters.simkit.runtime import Schedule
from adapters.simkit.snapshot import ledger_snapshot

REFUND_DELAY = 1.0  # a refund stays PROCESSING this long (× time_scale)

_OPEN = frozenset({OrderStatus.WAITING, OrderStatus.PAYING})
_ENDED = frozenset({OrderStatus.CLOSED, OrderStatus.REVERSED})

Emit = Callable[[str, str, Mapping[str, object]], None]  # (notify_url, event, data)


@final
class Ledger:
    """Orders and refunds of one merchant; every method is synchronous on purpose."""

    __slots__ = ("_emit", "_ids", "_key", "_orders", "_refunds", "_schedule")

    def __init__(self, hmac_key: bytes, schedule: Schedule, emit: Emit) -> None:
        self._key = hmac_key
        self._schedule = schedule
        self._emit = emit
        self._orders: dict[str, OrderRecord] = {}
        self._refunds: dict[str, RefundRecord] = {}
        self._ids = itertools.count(1)

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}{datetime.now(UTC):%Y%m%d}{next(self._ids):012d}"

    # ----------------------------------------------------------------- payer-code charges
    def charge(self, body: Mapping[str, object]) -> Reply:
        order_no = checks.order_no(body, "order_no")
        amount, currency = checks.money(body)
        auth_code = checks.text(body, "auth_code", max_len=64, pattern_alnum=True)
        description = checks.text(body, "description", required=False)
        params = ("charge", amount, currency, auth_code, description)
        existing = self._existing(order_no, params)
        if existing is not None:
            return existing
        order = self._open_order(order_no, params, amount, currency, OrderStatus.PAYING)
        return run_payer_code(auth_code, order, self, self._schedule)

    def pay_by_code(self, order: OrderRecord, *, withhold: bool) -> Reply:
        self._take_money(order)
        return Reply(200, order.to_json(), withhold=withhold)

    def decline_code(self, order: OrderRecord) -> Reply:
        order.status = OrderStatus.FAILED
        order.failure_code = "INSUFFICIENT_FUNDS"
        return error(402, "INSUFFICIENT_FUNDS", "the payer's balance is insufficient")

    def await_payer(self, order: OrderRecord) -> Reply:
        return Reply(200, order.to_json())  # opened PAYING

    def payer_confirmed(self, order: OrderRecord) -> None:
        if order.status is OrderStatus.PAYING:
            self._take_money(order)
            self._notify_order(order, "order.paid")

    # ----------------------------------------------------------------- QR orders
    def qr_order(self, body: Mapping[str, object]) -> Reply:
        order_no = checks.order_no(body, "order_no")
        amount, currency = checks.money(body)
        description = checks.text(body, "description", required=False)
        notify_url = checks.url(body, "notify_url", required=True)
        expire = body.get("expire_seconds")
        if expire is not None and (type(expire) is not int or expire <= 0):
            raise checks.invalid("expire_seconds must be a positive integer")
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
            return error(409, "ORDER_CLOSED", "the order was closed or reversed")
        if order.params != params:
            return error(409, "DUPLICATE_ORDER_NO", "order_no already used with other parameters")
        return Reply(200, order.to_json())

    def _open_order(
        self,
        order_no: str,
        params: tuple[object, ...],
        amount: int,
        currency: str,
        status: OrderStatus,
    ) -> OrderRecord:
        order = OrderRecord(
            order_no, self._new_id("BT"), params, status, amount, currency, now_text()
        )
        self._orders[order_no] = order
        return order

    def _take_money(self, order: OrderRecord) -> None:
        # The one place money is taken: guarded so an order is never charged twice.
        if order.charges:
            return
        order.charges = 1
        order.charged = order.amount
        order.status = OrderStatus.SUCCESS
        order.paid_at = now_text()

    # ----------------------------------------------------------------- order operations
    def get_order(self, order_no: str) -> Reply:
        order = self._orders.get(order_no)
        if order is None:
            return error(404, "ORDER_NOT_FOUND", "no such order")
        return Reply(200, order.to_json())

    def reverse(self, order_no: str) -> Reply:
        order = self._orders.get(order_no)
        if order is None:
            # Remember the reversal so a charge arriving late cannot take money.
            order = OrderRecord(
                order_no, self._new_id("BT"), None, OrderStatus.REVERSED, 0, "CNY", now_text()
            )
            self._orders[order_no] = order
        elif order.status is OrderStatus.SUCCESS:
            order.refunded += order.charged - order.refund_reserved
            order.refund_reserved = order.charged
            order.status = OrderStatus.REVERSED
            order.reversed_at = now_text()
        elif order.status is not OrderStatus.CLOSED:
            order.status = OrderStatus.REVERSED
        return Reply(200, order.to_json())

    def close(self, order_no: str) -> Reply:
        order = self._orders.get(order_no)
        if order is None:
            return error(404, "ORDER_NOT_FOUND", "no such order")
        if order.status is OrderStatus.SUCCESS:
            return error(409, "ORDER_PAID", "the order is paid; refund it instead")
        if order.status not in _ENDED:
            order.status = OrderStatus.CLOSED
        return Reply(200, order.to_json())

    # ----------------------------------------------------------------- refunds
    def refund(self, body: Mapping[str, object]) -> Reply:
        order_no = checks.order_no(body, "order_no")
        refund_no = checks.order_no(body, "refund_no")
        amount = body.get("amount")
        if not protocol.valid_amount(amount):
            raise checks.invalid("amount must be a positive integer of minor units")
        checks.text(body, "reason", required=False, max_len=256)
        notify_url = checks.url(body, "notify_url", required=False)
        known = self._refunds.get(refund_no)
        if known is not None:
            if (known.order_no, known.amount) != (order_no, amount):
                return error(
                    409, "DUPLICATE_REFUND_NO", "refund_no already used with other parameters"
                )
            return Reply(200, known.to_json())
        order = self._orders.get(order_no)
        if order is None:
            return error(404, "ORDER_NOT_FOUND", "no such order")
        if order.charged == 0:
            return error(409, "ORDER_NOT_PAID", "nothing was charged on this order")
        if order.refund_reserved + amount > order.charged:
            return error(422, "REFUND_EXCEEDS_AMOUNT", "refunds would exceed the charged amount")
        order.refund_reserved += amount
        refund = RefundRecord(refund_no, order_no, amount, self._new_id("BR"), notify_url)
        self._refunds[refund_no] = refund
        self._schedule(REFUND_DELAY, lambda: self._settle_refund(refund))
        return Reply(200, refund.to_json())

    def _settle_refund(self, refund: RefundRecord) -> None:
        refund.status = RefundStatus.SUCCESS
        refund.settled_at = now_text()
        self._orders[refund.order_no].refunded += refund.amount
        if refund.notify_url is not None:
            self._emit(refund.notify_url, "refund.succeeded", refund.to_json())

    def get_refund(self, refund_no: str) -> Reply:
        refund = self._refunds.get(refund_no)
        if refund is None:
            return error(404, "REFUND_NOT_FOUND", "no such refund")
        return Reply(200, refund.to_json())

    # ----------------------------------------------------------------- simulated payer
    def _payer_order(self, order_no: str) -> OrderRecord | Reply:
        """The open order the simulated payer acts on, or why there is none."""
        order = self._orders.get(order_no)
        if order is None:
            return error(404, "ORDER_NOT_FOUND", "no such order")
        if order.status not in _OPEN:
            return error(409, "ORDER_NOT_OPEN", f"order is {order.status.value}")
        return order

    def payer_pays(self, order_no: str) -> Reply:
        order = self._payer_order(order_no)
        if isinstance(order, Reply):
            return order
        self._take_money(order)
        self._notify_order(order, "order.paid")
        return Reply(200, order.to_json())

    def payer_fails(self, order_no: str) -> Reply:
        order = self._payer_order(order_no)
        if isinstance(order, Reply):
            return order
        order.status = OrderStatus.FAILED
        order.failure_code = "CARD_DECLINED"
        self._notify_order(order, "order.failed")
        return Reply(200, order.to_json())

    def _notify_order(self, order: OrderRecord, event: str) -> None:
        if order.notify_url is not None:
            self._emit(order.notify_url, event, order.to_json())

    def orders(self) -> Iterable[OrderRecord]:
        return self._orders.values()

    def refunds(self) -> Iterable[RefundRecord]:
        return self._refunds.values()

    def snapshot(self) -> dict[str, object]:
        return ledger_snapshot({no: o.ledger_row() for no, o in self._orders.items()})
