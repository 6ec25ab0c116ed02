"""The adapter conformance suite (`adapters/conformance/`) against every built-in rail.

One test per (rail, check): a failure names both. Each test gets a fresh simulator on a
loopback port; the (slow, RSA) credential bundle is made once per rail per module.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from adapters import conformance
from adapters.conformance import CAPABILITIES, CHECKS, KITS, Check, EnvSettings, RailKit
from adapters.registry import GROUP

SETTINGS = EnvSettings(time_scale=0.05, hang_seconds=3.0, rail_timeout=1.0, wait_timeout=5.0)

Bundles = Callable[[RailKit], tuple[Path | None, object | None]]


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> Bundles:
    """One credential bundle per rail for the module, made on first use."""
    made: dict[str, tuple[Path | None, object | None]] = {}

    def get(kit: RailKit) -> tuple[Path | None, object | None]:
        if kit.name not in made:
            if kit.sim is None:
                made[kit.name] = (None, None)
            else:
                keys_dir = tmp_path_factory.mktemp(f"{kit.name}-keys")
                made[kit.name] = (keys_dir, kit.sim.create_bundle(keys_dir))
        return made[kit.name]

    return get


CASES = [pytest.param(kit, check, id=f"{kit.name}-{check.name}")
         for kit in KITS for check in CHECKS]


@pytest.mark.parametrize(("kit", "check"), CASES)
async def test_conformance(kit: RailKit, check: Check, bundles: Bundles) -> None:
    reason = check.skip_reason(kit)
    if reason is not None:
        pytest.skip(reason)
    keys_dir, bundle = bundles(kit)
    async with conformance.running(kit, keys_dir, bundle, SETTINGS) as env:
        await check.run(env)


def test_kits_cover_the_built_in_rails() -> None:
    assert [kit.name for kit in KITS] == ["bank", "wechatpay", "alipay", "instant"]
    built_in = {ep.name for ep in entry_points(group=GROUP) if ep.value.startswith("adapters.")}
    assert built_in <= {kit.name for kit in KITS}, "a built-in adapter has no conformance kit"
    assert len({c.name for c in CHECKS}) == len(CHECKS)


def test_plan_names_every_skip() -> None:
    """Rails with a simulator run every check (but alipay's payout notification, which
    Alipay does not confirm, and its invoices; the bank's splits, holds, invoices and
    cross-border payments); instant skips by capability, with reasons."""
    for kit in KITS:
        planned = conformance.plan(kit)
        assert [name for name, _ in planned] == [c.name for c in CHECKS]
        if kit.sim is not None:
            skipped = {name: reason for name, reason in planned if reason is not None}
            expected = {"payout_notification"} if kit.name == "alipay" else set()
            if kit.name == "alipay":  # no fapiao on Alipay's OpenAPI gateway here
                expected |= {c.name for c in CHECKS if "invoices" in c.requires}
            if kit.name == "bank":  # of the merchant services, the bank offers bills only
                expected |= {c.name for c in CHECKS if c.requires & {
                    "splits", "authorizations", "invoices", "cross_border"}}
            assert skipped.keys() == expected, (kit.name, skipped)
            reasons = [CAPABILITIES[c] for c in ("payout_notifications", "splits",
                                                 "authorizations", "invoices", "bills",
                                                 "cross_border")]
            assert all(any(r in reason for r in reasons) for reason in skipped.values())
            assert kit.payee is not None, f"{kit.name} names no payees"
    instant = {name: reason for name, reason in conformance.plan(KITS[-1])}
    assert instant["scenes_charge"] is None and instant["code_declined"] is None
    assert instant["notifications"] is not None and "no simulator" in instant["notifications"]
    assert instant["payout_paid"] is None and instant["payout_frozen"] is None
    assert instant["payout_query_unknown"] is not None
