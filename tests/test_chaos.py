"""The chaos run at small scale (`loadtest/chaos.py`): faulty simulators, a retrying
client, gateways killed with -9 and restarted; then the money checkers' counts.
Once on a single Redis, once on a Redis Cluster whose masters are killed too (both with
a couple of red packets, transfers, authorizations and a split payment beside the
payments), once with red packets and transfers alone, a gateway killed in the middle of a
grab storm, and once with authorizations and split payments alone, gateways killed as
captures, voids and splits go out. The first two carry the default campaigns (a
discount and a cashback each, small budgets): spent equals the rewards held. Every time,
each merchant's journal verifies and adds up to the rails' ledgers."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import orjson
import pytest

from loadtest.procs import REPO_ROOT

ARGS = ["--payments", "60", "--kills", "2", "--seed", "11", "--seconds", "8",
        "--grace", "15", "--red-packets", "2", "--transfers", "2", "--storm-kills", "0",
        "--expiry-kills", "0", "--authorizations", "2", "--splits", "1",
        "--commerce-kills", "0", "--json"]
ALONE = ["--payments", "0", "--kills", "0", "--grace", "20", "--storm-kills", "0",
         "--expiry-kills", "0", "--commerce-kills", "0"]
VARIANTS = {
    "single": ARGS,
    "cluster": [*ARGS, "--redis-cluster", "--redis-kills", "1"],
    "social": [*ALONE, "--seed", "12", "--seconds", "5", "--red-packets", "4",
               "--transfers", "4", "--storm-kills", "1", "--authorizations", "0",
               "--splits", "0", "--json"],
    # Seed 19: every kind of payer and action, and a split naming a frozen account.
    "commerce": [*ALONE, "--seed", "19", "--seconds", "6", "--red-packets", "0",
                 "--transfers", "0", "--authorizations", "8", "--splits", "5",
                 "--commerce-kills", "2", "--json"],
}
SOCIAL_COUNTS = {"money": 0, "double_payouts": 0, "lost_grabs": 0, "stuck": 0, "limits": 0}
COMMERCE_COUNTS = {"auth_money": 0, "double_captures": 0, "auth_lost": 0, "auth_stuck": 0,
                   "split_cap": 0, "split_money": 0, "split_unknown": 0, "split_stuck": 0}


@pytest.fixture(scope="module", params=list(VARIANTS))
def report(request: pytest.FixtureRequest) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "loadtest.chaos", *VARIANTS[request.param]], cwd=REPO_ROOT,
        capture_output=True, timeout=180, check=False,
    )
    assert done.returncode in (0, 1), done.stderr.decode(errors="replace")[-3000:]
    result: dict[str, Any] = orjson.loads(done.stdout)
    result["variant"] = request.param
    return result


def test_the_run_was_chaotic(report: dict[str, Any]) -> None:
    social = report["social"]
    if report["variant"] == "social":
        assert report["payments"] == 0
        assert report["storm_kills"] == 1
        assert social["red_packets"]["planned"] == 4 and social["transfers"]["planned"] == 4
        assert social["red_packets"]["grabs"] > 0
        return
    if report["variant"] == "commerce":
        auths, shared = report["commerce"]["authorizations"], report["commerce"]["split_payments"]
        assert report["payments"] == 0 and report["commerce_kills"] == 2
        assert auths["created"] == 8 and auths["statuses"].get("captured", 0) > 0
        assert shared["paid"] > 0 and shared["splits"].get("succeeded", 0) > 0
        return
    assert report["payments"] == 60
    assert report["kills"] == 2
    assert report["redis_kills"] == (1 if report["variant"] == "cluster" else 0)
    assert report["requests"] >= 60
    assert report["ledger_orders"] > 0
    assert social["red_packets"]["created"] + social["transfers"]["created"] > 0


def test_money_is_right(report: dict[str, Any]) -> None:
    money = {k: report[k] for k in ("double_charges", "lost_acknowledged", "mismatches")}
    assert money == {"double_charges": 0, "lost_acknowledged": 0, "mismatches": 0}, \
        report["problems"]


def test_every_payment_is_final_after_the_grace_period(report: dict[str, Any]) -> None:
    assert report["not_final"] == 0, report["problems"]


def test_every_packet_and_transfer_adds_up_and_ended(report: dict[str, Any]) -> None:
    social = report["social"]
    assert social["violations"] == SOCIAL_COUNTS, social["problems"]


def test_every_authorization_and_split_adds_up_and_ended(report: dict[str, Any]) -> None:
    commerce = report["commerce"]
    assert commerce["violations"] == COMMERCE_COUNTS, commerce["problems"]


CAMPAIGN_COUNTS = {"spent": 0, "limits": 0, "granted_twice": 0, "charge": 0, "stuck": 0}


def test_every_campaign_spent_what_its_rewards_hold(report: dict[str, Any]) -> None:
    campaigns = report["campaigns"]
    if report["variant"] in ("social", "commerce"):
        return  # no payments: no payer to reward
    assert len(campaigns["campaigns"]) == 4
    assert campaigns["violations"] == CAMPAIGN_COUNTS, campaigns["problems"]
    assert any(c["spent"] > 0 for c in campaigns["campaigns"].values()), campaigns


def test_the_journal_verifies_and_equals_the_ledgers(report: dict[str, Any]) -> None:
    journal = report["journal"]
    assert journal["verify"]["exit_code"] == 0 and journal["verify"]["pending"] == 0, journal
    assert journal["violations"] == {"journal": 0}, journal["problems"]
    for kinds in journal["merchants"].values():
        assert all(t["journal"] == t["ledger"] for k, t in kinds.items() if k != "points")
