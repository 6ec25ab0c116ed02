"""The WeChat Pay simulator's ledger: orders of one (service-provider) merchant and the one
place money is taken (refunds are in `refunds`).

Every method is synchronous on purpose: each check-and-apply runs without an await in
between, so concurrent identical requests can never charge an order twice.
"""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import final

from adapters.simkit.payer_code import run_payer_code
from adapters.simkit.replies import Reply, error
from adapters.simkit.runtime import Schedule
from adapters.simkit.snapshot import ledger_snapshot
from adapters.wechatpay import protocol
from adapters.wechatpay.protocol import TradeState, WeChatPayCredentials
from adapters.wechatpay.simulator import checks
from adapters.wechatpay.simulator.records import CN, OrderRecord, now_text

_OPEN = frozenset({TradeState.NOTPAY, TradeState.USERPAYING})
_PAID = frozenset({TradeState.SUCCESS, TradeState.REFUND})
_ENDED = frozenset({TradeState.CLOSED, TradeState.REVOKED})

# (notify_url, event_type, summary, original_type, plaintext)
Emit = Callable[[str, str, str, str, Mapping[str, object]], None]


@final
class Ledger:
    """Orders of one (service-provider) merchant; synchronous on purpose."""

    __slots__ = ("_appid", "_emit", "_ids", "_mchid", "_orders", "_schedule", "_u202")

    def __init__(
        self, creds: WeChatPayCredentials, schedule: Schedule, emit: Emit, *, userpaying_202: bool
    ) -> None:
        self._mchid = creds.mchid
        self._appid = creds.appid
        self._schedule = schedule
        self._emit = emit
        self._u202 = userpaying_202
        self._orders: dict[tuple[str, str], OrderRecord] = {}
        self._ids = itertools.count(1)

    def serial(self) -> int:
        """The next number of this ledger's ids (transactions, refunds, h5 packages)."""
        return next(self._ids)

    def _identity(self, body: Mapping[str, object], partner: bool) -> dict[str, str]:
        return checks.identity(body, partner, appid=self._appid, mchid=self._mchid)

    def _mch_scope(self, fields: Mapping[str, object], partner: bool) -> str:
        return checks.mch_scope(fields, partner, mchid=self._mchid)

    # ----------------------------------------------------------------- order creation
    def create(self, kind: str, partner: bool, body: Mapping[str, object]) -> Reply:
        ident = self._identity(body, partner)
        no = checks.out_trade_no(body)
        amount = checks.amount_total(body)
        checks.text(body, "description", max_len=127)
        checks.text(body, "attach", max_len=128, required=False)
        checks.time_expire(body)
        notify_url = None if kind == "codepay" else checks.notify_url(body, required=True)
        payer = checks.payer(kind, body, ident)
        key = (ident.get("sub_mchid", ""), no)
        existing = self._orders.get(key)
        if existing is not None:
            return self._repeat(existing, kind, body)
        order = OrderRecord(key, kind, dict(body), ident, amount, notify_url, payer=payer)
        self._orders[key] = order
        if kind == "codepay":
            auth_code = str(checks.obj(body, "payer")["auth_code"])
            return run_payer_code(auth_code, order, self, self._schedule)
        order.prepay = self._prepay(kind)
        return Reply(200, order.prepay)

    def open(self, order: OrderRecord) -> Reply:
        """Open an order checked elsewhere (a Global API order) as `create` opens one: the
        same repeats, payer codes and prepay answers."""
        existing = self._orders.get(order.key)
        if existing is not None:
            return self._repeat(existing, order.kind, order.params)
        self._orders[order.key] = order
        if order.kind == "codepay":
            auth_code = str(checks.obj(order.params, "payer")["auth_code"])
            return run_payer_code(auth_code, order, self, self._schedule)
        order.prepay = self._prepay(order.kind)
        return Reply(200, order.prepay)

    def _repeat(self, order: OrderRecord, kind: str, body: Mapping[str, object]) -> Reply:
        if order.kind != kind or order.params != body:
            return error(403, "OUT_TRADE_NO_USED", "商户订单号重复")
        if order.state in _ENDED:
            return error(400, "ORDER_CLOSED", "订单已关闭")
        if kind == "codepay":
            return self._codepay_answer(order)
        if order.state in _PAID:
            return error(400, "ORDERPAID", "该订单已支付")
        return Reply(200, order.prepay)

    def _prepay(self, kind: str) -> dict[str, str]:
        prepay_id = f"wx{datetime.now(CN):%d%H%M%S}{secrets.token_hex(13)}"
        if kind == "native":
            return {"code_url": f"weixin://wxpay/bizpayurl?pr={protocol.new_nonce(7)}"}
        if kind == "h5":
            url = "https://wx.tenpay.com/cgi-bin/mmpayweb-bin/checkmweb"
            return {"h5_url": f"{url}?prepay_id={prepay_id}&package={self.serial():010d}"}
        return {"prepay_id": prepay_id}

    # ----------------------------------------------------------------- codepay (payer codes)
    def pay_by_code(self, order: OrderRecord, *, withhold: bool) -> Reply:
        self._take_money(order)
        return Reply(200, order.transaction(), withhold=withhold)

    def decline_code(self, order: OrderRecord) -> Reply:
        order.state, order.state_desc = TradeState.PAYERROR, "余额不足"
        order.refusal = error(403, "NOTENOUGH", "用户余额不足")
        return order.refusal

    def await_payer(self, order: OrderRecord) -> Reply:
        order.state = TradeState.USERPAYING
        return self._codepay_answer(order)

    def payer_confirmed(self, order: OrderRecord) -> None:
        if order.state is TradeState.USERPAYING:
            self._take_money(order)

    def _codepay_answer(self, order: OrderRecord) -> Reply:
        if order.state is TradeState.USERPAYING and self._u202:
            return error(202, "USERPAYING", "用户支付中，需要输入密码")
        if order.state is TradeState.PAYERROR and order.refusal is not None:
            return order.refusal
        return Reply(200, order.transaction())

    def _take_money(self, order: OrderRecord) -> None:
        # The one place money is taken: guarded so an order is never charged twice.
        if order.charges:
            return
        order.charges = 1
        order.charged = order.amount
        order.state, order.state_desc = TradeState.SUCCESS, None
        order.success_time = now_text()
        order.transaction_id = f"42000{datetime.now(CN):%Y%m%d}{self.serial():015d}"
        if not order.payer:
            openid = "oUpF8u" + protocol.new_nonce(22)
            order.payer = (
                {"sp_openid": openid} if "sub_mchid" in order.ident else {"openid": openid}
            )

    # ----------------------------------------------------------------- order operations
    def query(self, partner: bool, no: str, params: Mapping[str, str]) -> Reply:
        order = self._orders.get((self._mch_scope(params, partner), no))
        if order is None:
            return error(404, "ORDER_NOT_EXIST", "订单不存在")
        return Reply(200, order.transaction())

    def query_by_id(self, partner: bool, transaction_id: str, params: Mapping[str, str]) -> Reply:
        order = self.by_transaction_id(self._mch_scope(params, partner), transaction_id)
        if order is None:
            return error(404, "ORDER_NOT_EXIST", "订单不存在")
        return Reply(200, order.transaction())

    def order(self, scope: str, no: str) -> OrderRecord | None:
        return self._orders.get((scope, no))

    def records(self) -> list[OrderRecord]:
        """Every order, oldest first (for the day's trade bill)."""
        return list(self._orders.values())

    def collect(self, key: tuple[str, str], ident: Mapping[str, str], amount: int,
                payer: dict[str, str], params: Mapping[str, object]) -> OrderRecord | None:
        """A payment WeChat takes on its own (a Pay Score collection), charged here like
        every other; None when `key` names an order already."""
        if key in self._orders:
            return None
        order = OrderRecord(key, "jsapi", params, ident, amount, None, payer=payer)
        self._orders[key] = order
        self._take_money(order)
        return order

    def by_transaction_id(self, scope: str, transaction_id: str) -> OrderRecord | None:
        for order in self._orders.values():
            if order.key[0] == scope and order.transaction_id == transaction_id:
                return order
        return None

    def close(self, partner: bool, no: str, body: Mapping[str, object]) -> Reply:
        order = self._orders.get((self._mch_scope(body, partner), no))
        if order is None:
            return error(404, "ORDER_NOT_EXIST", "订单不存在")
        if order.state in _PAID:
            return error(400, "ORDERPAID", "订单已支付，不能关闭")
        if order.state not in _ENDED:
            order.state, order.state_desc = TradeState.CLOSED, None
        return Reply(204, None)

    def reverse(self, partner: bool, no: str, body: Mapping[str, object]) -> Reply:
        ident = self._identity(body, partner)
        order = self._orders.get((ident.get("sub_mchid", ""), no))
        if order is None:
            return error(404, "ORDER_NOT_EXIST", "订单不存在")
        if order.kind != "codepay":
            return error(400, "INVALID_REQUEST", "只有付款码支付订单可以撤销")
        if order.state in _PAID:
            # Everything not refunded yet goes back to the payer.
            order.refunded += order.charged - order.refund_reserved
            order.refund_reserved = order.charged
        if order.state is not TradeState.CLOSED:
            order.state, order.state_desc = TradeState.REVOKED, None
        return Reply(200, {**ident, "out_trade_no": no})

    # ----------------------------------------------------------------- simulated payer
    def _find(self, no: str, sub_mchid: str | None) -> OrderRecord | None:
        if sub_mchid is not None:
            return self._orders.get((sub_mchid, no))
        matches = [o for (_, o_no), o in self._orders.items() if o_no == no]
        return matches[0] if len(matches) == 1 else None

    def _payer_order(self, no: str, sub_mchid: str | None) -> OrderRecord | Reply:
        """The open order the simulated payer acts on, or why there is none."""
        order = self._find(no, sub_mchid)
        if order is None:
            return error(404, "ORDER_NOT_EXIST", "no such order (or ambiguous: add ?sub_mchid=)")
        if order.state not in _OPEN:
            return error(409, "ORDER_NOT_OPEN", f"order is {order.state.value}")
        return order

    def payer_pays(self, no: str, sub_mchid: str | None) -> Reply:
        order = self._payer_order(no, sub_mchid)
        if isinstance(order, Reply):
            return order
        self._take_money(order)
        if order.notify_url is not None:
            self._emit(
                order.notify_url, "TRANSACTION.SUCCESS", "支付成功", "transaction",
                order.transaction(),
            )  # fmt: skip
        return Reply(200, order.transaction())

    def payer_fails(self, no: str, sub_mchid: str | None) -> Reply:
        order = self._payer_order(no, sub_mchid)
        if isinstance(order, Reply):
            return order
        order.state, order.state_desc = TradeState.PAYERROR, "银行卡已冻结"
        return Reply(200, order.transaction())  # WeChat notifies successes only

    def snapshot(self) -> dict[str, object]:
        orders = self._orders.items()
        return ledger_snapshot(
            {(f"{sub}/{no}" if sub else no): o.ledger_row() for (sub, no), o in orders}
        )
