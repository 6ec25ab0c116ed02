"""The chaos run's checker for red packets and transfers: after the grace period, every
packet's money is accounted for, in the API and in the simulators' ledgers.

For every packet and transfer:
- money: what the rails paid out for its grabs plus what went back to the sender on its
  funding payment equals what the funding payment took; an opened packet took exactly its
  amount; the API agrees with the ledgers (refunds, each payout's status);
- double payouts: no rail-side payout number paid more than once (and every paid payout
  belongs to a grab the router shows);
- lost grabs: every grab answered 201/200 is in the packet, same id and amount, and every
  answer to the same user is the same grab; an accepted transfer has its payout, a
  declined one went back;
- stuck: the packet ended (finished or expired, its refund worked out and paid; a
  transfer completed or returned), every payout ended, every refund ended;
- limits: grabs never exceed the count, their sum never exceeds the amount (and is the
  amount once finished), every share obeys the split.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from loadtest.chaos_social_plan import Api, PlannedPacket
from loadtest.progress import Progress

KINDS = ("money", "double_payouts", "lost_grabs", "stuck", "limits")
ENDED = {"red_packets": ("finished", "expired", "canceled"),
         "transfers": ("completed", "returned", "canceled")}


@dataclass
class Seen:
    packet: dict[str, Any] | None = None
    refunds: list[dict[str, Any]] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)  # failed payout id -> code


@dataclass
class KindSummary:
    planned: int = 0
    created: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    grab_requests: int = 0
    grabs: int = 0  # in the packets, as the API shows them
    acknowledged: int = 0  # grab answers 201/200 the client holds
    payouts: Counter[str] = field(default_factory=Counter)  # the router's statuses
    failures: Counter[str] = field(default_factory=Counter)  # failed payouts' codes
    paid: int = 0  # minor units the rails paid out
    refunds: int = 0
    refunded: int = 0  # minor units back on the funding payments (ledgers)
    funded: int = 0  # minor units the funding payments took (ledgers)
    actions: Counter[str] = field(default_factory=Counter)  # transfers: "accept 200 ..."

    def to_json(self) -> dict[str, Any]:
        return {name: dict(sorted(value.items())) if isinstance(value, Counter) else value
                for name, value in vars(self).items()}


@dataclass
class SocialReport:
    red_packets: KindSummary
    transfers: KindSummary
    violations: dict[str, int]
    problems: list[str]
    funding_orders: list[tuple[str, str]]  # (rail, order no) the packets' payments name

    @property
    def ok(self) -> bool:
        return not any(self.violations.values())

    def to_json(self) -> dict[str, Any]:
        return {"red_packets": self.red_packets.to_json(),
                "transfers": self.transfers.to_json(),
                "violations": self.violations, "problems": self.problems}


def not_ended(kind: str, seen: Seen) -> str | None:
    """Why the packet has not ended yet (None: it has)."""
    pk = seen.packet
    if pk is None:
        return "never read"
    status = pk["status"]
    if status not in ENDED[kind]:
        return f"status {status}"
    payouts = grab_payouts(kind, pk)
    if any(g["payout"]["status"] == "processing" for g in payouts):
        return "a payout is processing"
    if status == "canceled":
        busy = [r for r in seen.refunds if r["status"] == "processing"]
        return f"refund {busy[0]['id']} processing" if busy else None
    failed = sum(g["amount"] for g in payouts if g["payout"]["status"] == "failed")
    owed = failed + (pk.get("remaining_amount", 0) if status == "expired" else 0)
    if kind == "transfers":
        owed = pk["amount"] if status == "returned" else 0
    if pk["refunded_amount"] != owed:
        return f"refunded_amount {pk['refunded_amount']}, owed {owed}"
    if owed:
        back = [r for r in seen.refunds if r["out_refund_no"] == f"{pk['id']}-back"]
        if not back or back[0]["status"] != "succeeded":
            return f"refund to the sender {back[0]['status'] if back else 'missing'}"
    return None


def grab_payouts(kind: str, pk: dict[str, Any]) -> list[dict[str, Any]]:
    """A red packet's grabs; a transfer's one payout as a grab of its whole amount."""
    if kind == "red_packets":
        return list(pk.get("grabs", []))
    payout = pk.get("payout")
    return [{"user": pk["to"], "amount": pk["amount"], "payout": payout}] if payout else []


async def settle_social(api: Api, packets: list[PlannedPacket], grace_s: float
                        ) -> dict[int, Seen]:
    """Read every packet (and its refunds) until all have ended or the grace period ends."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + grace_s
    seen = {p.index: Seen() for p in packets if p.id}
    known = [p for p in packets if p.id]
    progress = Progress("chaos social settle", len(known), "ended")
    limit = asyncio.Semaphore(16)

    async def read(p: PlannedPacket) -> None:
        async with limit:
            got = await api.call("GET", f"/v1/{p.kind}/{p.id}")
            if got is None or got.status != 200:
                return
            seen[p.index].packet = got.body
            for g in grab_payouts(p.kind, got.body):
                payout_id = g["payout"]["id"]
                if g["payout"]["status"] == "failed" and payout_id not in seen[p.index].failures:
                    payout = await api.call("GET", f"/v1/payouts/{payout_id}")
                    if payout is not None and payout.status == 200:
                        seen[p.index].failures[payout_id] = payout.body["failure"]["code"]
            refunds = await api.call("GET", f"/v1/payments/{got.body['payment']['id']}/refunds")
            if refunds is not None and refunds.status == 200:
                seen[p.index].refunds = refunds.body["data"]

    while True:
        await asyncio.gather(*(read(p) for p in known if not_ended(p.kind, seen[p.index])))
        pending = [p for p in known if not_ended(p.kind, seen[p.index])]
        if not pending or loop.time() >= deadline:
            progress.finish(f"{len(known) - len(pending)} of {len(known)} ended")
            return seen
        progress.show(len(known) - len(pending), None, deadline - loop.time(),
                      f"{len(pending)} not ended yet (ETA: the grace period at most)")
        await asyncio.sleep(0.5)


