"""The chaos run's journal checker: after the grace period, the merchants' hash-chained
journals against the rails' ledgers.

First every movement must be chained: `payrouter journal verify` (run against the run's
Redis) is repeated until it reports no movement waiting in an inbox; its last run must
exit 0, every chain in it verified. Then, per merchant, the journal (`GET /v1/journal`,
every page) must add up to the ledgers, kind by kind:

| kind | journal entries | the rails' ledgers |
|---|---|---|
| charge | `charge` (a capture: its payment's charge) | `charged` of its paid payments' orders |
| refund | `refund` | `refunded` of the same orders |
| payout | `payout` | `paid` of the `payouts` (only the merchant pays out) |
| split | `split` | receivers paid (`SUCCESS`) of the `splits` its splits name |
| split_return | `split_return` | `returned` of those splits |

A payment that never became paid (closed, failed) moved no money of the merchant's: its
orders must have no entries, and at the rail they must give back whatever they took (a
quick pay reversed after the payer paid: charged and refunded at once); that money is
shown as `reversed`. Differences are named order by order (split by split, payout by
payout); a chain of a merchant the run does not know, or an entry of another kind, is a
difference too. Points a merchant earns for its payments (`points`) move no money at a
rail: they are counted, not compared.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from loadtest.chaos_commerce import SHOP_MCHID
from loadtest.chaos_commerce_check import ledger_place, payment_orders
from loadtest.chaos_social_plan import Api
from loadtest.progress import Progress

JOURNAL_KINDS = ("charge", "refund", "payout", "split", "split_return")
OFF_RAIL_KINDS = ("points",)  # journaled, but no rail's ledger shows them
PAID = frozenset({"succeeded", "partially_refunded", "refunded"})
PAGE = 1000  # the journal API's largest page
VERIFY_TIMEOUT_S = 60.0
_CHAIN = re.compile(r"^(\S+): OK, (\d+) entries, head ([0-9a-f]{64})$")
_PENDING = re.compile(r"(\d+) movement\(s\) not chained yet")


@dataclass
class Verified:
    """One run of `payrouter journal verify`."""

    exit_code: int
    pending: int  # movements still in an inbox
    chains: dict[str, tuple[str, int]]  # head hash -> (merchant id, entries)
    last_line: str


def verify(redis_url: str, env: Mapping[str, str]) -> Verified:
    done = subprocess.run(
        [sys.executable, "-m", "router.cli", "journal", "verify", "--redis-url", redis_url],
        capture_output=True, text=True, timeout=VERIFY_TIMEOUT_S, check=False, env=dict(env))
    lines = done.stdout.strip().splitlines() or [done.stderr.strip()[-300:]]
    chains = {m[3]: (m[1], int(m[2])) for m in map(_CHAIN.match, lines) if m}
    pending = _PENDING.search(lines[-1])
    return Verified(done.returncode, int(pending[1]) if pending else -1, chains, lines[-1])


async def wait_chained(redis_url: str, env: Mapping[str, str], within_s: float) -> Verified:
    """`journal verify` until nothing is left to chain (or `within_s` passed)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    progress = Progress("chaos journal", 1, "chained")
    while True:
        found = await asyncio.to_thread(verify, redis_url, env)
        if found.pending == 0 or loop.time() >= deadline:
            progress.finish(found.last_line)
            return found
        progress.show(0, None, deadline - loop.time(), found.last_line)
        await asyncio.sleep(0.5)


async def read_journal(api: Api) -> tuple[list[dict[str, Any]], str]:
    """Every entry of the caller's journal, page by page, and its head's hash."""
    entries: list[dict[str, Any]] = []
    while True:
        got = await api.call("GET", f"/v1/journal?after={len(entries)}&limit={PAGE}")
        if got is None or got.status != 200:
            raise RuntimeError(f"GET /v1/journal: {got}")
        entries += got.body["data"]
        if not got.body["has_more"]:
            break
    head = await api.call("GET", "/v1/journal/head")
    return entries, str(head.body["hash"]) if head is not None and head.status == 200 else ""


@dataclass
class Books:
    """What one merchant's money is at the rails: the ledger rows its objects name."""

    payments: Iterable[dict[str, Any]] = ()  # its payments, as the API shows them
    payouts: bool = False  # every ledger payout is this merchant's
    splits: Iterable[str] = ()  # WeChat Pay ledger keys of its splits


@dataclass
class JournalReport:
    verify: dict[str, Any]
    merchants: dict[str, dict[str, dict[str, int]]]  # name -> kind -> journal / ledger
    problems: list[str] = field(default_factory=list)

    @property
    def differences(self) -> int:
        return len(self.problems)

    def to_json(self) -> dict[str, Any]:
        return {"verify": self.verify, "merchants": self.merchants,
                "violations": {"journal": self.differences}, "problems": self.problems}


