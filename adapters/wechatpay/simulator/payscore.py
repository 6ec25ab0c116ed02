"""Pay Score (微信支付分) service orders in the WeChat Pay simulator: the credit rule, the
payer's confirmation, completion (where the money is collected, once) and cancellation.

The payer's score follows SANDBOX.md: an openid ending in `3` scores 500, any other 700.
The simulated service grants Pay Score from `min_score` (550 unless set): a create for a
payer under it is refused (403 RULELIMIT) and nothing is recorded. An order waits CREATED
until `POST /sim/authorizations/{out_order_no}/confirm` (DOING, USER_CONFIRM, notified
PAYSCORE.USER_CONFIRM) or `/decline` (REVOKED). Completing a confirmed order collects the
money at once: the collection is an order in the ledger's `orders` (charged once, under
the complete's `out_trade_no`), the service order is DONE and PAYSCORE.USER_PAID is sent.
Nothing is ever frozen: the risk fund is a promise the payer's credit covers.
Synchronous on purpose, like the ledger.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Mapping
from datetime import datetime
from typing import final

from aiohttp import web

from adapters.simkit.replies import Reply, error
from adapters.simkit.signed_api import SignedRuntime
from adapters.wechatpay.payscore import MAX_CANCEL_REASON, MAX_INTRODUCTION, ORDERS_PATH
from adapters.wechatpay.payscore_wire import RiskFundName, ServiceState
from adapters.wechatpay.protocol import WeChatPayCredentials, valid_amount, valid_out_trade_no
from adapters.wechatpay.simulator import checks
from adapters.wechatpay.simulator.ledger import Emit, Ledger
from adapters.wechatpay.simulator.payscore_records import ServiceOrderRecord
from adapters.wechatpay.simulator.records import CN

DEFAULT_MIN_SCORE = 550
LOW_SCORE, HIGH_SCORE = 500, 700
MAX_POST_PAYMENTS = 100
_DIGITS_MAX = 32
_NOT_FOUND = error(404, "ORDER_NOT_EXIST", "订单不存在")


def credit_score(openid: str) -> int:
    """The sandbox's credit rule (SANDBOX.md, "Pre-authorisation")."""
    return LOW_SCORE if openid.endswith("3") else HIGH_SCORE


