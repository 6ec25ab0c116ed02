"""The Global API (`/v3/global/...`) of the WeChat Pay simulator: cross-border orders and
refunds of one direct merchant, beside the domestic API in the same ledger.

Orders are checked here and opened by the ledger like domestic ones (same payer codes,
payer controls, closes and reverses), priced in their currency at the rate `Rates`
quotes when they are opened (`POST /sim/rates`). Refunds are kept here, settled
`REFUND_DELAY` later and notified like domestic ones. Synchronous on purpose, like the
ledger.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Final, final

from aiohttp import web

from adapters.currencies import is_known
from adapters.simkit.rates import Rates
from adapters.simkit.replies import Reply, error
from adapters.simkit.runtime import Schedule
from adapters.simkit.signed_api import SignedRuntime
from adapters.wechatpay.global_wire import GLOBAL_REFUNDS, GLOBAL_TRANSACTIONS, MICROPAY_PATH
from adapters.wechatpay.protocol import (
    RefundStatus,
    TradeState,
    WeChatPayCredentials,
    valid_amount,
    valid_out_refund_no,
)
from adapters.wechatpay.simulator import checks
from adapters.wechatpay.simulator.crossborder_records import GlobalOrderRecord, GlobalRefundRecord
from adapters.wechatpay.simulator.ledger import Emit, Ledger
from adapters.wechatpay.simulator.records import CN, OrderRecord, RefundRecord, now_text
from adapters.wechatpay.simulator.refunds import MAX_REFUNDS_PER_ORDER, REFUND_DELAY

__all__ = ["CrossBorder", "routes"]

# The Global API's order calls -> (the ledger's kind of order, the trade_type it must say).
KINDS: Final = {"jsapi": ("jsapi", "JSAPI"), "native": ("native", "NATIVE"),
                "app": ("app", "APP"), "mweb": ("h5", "MWEB"), "micropay": ("codepay", "MICROPAY")}
_MCC_RE = re.compile(r"[0-9]{4}")
_AUTH_CODE_RE = re.compile(r"[0-9A-Za-z]{1,128}")


@final
class CrossBorder:
    """Global API orders (opened in `ledger`) and their refunds."""

    __slots__ = ("_appid", "_emit", "_ledger", "_mchid", "_refunds", "_schedule", "rates")

    def __init__(self, creds: WeChatPayCredentials, ledger: Ledger, schedule: Schedule,
                 emit: Emit) -> None:
        self._appid = creds.appid
        self._mchid = creds.mchid
        self._ledger = ledger
        self._schedule = schedule
        self._emit = emit
        self._refunds: dict[str, GlobalRefundRecord] = {}
        self.rates = Rates()

    def records(self) -> list[RefundRecord]:
        return list(self._refunds.values())

    # ----------------------------------------------------------------- orders
    def create(self, call: str, body: Mapping[str, object]) -> Reply:
        kind, trade_type = KINDS[call]
        ident = checks.identity(body, False, appid=self._appid, mchid=self._mchid)
        no = checks.out_trade_no(body)
        checks.text(body, "description", max_len=127)
        checks.text(body, "attach", max_len=128, required=False)
        checks.time_expire(body)
        if checks.text(body, "trade_type", max_len=16) != trade_type:
            raise checks.invalid(f"trade_type must be {trade_type} for this call")
        if not _MCC_RE.fullmatch(checks.text(body, "merchant_category_code", max_len=4)):
            raise checks.invalid("merchant_category_code must be a 4-digit MCC")
        total, currency = _order_amount(body)
        rate = self.rates.cny_per_unit(currency)
        if rate is None:
            raise checks.invalid(f"不支持的币种 {currency}")
        notify_url = None if kind == "codepay" else checks.notify_url(body, required=True)
        payer = _payer(kind, body)
        order = GlobalOrderRecord(("", no), kind, dict(body), ident, total, notify_url,
                                  payer=payer, currency=currency, rate=rate)
        reply = self._ledger.open(order)
        if kind == "h5" and reply.status == 200 and reply.payload is not None:
            # The Global API names the H5 page `mweb_url`.
            return Reply(200, {"mweb_url": reply.payload["h5_url"]})
        return reply

    # ----------------------------------------------------------------- refunds
    def refund(self, body: Mapping[str, object]) -> Reply:
        checks.identity(body, False, appid=self._appid, mchid=self._mchid)
        refund_no = body.get("out_refund_no")
        if not valid_out_refund_no(refund_no):
            raise checks.invalid("out_refund_no must be 1-64 characters of [0-9A-Za-z_-]")
        amount = checks.obj(body, "amount")
        refund, total = amount.get("refund"), amount.get("total")
        if not valid_amount(refund) or not valid_amount(total):
            raise checks.invalid("amount.refund and amount.total must be positive integers")
        currency = checks.text(amount, "currency", max_len=3)
        checks.text(body, "reason", max_len=80, required=False)
        notify_url = checks.notify_url(body, required=False)
        order = self._refund_target(body)
        params = (order.key if order else None, refund, total, currency)
        known = self._refunds.get(refund_no)
        if known is not None:
            if known.params != params:
                return error(400, "INVALID_REQUEST", "退款单号已用于其他退款参数")
            return Reply(200, known.created())
        if order is None:
            return error(404, "RESOURCE_NOT_EXISTS", "订单不存在")
        refusal = _refund_refusal(order, refund, total, currency)
        if refusal is not None:
            return refusal
        order.refund_reserved += refund
        order.refund_count += 1
        record = GlobalRefundRecord(
            ("", refund_no), params, order,
            f"50{datetime.now(CN):%Y%m%d}{self._ledger.serial():020d}",
            refund, notify_url, now_text(),
        )  # fmt: skip
        self._refunds[refund_no] = record
        self._schedule(REFUND_DELAY, lambda: self._settle(record))
        return Reply(200, record.created())

    def _refund_target(self, body: Mapping[str, object]) -> OrderRecord | None:
        if "out_trade_no" in body:
            return self._ledger.order("", checks.out_trade_no(body))
        return self._ledger.by_transaction_id("", checks.text(body, "transaction_id", max_len=32))

    def _settle(self, record: GlobalRefundRecord) -> None:
        record.status, record.success_time = RefundStatus.SUCCESS, now_text()
        order = record.order
        order.refunded += record.amount
        if order.state is TradeState.SUCCESS:
            order.state = TradeState.REFUND
        if record.notify_url is not None:
            self._emit(record.notify_url, "REFUND.SUCCESS", "退款成功", "refund",
                       record.notification())

    def get_refund(self, refund_no: str, params: Mapping[str, str]) -> Reply:
        checks.mch_scope(params, False, mchid=self._mchid)
        record = self._refunds.get(refund_no)
        if record is None:
            return error(404, "RESOURCE_NOT_EXISTS", "退款单不存在")
        return Reply(200, record.to_json())


def _order_amount(body: Mapping[str, object]) -> tuple[int, str]:
    amount = checks.obj(body, "amount")
    total = amount.get("total")
    if not valid_amount(total):
        raise checks.invalid("amount.total must be a positive integer of minor units")
    currency = checks.text(amount, "currency", max_len=3)
    if not is_known(currency):
        raise checks.invalid(f"amount.currency {currency!r} is not an ISO 4217 currency")
    return total, currency


def _payer(kind: str, body: Mapping[str, object]) -> dict[str, str]:
    """The scene's own fields; returns the payer as a Transaction shows it."""
    if kind == "codepay":
        auth_code = checks.obj(body, "payer").get("auth_code")
        if not isinstance(auth_code, str) or not _AUTH_CODE_RE.fullmatch(auth_code):
            raise checks.invalid("payer.auth_code must be the scanned payment code")
    elif kind == "jsapi":
        return {"openid": checks.text(checks.obj(body, "payer"), "openid", max_len=128)}
    elif kind == "h5":
        scene = checks.obj(body, "scene_info")
        checks.text(scene, "payer_client_ip", max_len=45)
        if "store_info" in scene:
            store = checks.obj(scene, "store_info")
            checks.text(store, "name", max_len=256)
            checks.text(store, "address", max_len=512)
    return {}


