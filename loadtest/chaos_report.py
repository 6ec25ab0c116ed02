"""The chaos run's report (`loadtest/chaos.py`): the payment checker's counts, and the
social, commerce, journal and campaign checkers' reports; printed as text, or as JSON."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import orjson

from loadtest.chaos_campaigns_check import print_campaigns
from loadtest.chaos_commerce_check import print_commerce
from loadtest.chaos_journal import print_journal
from loadtest.chaos_social_check import KINDS


@dataclass
class Report:
    payments: int
    requests: int
    retries: int
    acknowledged: int
    kills: int  # gateway kills at random moments of the payment load
    storm_kills: int  # ... in the middle of a grab storm
    expiry_kills: int  # ... just after a packet's or transfer's expiry
    redis_kills: int
    kill_late_s: float  # the longest a kill waited for the gateway killed before it
    final_statuses: dict[str, int]
    ledger_orders: int
    double_charges: int
    lost_acknowledged: int
    mismatches: int
    not_final: int
    problems: list[str]
    social: dict[str, Any] = field(default_factory=dict)  # chaos_social_check's report
    commerce_kills: int = 0  # ... the moment a capture, void or split goes out
    commerce: dict[str, Any] = field(default_factory=dict)  # chaos_commerce_check's report
    journal: dict[str, Any] = field(default_factory=dict)  # chaos_journal's report
    campaigns: dict[str, Any] = field(default_factory=dict)  # chaos_campaigns_check's

    @property
    def ok(self) -> bool:
        return not (self.double_charges or self.lost_acknowledged or self.mismatches
                    or self.not_final or any(self.social.get("violations", {}).values())
                    or any(self.commerce.get("violations", {}).values())
                    or any(self.journal.get("violations", {}).values())
                    or any(self.campaigns.get("violations", {}).values()))


def print_report(report: Report, as_json: bool) -> None:
    if as_json:
        print(orjson.dumps(asdict(report), option=orjson.OPT_INDENT_2).decode())
        return
    print(f"history: {report.payments} payments, {report.requests} requests "
          f"({report.retries} retries), {report.acknowledged} acknowledged, "
          f"gateway kills: {report.kills} during payments, {report.storm_kills} in grab "
          f"storms, {report.expiry_kills} at expiry (at most {report.kill_late_s} s late); "
          f"{report.redis_kills} Redis master kills, {report.ledger_orders} rail orders")
    print(f"final statuses: {report.final_statuses}")
    print(f"double charges:              {report.double_charges}")
    print(f"lost acknowledged payments:  {report.lost_acknowledged}")
    print(f"router/ledger mismatches:    {report.mismatches}")
    print(f"not final after grace:       {report.not_final}")
    for line in report.problems[:50]:
        print(f"  {line}")
    social = report.social
    for kind in ("red_packets", "transfers"):
        s = social[kind]
        print(f"{kind.replace('_', ' ')}: {s['planned']} planned, {s['created']} created, "
              f"final {s['statuses']}")
        print(f"  grabs: {s['grab_requests']} requests, {s['acknowledged']} answered 2xx, "
              f"{s['grabs']} in the packets")
        print(f"  payouts: {s['payouts']}, failures {s['failures']}")
        print(f"  money: {s['funded']} funded, {s['paid']} paid out, {s['refunded']} refunded "
              f"({s['refunds']} refunds)")
        if s["actions"]:
            print(f"  recipients: {s['actions']}")
    for kind in KINDS:
        print(f"social {kind.replace('_', ' ') + ':':<24}{social['violations'][kind]}")
    for line in social["problems"][:50]:
        print(f"  {line}")
    print_commerce(report.commerce, report.commerce_kills)
    print_journal(report.journal)
    print_campaigns(report.campaigns)
    print("OK" if report.ok else "FAILED")