@final
class PayScore:
    """Service orders of one direct merchant, keyed by out_order_no."""

    __slots__ = ("_appid", "_emit", "_ledger", "_mchid", "_orders", "min_score")

    def __init__(self, creds: WeChatPayCredentials, ledger: Ledger, emit: Emit,
                 min_score: int = DEFAULT_MIN_SCORE) -> None:
        self._mchid = creds.mchid
        self._appid = creds.appid
        self._ledger = ledger
        self._emit = emit
        self.min_score = min_score
        self._orders: dict[str, ServiceOrderRecord] = {}

    # ----------------------------------------------------------------- API calls
    def create(self, body: Mapping[str, object]) -> Reply:
        self._check_app(body)
        no = _order_no(body.get("out_order_no"))
        service_id = checks.digits(body, "service_id")
        introduction = checks.text(body, "service_introduction", max_len=MAX_INTRODUCTION)
        risk = checks.obj(body, "risk_fund")
        if risk.get("name") not in set(RiskFundName):
            raise checks.invalid("risk_fund.name must be DEPOSIT, ADVANCE, CASH_DEPOSIT or "
                                 "ESTIMATE_ORDER_COST")
        risk_amount = risk.get("amount")
        if not valid_amount(risk_amount):
            raise checks.invalid("risk_fund.amount must be a positive integer of fen")
        checks.text(checks.obj(body, "time_range"), "start_time", max_len=14)
        _post_payments(body, required=False)
        notify_url = checks.notify_url(body, required=True)
        openid = checks.text(body, "openid", max_len=128, required=False) or None
        if body.get("need_user_confirm", True) is not True:
            return error(403, "NO_AUTH", "商户未开通免确认模式")
        known = self._orders.get(no)
        if known is not None:
            if known.params != body:
                return error(400, "INVALID_REQUEST", "商户服务订单号已存在，且请求参数不一致")
            return Reply(200, known.created())
        score = credit_score(openid) if openid else None
        if score is not None and score < self.min_score:
            return error(403, "RULELIMIT", "用户支付分不满足本服务的要求")
        order = ServiceOrderRecord(
            no, dict(body), self._appid, self._mchid, service_id, introduction,
            str(risk["name"]), risk_amount, str(notify_url), openid, score,
            order_id=f"1000{datetime.now(CN):%Y%m%d}{self._ledger.serial():018d}",
            package=base64.b64encode(secrets.token_bytes(36)).decode("ascii"),
        )  # fmt: skip
        self._orders[no] = order
        return Reply(200, order.created())

    def query(self, params: Mapping[str, str]) -> Reply:
        self._check_app(params)
        service_id = checks.digits(params, "service_id")
        if "out_order_no" not in params:
            raise checks.invalid("out_order_no is needed (query_id is not simulated)")
        order = self._orders.get(_order_no(params["out_order_no"]))
        if order is None or order.service_id != service_id:
            return _NOT_FOUND
        return Reply(200, order.to_json())

    def complete(self, no: str, body: Mapping[str, object]) -> Reply:
        order = self._order_for(no, body)
        _post_payments(body, required=True)
        total = body.get("total_amount")
        if type(total) is not int or total < 0:
            raise checks.invalid("total_amount must be a non-negative integer of fen")
        out_trade_no = body.get("out_trade_no")
        if out_trade_no is not None and not valid_out_trade_no(out_trade_no):
            raise checks.invalid("out_trade_no must be 6-32 characters of [0-9A-Za-z_-]")
        if isinstance(order, Reply):
            return order
        if order.completion is not None:
            if order.completion != body:
                return error(400, "INVALID_REQUEST", "订单已完结，且请求参数不一致")
            return Reply(200, order.to_json())
        if (order.state, order.state_description) != (ServiceState.DOING, "USER_CONFIRM"):
            return error(400, "INVALID_REQUEST", f"订单状态为{order.state.value}，不能完结")
        if total > order.risk_amount:
            return error(400, "INVALID_REQUEST", "完结金额不能超过服务风险金额")
        return self._collect(order, dict(body), total, out_trade_no)

    def _collect(self, order: ServiceOrderRecord, body: dict[str, object], total: int,
                 out_trade_no: str | None) -> Reply:
        """The one place a service order's money is taken: once, as a ledger order."""
        if total > 0:
            key = ("", out_trade_no or f"PS{order.order_id[-26:]}")
            ident = {"appid": self._appid, "mchid": self._mchid}
            payer = {"openid": order.openid} if order.openid else {}
            collection = self._ledger.collect(key, ident, total, payer, {"payscore": order.no})
            if collection is None:
                return error(403, "OUT_TRADE_NO_USED", "商户订单号重复")
            order.collection = collection
        order.completion, order.total_amount = body, total
        order.released = order.risk_amount - total
        order.state, order.state_description = ServiceState.DONE, None
        if total > 0:
            self._notify(order, "PAYSCORE.USER_PAID", "支付分订单收款成功")
        return Reply(200, order.to_json())

    def cancel(self, no: str, body: Mapping[str, object]) -> Reply:
        order = self._order_for(no, body)
        reason = checks.text(body, "reason", max_len=MAX_CANCEL_REASON)
        if isinstance(order, Reply):
            return order
        if order.state is ServiceState.REVOKED and order.cancel_reason == reason:
            return Reply(200, order.cancelled())
        if order.state is ServiceState.CREATED or (
                order.state is ServiceState.DOING and order.completion is None):
            if order.state is ServiceState.DOING:
                order.released = order.risk_amount  # it was held: it is given back
            order.state, order.state_description = ServiceState.REVOKED, None
            order.cancel_reason = reason
            return Reply(200, order.cancelled())
        return error(400, "INVALID_REQUEST", f"订单状态为{order.state.value}，不能取消")

    # ----------------------------------------------------------------- the simulated payer
    def payer_confirms(self, no: str, openid: str | None) -> Reply:
        order = self._orders.get(no)
        if order is None:
            return _NOT_FOUND
        if order.state is not ServiceState.CREATED:
            return error(409, "ORDER_NOT_OPEN", f"order is {order.state.value}")
        if order.openid is None:  # created without one: the payer who confirms is known now
            order.openid = openid or "oUpF8u" + secrets.token_hex(11)
            order.score = credit_score(order.openid)
        if (order.score or 0) < self.min_score:
            return error(403, "RULELIMIT", "用户支付分不满足本服务的要求")
        order.state, order.state_description = ServiceState.DOING, "USER_CONFIRM"
        self._notify(order, "PAYSCORE.USER_CONFIRM", "用户确认成功")
        return Reply(200, order.to_json())

    def payer_declines(self, no: str) -> Reply:
        order = self._orders.get(no)
        if order is None:
            return _NOT_FOUND
        if order.state is not ServiceState.CREATED:
            return error(409, "ORDER_NOT_OPEN", f"order is {order.state.value}")
        order.state = ServiceState.REVOKED
        return Reply(200, order.to_json())

    def snapshot(self) -> dict[str, object]:
        """The `authorizations` of `GET /sim/ledger`."""
        return {no: order.ledger_row() for no, order in self._orders.items()}

    # ----------------------------------------------------------------- helpers
    def _check_app(self, fields: Mapping[str, object]) -> None:
        if checks.text(fields, "appid", max_len=32) != self._appid:
            raise checks.mismatch()

    def _order_for(self, no: str, body: Mapping[str, object]) -> ServiceOrderRecord | Reply:
        """The order a complete or cancel names; the appid and service must be its own."""
        self._check_app(body)
        service_id = checks.digits(body, "service_id")
        order = self._orders.get(no)
        if order is None:
            return _NOT_FOUND
        if order.service_id != service_id:
            return error(400, "INVALID_REQUEST", "service_id与创单时不一致")
        return order

    def _notify(self, order: ServiceOrderRecord, event_type: str, summary: str) -> None:
        self._emit(order.notify_url, event_type, summary, "payscore", order.notification())