def _refund_refusal(order: OrderRecord, refund: int, total: int, currency: str) -> Reply | None:
    order_currency = order.currency if isinstance(order, GlobalOrderRecord) else "CNY"
    if currency != order_currency:
        return error(400, "PARAM_ERROR", "退款币种与订单币种不一致")
    if order.charged == 0:
        return error(400, "INVALID_REQUEST", "订单未支付，不能退款")
    if total != order.amount:
        return error(400, "INVALID_REQUEST", "订单金额与原订单不一致")
    if order.refund_count >= MAX_REFUNDS_PER_ORDER:
        return error(400, "INVALID_REQUEST", "退款次数超过限制")
    if order.refund_reserved + refund > order.charged:
        return error(400, "INVALID_REQUEST", "申请退款金额超过订单可退金额")
    return None


def routes(sim: SignedRuntime, ledger: Ledger, cross: CrossBorder) -> list[web.RouteDef]:
    """The signed `/v3/global/*` calls the simulator serves, and `/sim/rates`."""
    def no(request: web.Request) -> str:
        return request.match_info["no"]

    def create(call: str) -> web.RouteDef:
        path = f"{MICROPAY_PATH}/pay" if call == "micropay" else f"{GLOBAL_TRANSACTIONS}/{call}"
        return web.post(path, sim.api(lambda _r, b: cross.create(call, b), has_body=True))

    by_no = f"{GLOBAL_TRANSACTIONS}/out-trade-no/{{no}}"
    return [
        *(create(call) for call in KINDS),
        web.get(by_no, sim.api(lambda r, _b: ledger.query(False, no(r), r.query),
                               has_body=False)),
        web.get(f"{GLOBAL_TRANSACTIONS}/id/{{no}}",
                sim.api(lambda r, _b: ledger.query_by_id(False, no(r), r.query),
                        has_body=False)),
        web.post(f"{by_no}/close",
                 sim.api(lambda r, b: ledger.close(False, no(r), b), has_body=True)),
        web.post(f"{MICROPAY_PATH}/out-trade-no/{{no}}/reverse",
                 sim.api(lambda r, b: ledger.reverse(False, no(r), b), has_body=True)),
        web.post(GLOBAL_REFUNDS, sim.api(lambda _r, b: cross.refund(b), has_body=True)),
        web.get(f"{GLOBAL_REFUNDS}/out-refund-no/{{no}}",
                sim.api(lambda r, _b: cross.get_refund(no(r), r.query), has_body=False)),
        *cross.rates.routes(),
    ]
