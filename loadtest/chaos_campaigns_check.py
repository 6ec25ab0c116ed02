"""The campaigns' checker (`loadtest/chaos.py`): per campaign, from the API (the campaign,
the `promotions` on each payment naming a payer, each cashback's payout) and the
simulators' ledgers (`orders`, `payouts`):

- spent: `spent` equals the rewards still held (reserved + granted, net of claw-backs)
  over the payments that carry it, and never exceeds the budget;
- limits: distinct payers holding a reward ≤ first_n (and equal to `payers_rewarded`),
  each payer's count and amount within `per_payer`;
- granted_twice: at most one reward per (campaign, payment) and one per kind on a
  payment, each cashback payout paid at most once and on one rail, the payout matches
  its reward, no payout to a campaign payer that no reward names;
- charge: a paid discounted payment was charged exactly amount − discount at the rail;
- stuck: a campaign, payment or payout unreadable, or a payout still in flight.

A reward is held while its payment is unpaid (reserved) or paid (granted, less
`⌊refunded × reward / amount⌋` clawed back), except a cashback whose payout failed or
never was made: the campaign has that one back (docs/design.md, "Campaigns").
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from loadtest.chaos_campaigns import (
    CampaignPlan,
    CampaignsSeen,
    cashback_payout_id,
    payer_identity,
)
from loadtest.chaos_payments import PAID

CAMPAIGN_KINDS = ("spent", "limits", "granted_twice", "charge", "stuck")
RELEASED = frozenset({"failed", "closed"})


@dataclass
class CampaignSummary:
    kind: str = ""
    status: str = ""
    budget: int = 0
    spent: int = 0
    payers: int = 0
    rewards: Counter[str] = field(default_factory=Counter)  # as the checker counts them
    clawed: int = 0
    payouts: Counter[str] = field(default_factory=Counter)


@dataclass
class CampaignReport:
    campaigns: dict[str, CampaignSummary]
    violations: dict[str, int]
    problems: list[str]
    payout_numbers: set[str]  # ledger payout numbers the cashbacks account for
    refunds: Counter[str]

    def to_json(self) -> dict[str, Any]:
        return {"campaigns": {k: {**vars(v), "rewards": dict(v.rewards),
                                  "payouts": dict(v.payouts)}
                              for k, v in self.campaigns.items()},
                "violations": self.violations, "problems": self.problems,
                "refunds": dict(self.refunds)}


class CampaignChecker:
    def __init__(self, ledgers: dict[str, dict[str, Any]], plan: CampaignPlan) -> None:
        self.ledgers = ledgers
        self.plan = plan
        self.counts: Counter[str] = Counter()
        self.problems: list[str] = []
        self.payout_rows: dict[str, list[tuple[str, dict[str, Any]]]] = defaultdict(list)
        for rail, ledger in ledgers.items():
            for no, row in ledger.get("payouts", {}).items():
                self.payout_rows[no].append((rail, row))
        self.claimed: set[str] = set()

    def problem(self, kind: str, campaign: str, text: str) -> None:
        self.counts[kind] += 1
        self.problems.append(f"{kind}: campaign {campaign}: {text}")

    def report(self, seen: CampaignsSeen) -> CampaignReport:
        summaries = {cid: self.one(cid, body, seen) for cid, body in seen.campaigns.items()}
        self.per_payment(seen)
        payers = self.plan.identities
        for no, rows in self.payout_rows.items():
            for rail, row in rows:
                if row["payee"] in payers and no not in self.claimed and row["paid"]:
                    self.problem("granted_twice", "?", f"{rail} payout {no} paid "
                                 f"{row['paid']} to {row['payee']}, no reward names it")
        refunds = Counter(answers[-1] if answers else "none"
                          for answers in self.plan.refunds.values())
        return CampaignReport(summaries, {k: self.counts[k] for k in CAMPAIGN_KINDS},
                              self.problems, set(self.claimed), refunds)

    def per_payment(self, seen: CampaignsSeen) -> None:
        for index, pay in seen.payments.items():
            if pay is None:
                self.counts["stuck"] += 1
                self.problems.append(f"stuck: payment #{index} could not be read")
                continue
            promos = pay.get("promotions") or []
            ids = [r["campaign"] for r in promos]
            kinds = [r["kind"] for r in promos]
            if len(set(ids)) != len(ids) or len(set(kinds)) != len(kinds):
                self.problem("granted_twice", ",".join(ids), f"payment {pay['id']} carries "
                             f"{promos}")
            discount = sum(r["amount"] for r in promos if r["kind"] == "discount")
            if discount and pay["status"] in PAID:
                charged = self.charged(pay)
                if charged != pay["amount"] - discount:
                    cid = next(r["campaign"] for r in promos if r["kind"] == "discount")
                    self.problem("charge", cid, f"payment {pay['id']} of {pay['amount']} "
                                 f"less {discount}: the rail charged {charged}")

    def charged(self, pay: dict[str, Any]) -> int:
        total = 0
        for attempt in pay.get("attempts", []):
            rail = str(attempt.get("adapter") or attempt.get("rail"))
            order = self.ledgers.get(rail, {}).get("orders", {}).get(
                attempt.get("rail_order_no"))
            total += order["charged"] if order else 0
        return total

    def one(self, cid: str, body: dict[str, Any] | None,
            seen: CampaignsSeen) -> CampaignSummary:
        s = CampaignSummary()
        if body is None:
            self.problem("stuck", cid, "could not be read")
            return s
        limits = body.get("limits") or {}
        per_payer = limits.get("per_payer") or {}
        s.kind, s.status, s.spent = body["kind"], body["status"], body["spent"]
        s.budget, s.payers = limits.get("budget") or 0, body["payers_rewarded"]
        held_total = 0
        by_payer: dict[str, list[int]] = defaultdict(lambda: [0, 0])  # count, amount held
        for p in self.plan.named:
            pay = seen.payments.get(p.index)
            for r in (pay or {}).get("promotions") or ():
                if r["campaign"] != cid or pay is None:
                    continue
                held = self.held(cid, r, pay, seen, s)
                if held is None:
                    continue
                held_total += held
                mine = by_payer[payer_identity(p)]
                mine[0] += 1
                mine[1] += held
        if s.spent != held_total:
            self.problem("spent", cid, f"spent {s.spent}, the rewards held add up to "
                                       f"{held_total} ({dict(s.rewards)})")
        if s.spent > s.budget or s.spent < 0:
            self.problem("spent", cid, f"spent {s.spent} of a budget of {s.budget}")
        first_n = limits.get("first_n_payers") or 0
        if first_n and len(by_payer) > first_n:
            self.problem("limits", cid, f"{len(by_payer)} payers hold a reward, "
                                        f"first_n_payers {first_n}")
        if len(by_payer) != s.payers:
            self.problem("limits", cid, f"payers_rewarded {s.payers}, {len(by_payer)} payers "
                                        f"hold a reward")
        for payer, (count, amount) in sorted(by_payer.items()):
            if (per_payer.get("count") and count > per_payer["count"]) or (
                    per_payer.get("amount") and amount > per_payer["amount"]):
                self.problem("limits", cid, f"payer {payer} holds {count} rewards, {amount} "
                                            f"(per_payer {per_payer})")
        return s

    def held(self, cid: str, r: dict[str, Any], pay: dict[str, Any], seen: CampaignsSeen,
             s: CampaignSummary) -> int | None:
        """What the campaign still has out for this reward; None: nothing (released)."""
        status, amount = str(pay["status"]), int(r["amount"])
        if status in RELEASED:
            s.rewards["released"] += 1
            return None
        if status not in PAID:
            s.rewards["reserved"] += 1
            return amount
        if r["kind"] == "cashback" and not self.cashback_paid(cid, r, pay, seen, s):
            s.rewards["released (payout failed)"] += 1
            return None
        clawed = min(amount, int(pay.get("refunded_amount", 0)) * amount // int(pay["amount"]))
        s.clawed += clawed
        s.rewards["clawed_back" if clawed >= amount else "granted"] += 1
        return amount - clawed

    def cashback_paid(self, cid: str, r: dict[str, Any], pay: dict[str, Any],
                      seen: CampaignsSeen, s: CampaignSummary) -> bool:
        """Whether the cashback's payout stands (checked against the payout ledger)."""
        payout_id = cashback_payout_id(cid, pay["id"])
        payout = seen.payouts.get(payout_id)
        number = payout_id.replace("_", "")
        self.claimed.add(number)
        rows = self.payout_rows.get(number, [])
        paid = sum(row["paid"] for _, row in rows)
        s.payouts[payout["status"] if payout else "none"] += 1
        if any(row["payouts"] > 1 for _, row in rows) or len(rows) > 1:
            self.problem("granted_twice", cid, f"payout {number} for {pay['id']}: {rows}")
        if payout is None:
            if paid:
                self.problem("granted_twice", cid, f"payout {number} paid {paid}, the "
                                                   f"router shows none for {pay['id']}")
            return False
        if payout.get("campaign_id") != cid or payout.get("payment_id") != pay["id"] or \
                payout["amount"] != r["amount"]:
            self.problem("granted_twice", cid, f"payout {payout_id} is {payout}, the reward "
                                               f"{r} on {pay['id']}")
        if payout["status"] == "processing":
            self.problem("stuck", cid, f"payout {payout_id} for {pay['id']} still processing")
            return True
        if (payout["status"] == "succeeded") != (paid == r["amount"]) or (
                payout["status"] == "failed" and paid):
            self.problem("granted_twice", cid, f"payout {payout_id} {payout['status']}, "
                                               f"the rail paid {paid} of {r['amount']}")
        return bool(payout["status"] == "succeeded")


def print_campaigns(report: dict[str, Any]) -> None:
    if not report:
        return
    for cid, s in report["campaigns"].items():
        print(f"campaign {cid} ({s['kind']}, {s['status']}): spent {s['spent']} of "
              f"{s['budget']}, {s['payers']} payers, rewards {s['rewards']}, clawed back "
              f"{s['clawed']}" + (f", payouts {s['payouts']}" if s["payouts"] else ""))
    print(f"  refunds of rewarded payments: {report['refunds']}")
    for kind in CAMPAIGN_KINDS:
        print(f"campaigns {kind.replace('_', ' ') + ':':<21}{report['violations'][kind]}")
    for line in report["problems"][:50]:
        print(f"  {line}")