class SocialChecker:
    def __init__(self, ledgers: dict[str, dict[str, Any]], wallets: dict[str, str]) -> None:
        self.ledgers = ledgers
        self.wallets = wallets  # user -> the identity payouts go to
        self.counts: Counter[str] = Counter()
        self.problems: list[str] = []
        self.summary = {"red_packets": KindSummary(), "transfers": KindSummary()}
        self.funding_orders: list[tuple[str, str]] = []
        self.payout_rows: dict[str, list[tuple[str, dict[str, Any]]]] = {}
        for rail, ledger in ledgers.items():
            for no, row in ledger.get("payouts", {}).items():
                self.payout_rows.setdefault(no, []).append((rail, row))
        self.claimed: set[str] = set()  # payout numbers some grab names

    def problem(self, kind: str, p: PlannedPacket, text: str) -> None:
        self.counts[kind] += 1
        self.problems.append(f"{kind}: {p.name}: {text}")

    def report(self, packets: list[PlannedPacket], seen: dict[int, Seen]) -> SocialReport:
        for p in packets:
            self.one(p, seen.get(p.index, Seen()))
        for no, rows in self.payout_rows.items():
            for rail, row in rows:
                if row["payouts"] > 1:
                    self.counts["double_payouts"] += 1
                    self.problems.append(f"double_payouts: {rail} payout {no} paid "
                                         f"{row['payouts']} times")
                if no not in self.claimed and row["paid"]:
                    self.counts["money"] += 1
                    self.problems.append(f"money: {rail} payout {no} paid {row['paid']} "
                                         f"for no grab of any packet")
        return SocialReport(self.summary["red_packets"], self.summary["transfers"],
                            {k: self.counts[k] for k in KINDS}, self.problems,
                            self.funding_orders)

    def one(self, p: PlannedPacket, seen: Seen) -> None:
        s = self.summary[p.kind]
        s.planned += 1
        s.grab_requests += sum(times for _, times in p.grabbers) + bool(p.grabbers)
        s.acknowledged += len({a.user for a in p.acks})
        for verb, answers in (("accept", p.accepts), ("decline", p.declines)):
            for http, said in answers:
                s.actions[f"{verb} {http} {said}"] += 1
        pk = seen.packet
        if pk is None:
            if p.id or p.acks:
                self.problem("stuck", p, f"could not be read; created {p.created}")
            s.statuses["never created" if not p.id else "unreadable"] += 1
            return
        s.created += 1
        s.statuses[pk["status"]] += 1
        if (why := not_ended(p.kind, seen)) is not None:
            self.problem("stuck", p, why)
        grabs = grab_payouts(p.kind, pk)
        s.grabs += len(grabs)
        paid = self.money(p, pk, seen, grabs, s)
        s.paid += paid
        self.grabs_kept(p, pk, grabs)
        self.limits(p, pk, grabs)

    def money(self, p: PlannedPacket, pk: dict[str, Any], seen: Seen,
              grabs: list[dict[str, Any]], s: KindSummary) -> int:
        funded = refunded = 0
        for attempt in pk["payment"].get("attempts", []):
            rail, no = attempt.get("adapter") or attempt.get("rail"), attempt.get("rail_order_no")
            if not no:
                continue
            self.funding_orders.append((str(rail), str(no)))
            order = self.ledgers.get(str(rail), {}).get("orders", {}).get(no) or {}
            funded += order.get("charged", 0)
            refunded += order.get("refunded", 0)
        paid = 0
        for g in grabs:
            number = g["payout"]["id"].replace("_", "")
            self.claimed.add(number)
            rows = self.payout_rows.get(number, [])
            got = sum(row["paid"] for _, row in rows)
            paid += got
            status = g["payout"]["status"]
            if len(rows) > 1:
                self.problem("double_payouts", p, f"payout {number} on {len(rows)} rails")
            if (status == "succeeded" and got != g["amount"]) or (status == "failed" and got):
                self.problem("money", p, f"payout {number} {status} for {g['amount']}, "
                                         f"the rail paid {got}")
        s.funded += funded
        s.refunded += refunded
        s.refunds += sum(1 for r in seen.refunds if r["status"] == "succeeded")
        for g in grabs:
            s.payouts[g["payout"]["status"]] += 1
            code = seen.failures.get(g["payout"]["id"])
            if g["payout"]["status"] == "failed":
                s.failures[str(code)] += 1
                if not self.wallets.get(g["user"], "").endswith("2"):
                    self.problem("lost_grabs", p, f"payout {g['payout']['id']} of "
                                                  f"{g['user']} failed ({code}), though the "
                                                  f"payee can be paid")
        if paid + refunded != funded:
            self.problem("money", p, f"paid out {paid} + refunded {refunded} != funded {funded}")
        if pk["status"] != "canceled" and funded != pk["amount"]:
            self.problem("money", p, f"{pk['status']} but its payment took {funded} of "
                                     f"{pk['amount']}")
        api_refunded = sum(r["amount"] for r in seen.refunds if r["status"] == "succeeded")
        if api_refunded != refunded:
            self.problem("money", p, f"the API shows {api_refunded} refunded, the rail {refunded}")
        return paid

    def grabs_kept(self, p: PlannedPacket, pk: dict[str, Any],
                   grabs: list[dict[str, Any]]) -> None:
        by_user = {g["user"]: g for g in grabs}
        first: dict[str, tuple[str, int]] = {}
        for ack in p.acks:
            held = (ack.grab_id, ack.amount)
            if first.setdefault(ack.user, held) != held:
                self.problem("lost_grabs", p, f"{ack.user} answered {first[ack.user]} "
                                              f"and then {held}")
            g = by_user.get(ack.user)
            kept = (g.get("id"), g["amount"]) if g else None
            if kept != held:
                self.problem("lost_grabs", p, f"{ack.user} was answered {ack.http} {held}, "
                                              f"the packet has {kept}")
        if p.kind != "transfers":
            return
        accepted = [a for a in p.accepts if a[0] == 200]
        declined = [a for a in p.declines if a[0] == 200 and a[1] == "returned"]
        if any(http == 200 and said != "returned" for http, said in p.declines):
            self.problem("lost_grabs", p, f"a decline answered 200 but did not return it: "
                                          f"{p.declines}")
        if accepted and not grabs:
            self.problem("lost_grabs", p, f"accepted ({accepted}) but has no payout")
        if declined and (grabs or pk["status"] != "returned"):
            self.problem("lost_grabs", p, f"declined ({declined}) but is {pk['status']} "
                                          f"with payout {pk.get('payout')}")

    def limits(self, p: PlannedPacket, pk: dict[str, Any], grabs: list[dict[str, Any]]) -> None:
        count = pk.get("count", 1)
        total = sum(g["amount"] for g in grabs)
        users = [g["user"] for g in grabs]
        if len(grabs) > count or total > pk["amount"] or len(set(users)) != len(users):
            self.problem("limits", p, f"{len(grabs)} grabs of {count}, {total} of "
                                      f"{pk['amount']}, users {users}")
        if p.kind != "red_packets":
            return
        if total + pk["remaining_amount"] != pk["amount"]:
            self.problem("limits", p, f"grabs {total} + remaining {pk['remaining_amount']} "
                                      f"!= {pk['amount']}")
        if pk["status"] == "finished" and (total != pk["amount"] or len(grabs) != count):
            self.problem("limits", p, f"finished with {len(grabs)} grabs summing {total}")
        if any(g["amount"] < 1 for g in grabs) or (
                pk["split"] == "equal" and any(g["amount"] != pk["amount"] // count
                                               for g in grabs)):
            self.problem("limits", p, f"shares {[g['amount'] for g in grabs]} break the "
                                      f"{pk['split']} split")
