"""The kits for the built-in rails (`bank`, `wechatpay`, `alipay`, `instant`)."""

from __future__ import annotations

import secrets
from typing import Final

import aiohttp
from aiohttp import web

from adapters.base import RailResult, RailStatus
from adapters.conformance.kit import (
    CAPABILITIES,
    EnvSettings,
    RailKit,
    SimSpec,
    confirm_at_sim,
    expect,
)
from adapters.simkit.runtime import SimulatorOptions


def _digits(count: int) -> str:
    return f"{secrets.randbelow(10**count):0{count}d}"


def _account_no(last: str) -> str:
    """A 16-digit bank account number."""
    return _digits(15) + last


def _openid(last: str) -> str:
    """A 28-character openid, as WeChat issues them."""
    return "oUpF8u" + secrets.token_hex(11)[:21] + last


def _alipay_user_id(last: str) -> str:
    """A 16-digit Alipay user id (2088...)."""
    return "2088" + _digits(11) + last


def _bank_kit() -> RailKit:
    from adapters.bank import adapter, protocol
    from adapters.bank.simulator import app as simulator

    def create_app(bundle: object, s: EnvSettings) -> web.Application:
        if not isinstance(bundle, protocol.BankCredentials):
            raise TypeError("a bank bundle is needed")
        options = SimulatorOptions(time_scale=s.time_scale, hang_seconds=s.hang_seconds, seed=7)
        return simulator.create_app(bundle, options)

    async def settled(app: web.Application) -> None:
        await app[simulator.SIM_KEY].notifications_settled()

    S = protocol.OrderStatus
    return RailKit(
        name="bank",
        create_adapter=adapter.create_adapter,
        capabilities=frozenset(CAPABILITIES) - {"splits", "authorizations", "invoices",
                                                "cross_border"},
        payee=_account_no,
        sim=SimSpec(protocol.load_or_create_bundle, create_app, settled),
        status_table={
            S.WAITING.value: RailStatus.REQUIRES_ACTION,
            S.PAYING.value: RailStatus.PROCESSING,
            S.SUCCESS.value: RailStatus.SUCCEEDED,
            S.FAILED.value: RailStatus.FAILED,
            S.CLOSED.value: RailStatus.CLOSED,
            S.REVERSED.value: RailStatus.CLOSED,
        },
    )


def _wechatpay_kit() -> RailKit:
    from adapters.wechatpay import adapter, protocol
    from adapters.wechatpay.simulator import app as simulator

    def create_app(bundle: object, s: EnvSettings) -> web.Application:
        if not isinstance(bundle, protocol.WeChatPayCredentials):
            raise TypeError("a wechatpay bundle is needed")
        options = SimulatorOptions(time_scale=s.time_scale, hang_seconds=s.hang_seconds, seed=7)
        return simulator.create_app(bundle, options)

    async def settled(app: web.Application) -> None:
        await app[simulator.SIM_KEY].notifications_settled()

    T = protocol.TradeState
    openid = {"openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"}
    return RailKit(
        name="wechatpay",
        create_adapter=adapter.create_adapter,
        capabilities=frozenset(CAPABILITIES),
        payee=_openid,
        sim=SimSpec(protocol.load_or_create_bundle, create_app, settled),
        # Pay Score: an openid ending in 3 scores 500 (SANDBOX.md); the service's bar is 550.
        credit_payer=lambda high: {"openid": _openid("1" if high else "3")},
        authorization_scene="mini_program",
        split_accounts={"merchant": "1900000109", "user": _openid("1")},
        cross_border_options={"global": True},  # the Global API of an overseas merchant
        scene_payers={"jsapi": openid, "mini_program": openid,
                      "h5": {"client_ip": "127.0.0.1"}},
        status_table={
            T.NOTPAY.value: RailStatus.REQUIRES_ACTION,
            T.USERPAYING.value: RailStatus.PROCESSING,
            T.SUCCESS.value: RailStatus.SUCCEEDED,
            T.REFUND.value: RailStatus.SUCCEEDED,
            T.PAYERROR.value: RailStatus.FAILED,
            T.CLOSED.value: RailStatus.CLOSED,
            T.REVOKED.value: RailStatus.CLOSED,
        },
    )