class JournalChecker:
    def __init__(self, ledgers: dict[str, dict[str, Any]], verified: Verified) -> None:
        self.ledgers = ledgers
        self.verified = verified
        self.report = JournalReport(
            {"exit_code": verified.exit_code, "pending": verified.pending,
             "chains": len(verified.chains), "last_line": verified.last_line}, {})
        if verified.exit_code != 0 or verified.pending != 0:
            self.problem(f"journal verify exited {verified.exit_code}: {verified.last_line}")
        self.matched: set[str] = set()

    def problem(self, text: str) -> None:
        self.report.problems.append(text)

    def merchant(self, name: str, entries: list[dict[str, Any]], head: str,
                 books: Books) -> None:
        chain = self.verified.chains.get(head)
        if entries and chain is None:
            self.problem(f"{name}: journal head {head[:12]} is in no verified chain")
        elif chain is not None:
            self.matched.add(head)
            if chain[1] != len(entries):
                self.problem(f"{name}: the API shows {len(entries)} entries, verify "
                             f"{chain[1]}")
        by_kind: dict[str, dict[str, int]] = defaultdict(Counter)  # kind -> key -> amount
        for entry in entries:
            kind = str(entry["kind"])
            if kind in OFF_RAIL_KINDS:
                by_kind[kind]["-"] += int(entry["amount"])
                continue
            if kind not in JOURNAL_KINDS:
                self.problem(f"{name}: entry {entry['seq']} of kind {kind} ({entry['ref']})")
                continue
            by_kind[kind][self._key(kind, entry)] += int(entry["amount"])
        rails = self._ledger_side(name, books)
        totals: dict[str, dict[str, int]] = {}
        for kind in JOURNAL_KINDS:
            journal, ledger = by_kind.get(kind, {}), rails[kind]
            totals[kind] = {"journal": sum(journal.values()), "ledger": sum(ledger.values())}
            if kind == "split_return":  # returns are numbered per refund, not per split
                if totals[kind]["journal"] != totals[kind]["ledger"]:
                    self.problem(f"{name}: split returns journaled "
                                 f"{totals[kind]['journal']}, returned at the rails "
                                 f"{totals[kind]['ledger']}")
                continue
            for key in sorted(set(journal) | set(ledger)):
                if journal.get(key, 0) != ledger.get(key, 0):
                    self.problem(f"{name}: {kind} {key}: journal {journal.get(key, 0)}, "
                                 f"ledger {ledger.get(key, 0)}")
        for kind in OFF_RAIL_KINDS:
            totals[kind] = {"journal": sum(by_kind.get(kind, {}).values()), "ledger": 0}
        totals["reversed"] = {"journal": 0, "ledger": sum(rails["reversed"].values())}
        self.report.merchants[name] = totals

    def finish(self) -> JournalReport:
        for head, (merchant_id, count) in self.verified.chains.items():
            if head not in self.matched:
                self.problem(f"a chain of {merchant_id} ({count} entries) is no merchant of "
                             "the run's")
        return self.report

    @staticmethod
    def _key(kind: str, entry: dict[str, Any]) -> str:
        rail, no = str(entry["rail"]), str(entry["rail_no"])
        if kind in ("charge", "refund"):
            return "/".join(ledger_place(rail, no))
        if kind == "split":
            return f"{SHOP_MCHID}/{no}"
        return f"{rail.split('~')[0]}/{no}"  # payout; split_return (a total)

    def _ledger_side(self, name: str, books: Books) -> dict[str, dict[str, int]]:
        side: dict[str, dict[str, int]] = {kind: {} for kind in (*JOURNAL_KINDS, "reversed")}
        for payment in books.payments:
            for sim, key in payment_orders(payment):
                order = self.ledgers.get(sim, {}).get("orders", {}).get(key)
                if order is None:
                    continue
                charged, refunded = int(order["charged"]), int(order["refunded"])
                if payment["status"] in PAID:
                    side["charge"][f"{sim}/{key}"] = charged
                    side["refund"][f"{sim}/{key}"] = refunded
                elif charged != refunded:
                    self.problem(f"{name}: {payment['status']} payment {payment['id']}: "
                                 f"{sim} order {key} charged {charged}, refunded {refunded}")
                else:
                    side["reversed"][f"{sim}/{key}"] = charged
        if books.payouts:
            for sim, ledger in self.ledgers.items():
                for no, row in ledger.get("payouts", {}).items():
                    side["payout"][f"{sim}/{no}"] = int(row["paid"])
        rows = self.ledgers.get("wechatpay", {}).get("splits", {})
        for key in set(books.splits):
            row = rows.get(key)
            if row is not None:
                side["split"][key] = sum(int(r["amount"]) for r in row["receivers"]
                                         if r["result"] == "SUCCESS")
                side["split_return"][key] = int(row["returned"])
        for kind in side:  # a row that moved nothing is no difference
            side[kind] = {k: v for k, v in side[kind].items() if v}
        return side


def print_journal(journal: dict[str, Any]) -> None:
    v = journal["verify"]
    print(f"journal verify: exit {v['exit_code']}, {v['chains']} chain(s), "
          f"{v['pending']} movement(s) not chained ({v['last_line']})")
    for name, kinds in journal["merchants"].items():
        sums = ", ".join(f"{kind} {t['journal']}/{t['ledger']}" for kind, t in kinds.items()
                         if kind in JOURNAL_KINDS)
        sums += f"; reversed at the rail {kinds['reversed']['ledger']}"
        sums += "".join(f"; {kind} {kinds[kind]['journal']} (at no rail)"
                        for kind in OFF_RAIL_KINDS if kinds[kind]["journal"])
        print(f"journal = ledgers, {name}: {sums}")
    print(f"journal differences:         {journal['violations']['journal']}")
    for line in journal["problems"][:50]:
        print(f"  {line}")
