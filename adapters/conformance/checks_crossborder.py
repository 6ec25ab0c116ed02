"""Checks of cross-border payments (priced in a foreign currency, paid in CNY), whatever the
rail.

A charge of 1000 JPY (yen have no decimals: 1000 minor units are 1000 yen) at the rate
the simulator is told to quote (`POST /sim/rates {"JPY": "0.04812"}`, SANDBOX.md) is paid
as 4812 CNY fen: every answer about it reports that in `RailResult.payer_amount`, with the
rate as a decimal string and never a float anywhere. An adapter prices abroad when built
with the kit's `cross_border_options` (none: the rail's own adapter does); one built
without them keeps refusing foreign currencies, before anything is sent.
"""

from __future__ import annotations

import dataclasses
from decimal import ROUND_HALF_UP, Decimal
from typing import Final

from adapters.base import (
    AdapterConfig,
    Charge,
    NotificationKind,
    Query,
    RailError,
    RailResult,
    RailStatus,
    RefundQuery,
)
from adapters.commerce_ops import PayerAmount
from adapters.conformance.checks import _describe, _unsettled, check
from adapters.conformance.env import RailEnv
from adapters.conformance.kit import ConformanceError, expect
from adapters.currencies import exponent
from router.ops.metrics import Metrics
from router.rails.client import RailClient
from router.routing.health import HealthBook
from router.settings import BreakerSettings

CURRENCY: Final = "JPY"
RATE: Final = "0.04812"  # CNY per yen, as the simulator is told to quote it
AMOUNT: Final = 1000  # yen
PAYER_CURRENCY: Final = "CNY"


