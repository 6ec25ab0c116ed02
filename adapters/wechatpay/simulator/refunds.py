"""Refunds of the WeChat Pay simulator's orders: reserved at once, settled (and notified)
after `REFUND_DELAY`. Synchronous on purpose, like the ledger."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import final

from adapters.simkit.replies import Reply, error
from adapters.simkit.runtime import Schedule
from adapters.wechatpay import protocol
from adapters.wechatpay.protocol import RefundStatus, TradeState
from adapters.wechatpay.simulator import checks
from adapters.wechatpay.simulator.ledger import Emit, Ledger
from adapters.wechatpay.simulator.records import CN, OrderRecord, RefundRecord, now_text

REFUND_DELAY = 1.0  # a refund stays PROCESSING this long (× time_scale)
MAX_REFUNDS_PER_ORDER = 50


@final
class Refunds:
    """Refunds keyed by (sub_mchid or "", out_refund_no)."""

    __slots__ = ("_emit", "_ledger", "_refunds", "_schedule")

    def __init__(self, ledger: Ledger, schedule: Schedule, emit: Emit) -> None:
        self._ledger = ledger
        self._schedule = schedule
        self._emit = emit
        self._refunds: dict[tuple[str, str], RefundRecord] = {}

    def refund(self, body: Mapping[str, object]) -> Reply:
        scope = checks.digits(body, "sub_mchid") if "sub_mchid" in body else ""
        refund_no = checks.text(body, "out_refund_no", max_len=64)
        if not protocol.valid_out_refund_no(refund_no):
            raise checks.invalid("out_refund_no must be 1-64 characters of [0-9A-Za-z_-]")
        refund_amount, total = checks.refund_amounts(body)
        checks.text(body, "reason", max_len=80, required=False)
        notify_url = checks.notify_url(body, required=False)
        order = self._refund_target(scope, body)
        params = (order.key if order else None, refund_amount, total)
        known = self._refunds.get((scope, refund_no))
        if known is not None:
            if known.params != params:
                return error(400, "INVALID_REQUEST", "退款单号已用于其他退款参数")
            return Reply(200, known.to_json())
        if order is None:
            return error(404, "RESOURCE_NOT_EXISTS", "订单不存在")
        refusal = _refund_refusal(order, refund_amount, total)
        if refusal is not None:
            return refusal
        order.refund_reserved += refund_amount
        order.refund_count += 1
        refund = RefundRecord(
            (scope, refund_no),
            params,
            order,
            f"50{datetime.now(CN):%Y%m%d}{self._ledger.serial():020d}",
            refund_amount,
            notify_url,
            now_text(),
        )
        self._refunds[refund.key] = refund
        self._schedule(REFUND_DELAY, lambda: self._settle_refund(refund))
        return Reply(200, refund.to_json())

    def _refund_target(self, scope: str, body: Mapping[str, object]) -> OrderRecord | None:
        if "out_trade_no" in body:
            return self._ledger.order(scope, checks.out_trade_no(body))
        transaction_id = checks.text(body, "transaction_id", max_len=32)
        return self._ledger.by_transaction_id(scope, transaction_id)

    def _settle_refund(self, refund: RefundRecord) -> None:
        refund.status = RefundStatus.SUCCESS
        refund.success_time = now_text()
        order = refund.order
        order.refunded += refund.amount
        if order.state is TradeState.SUCCESS:
            order.state = TradeState.REFUND
        if refund.notify_url is not None:
            self._emit(
                refund.notify_url, "REFUND.SUCCESS", "退款成功", "refund", refund.notification()
            )

    def records(self) -> list[RefundRecord]:
        """Every refund, oldest first (for the day's trade bill)."""
        return list(self._refunds.values())

    def get_refund(self, refund_no: str, params: Mapping[str, str]) -> Reply:
        scope = checks.digits(params, "sub_mchid") if "sub_mchid" in params else ""
        refund = self._refunds.get((scope, refund_no))
        if refund is None:
            return error(404, "RESOURCE_NOT_EXISTS", "退款单不存在")
        return Reply(200, refund.to_json())


def _refund_refusal(order: OrderRecord, refund_amount: int, total: int) -> Reply | None:
    if order.charged == 0:
        return error(400, "INVALID_REQUEST", "订单未支付，不能退款")
    if total != order.amount:
        return error(400, "INVALID_REQUEST", "订单金额与原订单不一致")
    if order.refund_count >= MAX_REFUNDS_PER_ORDER:
        return error(400, "INVALID_REQUEST", "退款次数超过限制")
    if order.refund_reserved + refund_amount > order.charged:
        return error(400, "INVALID_REQUEST", "申请退款金额超过订单可退金额")
    return None