async def _alipay_present(session: aiohttp.ClientSession, sim_url: str,
                          result: RailResult) -> None:
    """Open an app order string or an h5 URL as Alipay's wallet or browser would."""
    data = result.action.data if result.action is not None else {}
    text = data.get("order_string") or data.get("url")
    expect(isinstance(text, str), f"nothing to present in {result.action}")
    async with session.post(sim_url + "/sim/present", data=str(text).encode()) as resp:
        body = await resp.text()
        expect(resp.status == 200 and '"10000"' in body, f"present: HTTP {resp.status} {body}")


async def _alipay_confirm_hold(session: aiohttp.ClientSession, sim_url: str,
                               rail_auth_no: str, result: RailResult) -> None:
    """The wallet opens an online freeze's order string, then the payer confirms it."""
    await _alipay_present(session, sim_url, result)
    await confirm_at_sim(session, sim_url, rail_auth_no, result)


def _alipay_kit() -> RailKit:
    from adapters.alipay import adapter, protocol
    from adapters.alipay.simulator import app as simulator

    def create_app(bundle: object, s: EnvSettings) -> web.Application:
        if not isinstance(bundle, protocol.AlipayCredentials):
            raise TypeError("an alipay bundle is needed")
        options = SimulatorOptions(time_scale=s.time_scale, hang_seconds=s.hang_seconds, seed=7)
        return simulator.create_app(bundle, options)

    async def settled(app: web.Application) -> None:
        await app[simulator.SIM_KEY].notifications_settled()

    T = protocol.TradeStatus
    buyer = {"buyer_id": "2088102177846880"}
    return RailKit(
        name="alipay",
        create_adapter=adapter.create_adapter,
        # Alipay's payout notice is unconfirmed (protocols/payouts.md): none is sent.
        capabilities=frozenset(CAPABILITIES) - {"payout_notifications", "invoices"},
        payee=_alipay_user_id,
        cross_border_options={"settle_currency": "JPY"},  # a merchant Alipay settles abroad
        sim=SimSpec(protocol.load_or_create_bundle, create_app, settled),
        scene_payers={"jsapi": buyer, "mini_program": buyer},
        presented_scenes=frozenset({"app", "h5"}),
        present=_alipay_present,
        # Both receivers are named by their Alipay account's user id.
        split_accounts={"merchant": _alipay_user_id("4"), "user": _alipay_user_id("1")},
        # The online freeze (app) names its payer; ending in 3 scores 500 (SANDBOX.md).
        credit_payer=lambda high: {"buyer_id": _alipay_user_id("1" if high else "3")},
        authorization_scene="app",
        confirm_authorization=_alipay_confirm_hold,
        # An unscanned precreate QR is invisible to trade.query; a created one is not.
        waiting_scene="jsapi",
        status_table={
            T.WAIT_BUYER_PAY.value: RailStatus.REQUIRES_ACTION,
            T.TRADE_SUCCESS.value: RailStatus.SUCCEEDED,
            T.TRADE_FINISHED.value: RailStatus.SUCCEEDED,
            T.TRADE_CLOSED.value: RailStatus.CLOSED,
        },
        unreachable_statuses={
            T.TRADE_FINISHED.value: "the simulator does not model the end of the refund window",
        },
    )


def _instant_kit() -> RailKit:
    from adapters.instant import adapter

    return RailKit(
        name="instant",
        create_adapter=adapter.create_adapter,
        capabilities=frozenset({"reverse", "refunds", "payouts"}),
        payee=lambda last: "payee" + secrets.token_hex(6) + last,
    )


KITS: Final[list[RailKit]] = [_bank_kit(), _wechatpay_kit(), _alipay_kit(), _instant_kit()]