def _order_no(value: object) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= _DIGITS_MAX or not all(
            c.isascii() and (c.isalnum() or c in "_-|*") for c in value):
        raise checks.invalid("out_order_no must be 1-32 characters of [0-9A-Za-z_-|*]")
    return value


def _post_payments(body: Mapping[str, object], *, required: bool) -> None:
    items = body.get("post_payments")
    if items is None and not required:
        return
    if not isinstance(items, list) or not 0 < len(items) <= MAX_POST_PAYMENTS:
        raise checks.invalid(f"post_payments must hold 1-{MAX_POST_PAYMENTS} items")
    for item in items:
        if not isinstance(item, dict):
            raise checks.invalid("post_payments holds objects")
        checks.text(item, "name", max_len=20)


def routes(sim: SignedRuntime, payscore: PayScore) -> list[web.RouteDef]:
    """The signed `/v3/payscore/serviceorder*` calls, and the simulated payer's controls
    `POST /sim/authorizations/{out_order_no}/confirm` (`?openid=` names the payer of an
    order created without one) and `/decline` (unsigned, never faulted)."""
    def no(request: web.Request) -> str:
        return request.match_info["no"]

    async def confirm(request: web.Request) -> web.Response:
        reply = payscore.payer_confirms(no(request), request.query.get("openid"))
        return web.json_response(dict(reply.payload or {}), status=reply.status)

    async def decline(request: web.Request) -> web.Response:
        reply = payscore.payer_declines(no(request))
        return web.json_response(dict(reply.payload or {}), status=reply.status)

    by_no = f"{ORDERS_PATH}/{{no}}"
    return [
        web.post(ORDERS_PATH, sim.api(lambda _r, b: payscore.create(b), has_body=True)),
        web.get(ORDERS_PATH, sim.api(lambda r, _b: payscore.query(r.query), has_body=False)),
        web.post(f"{by_no}/complete",
                 sim.api(lambda r, b: payscore.complete(no(r), b), has_body=True)),
        web.post(f"{by_no}/cancel", sim.api(lambda r, b: payscore.cancel(no(r), b), has_body=True)),
        web.post("/sim/authorizations/{no}/confirm", confirm),
        web.post("/sim/authorizations/{no}/decline", decline),
    ]
