"""The chaos run at small scale (`loadtest/chaos.py`): faulty simulators, a retrying
client, gateways killed with -9 and restarted; then the money checker's four counts.
Once on a single Redis, once on a Redis Cluster whose masters are killed too."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import orjson
import pytest

from loadtest.procs import REPO_ROOT

ARGS = ["--payments", "60", "--kills", "2", "--seed", "11", "--seconds", "8",
        "--grace", "15", "--json"]
CLUSTER_ARGS = ["--redis-cluster", "--redis-kills", "1"]


@pytest.fixture(scope="module", params=["single", "cluster"])
def report(request: pytest.FixtureRequest) -> dict[str, Any]:
    extra = CLUSTER_ARGS if request.param == "cluster" else []
    done = subprocess.run(
        [sys.executable, "-m", "loadtest.chaos", *ARGS, *extra], cwd=REPO_ROOT,
        capture_output=True, timeout=180, check=False,
    )
    assert done.returncode in (0, 1), done.stderr.decode(errors="replace")[-3000:]
    result: dict[str, Any] = orjson.loads(done.stdout)
    result["topology"] = request.param
    return result


def test_the_run_was_chaotic(report: dict[str, Any]) -> None:
    assert report["payments"] == 60
    assert report["kills"] == 2
    assert report["redis_kills"] == (1 if report["topology"] == "cluster" else 0)
    assert report["requests"] >= 60
    assert report["ledger_orders"] > 0


def test_money_is_right(report: dict[str, Any]) -> None:
    money = {k: report[k] for k in ("double_charges", "lost_acknowledged", "mismatches")}
    assert money == {"double_charges": 0, "lost_acknowledged": 0, "mismatches": 0}, \
        report["problems"]


def test_every_payment_is_final_after_the_grace_period(report: dict[str, Any]) -> None:
    assert report["not_final"] == 0, report["problems"]