def payer_fen(amount: int, currency: str, rate: str) -> int:
    """What the payer pays in CNY fen: round half up, decimals only."""
    fen = (Decimal(amount) * Decimal(rate)).scaleb(2 - exponent(currency))
    return int(fen.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def abroad(env: RailEnv) -> RailEnv:
    """The running rail seen through an adapter that prices abroad: built with the kit's
    `cross_border_options`, with a RailClient of its own (the same simulator and
    receiver)."""
    options = env.kit.cross_border_options
    if not options:
        return env
    config = AdapterConfig(env.kit.name, env.sim_url or "", env.keys_dir, options)
    adapter = env.kit.create_adapter(config)
    name = env.kit.name
    client = RailClient(env.session, {name: adapter}, {name: env.settings.rail_timeout},
                        Metrics(), HealthBook([name], BreakerSettings()))
    return RailEnv(env.kit, env.settings, env.session, adapter, client, env.receiver,
                   env.sim_url, env.sim_app, env.keys_dir)


async def _quote(env: RailEnv) -> None:
    async with env.session.post(f"{env.sim_url}/sim/rates", json={CURRENCY: RATE}) as resp:
        expect(resp.status == 200, f"setting the {CURRENCY} rate: HTTP {resp.status}")


def _floats(value: object, where: str) -> list[str]:
    """Every float inside a result (there must be none: money is exact)."""
    if isinstance(value, float):
        return [where]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return [found for f in dataclasses.fields(value)
                for found in _floats(getattr(value, f.name), f"{where}.{f.name}")]
    if isinstance(value, tuple | list):
        return [found for i, item in enumerate(value) for found in _floats(item, f"{where}[{i}]")]
    return []


def expect_payer_amount(result: RailResult, amount: int, what: str) -> PayerAmount:
    """`result` says the payer paid `amount` (priced in JPY) in CNY at the quoted rate."""
    expect(not _floats(result, "result"), f"{what}: floats in {_floats(result, 'result')}")
    paid = result.payer_amount
    if not isinstance(paid, PayerAmount):
        raise ConformanceError(f"{what}: no payer_amount in {result}")
    rate = paid.rate
    expect(isinstance(rate.rate, str), f"{what}: rate {rate.rate!r} is not a decimal string")
    expect(Decimal(rate.rate) == Decimal(RATE), f"{what}: rate {rate.rate}, quoted {RATE}")
    expect((rate.base, rate.quote) == (CURRENCY, PAYER_CURRENCY),
           f"{what}: rate {rate.base}->{rate.quote}, not {CURRENCY}->{PAYER_CURRENCY}")
    expect(bool(rate.source), f"{what}: the rate names no source")
    expect(paid.currency == PAYER_CURRENCY, f"{what}: paid in {paid.currency}")
    expected = payer_fen(amount, CURRENCY, RATE)
    expect(type(paid.amount) is int and paid.amount == expected,
           f"{what}: the payer paid {paid.amount!r} fen, not {expected}")
    return paid


def _charge(env: RailEnv, scene: str, code: str | None = None) -> Charge:
    return dataclasses.replace(env.charge(scene, amount=AMOUNT, code=code), currency=CURRENCY)


async def _paid(env: RailEnv, op: Charge) -> RailResult:
    result = await env.call(op)
    if _unsettled(result):
        result = await env.until(Query(op.rail_order_no), lambda r: not _unsettled(r),
                                 "cross-border charge")
    expect(result.status is RailStatus.SUCCEEDED, f"a {CURRENCY} charge gave {result}")
    expect(result.amount in (None, AMOUNT), f"the rail took {result.amount}, not {AMOUNT}")
    return result


@check("simulator", "cross_border")
async def check_cross_border_charge(env: RailEnv) -> None:
    """A 1000 JPY charge paid by payer code, its query and the simulator's ledger all say
    the payer paid 4812 CNY fen at the quoted rate 0.04812 (a decimal string, no float)."""
    await _quote(env)
    rail = abroad(env)
    op = _charge(rail, rail.kit.cross_border_scene, code="1")
    charged = await _paid(rail, op)
    if charged.payer_amount is not None:
        expect_payer_amount(charged, AMOUNT, "the charge's answer")
    queried = await rail.call(Query(op.rail_order_no))
    expect(queried.status is RailStatus.SUCCEEDED, f"query gave {queried.status.value}")
    expect_payer_amount(queried, AMOUNT, "the query")
    entry = await rail.ledger_order(op.rail_order_no)
    expect(entry is not None and entry.get("currency") == CURRENCY
           and entry["charged"] == AMOUNT and entry["charges"] == 1
           and entry.get("payer_total") == payer_fen(AMOUNT, CURRENCY, RATE),
           f"ledger row of a {CURRENCY} order (currency, charged, payer_total): {entry}")


@check("simulator", "cross_border", "refunds")
async def check_cross_border_refund(env: RailEnv) -> None:
    """Part of a JPY charge refunded in JPY settles for that amount; what the payer gets
    back, when the rail says it, is CNY at a decimal rate."""
    await _quote(env)
    rail = abroad(env)
    op = _charge(rail, rail.kit.cross_border_scene, code="1")
    await _paid(rail, op)
    refund = dataclasses.replace(rail.refund(op.rail_order_no, 400, AMOUNT), currency=CURRENCY)
    outcome = await rail.outcome(refund)
    expect(isinstance(outcome, RailResult) and outcome.status in (
        RailStatus.PROCESSING, RailStatus.SUCCEEDED), f"a {CURRENCY} refund gave "
                                                      f"{_describe(outcome)}")
    done = await rail.until(RefundQuery(op.rail_order_no, refund.rail_refund_no),
                            lambda r: r.status is not RailStatus.PROCESSING, "refund")
    expect(done.status is RailStatus.SUCCEEDED and done.amount in (None, 400),
           f"the {CURRENCY} refund settled as {done}")
    if done.payer_amount is not None:
        expect(done.payer_amount.currency == PAYER_CURRENCY
               and type(done.payer_amount.amount) is int
               and isinstance(done.payer_amount.rate.rate, str),
               f"the refund's payer amount {done.payer_amount}")
    expect(not _floats(done, "refund"), f"floats in {done}")


@check("simulator", "cross_border", "notifications", "actions")
async def check_cross_border_notification(env: RailEnv) -> None:
    """A JPY order paid by the simulated payer is notified with what the payer paid in CNY."""
    await _quote(env)
    rail = abroad(env)
    scene = rail.kit.waiting_scene
    op = _charge(rail, scene)
    result = await rail.call(op)
    expect(result.status is RailStatus.REQUIRES_ACTION, f"a {CURRENCY} {scene} order gave "
                                                        f"{result}")
    await rail.present(scene, result)
    await rail.payer_pays(op.rail_order_no)
    _, _, note = await rail.notification(
        lambda n: n.kind is NotificationKind.PAYMENT and n.rail_order_no == op.rail_order_no,
        "cross-border payment")
    expect(note.result.status is RailStatus.SUCCEEDED, f"notified {note.result.status.value}")
    expect_payer_amount(note.result, AMOUNT, "the payment notification")


@check("cross_border")
async def check_cross_border_refused_at_home(env: RailEnv) -> None:
    """An adapter built without the cross-border options refuses a JPY charge definitively
    (before sending), naming the currency; one built with them takes it."""
    op = _charge(env, env.kit.cross_border_scene, code="1")
    abroad(env).client.build(env.kit.name, op)  # raises if the rail cannot take it
    if not env.kit.cross_border_options:
        return  # the rail's own adapter prices abroad: nothing to refuse
    try:
        refused = env.client.build(env.kit.name, op)
    except RailError as exc:
        expect(exc.definitive and exc.param == "currency",
               f"a domestic adapter refused a {CURRENCY} charge with {_describe(exc)} "
               f"(param {exc.param})")
        return
    raise ConformanceError(f"a domestic adapter built a {CURRENCY} charge: {refused}")
