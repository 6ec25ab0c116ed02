"""The chaos run's commerce checker: every authorization and split against the rails'
ledgers, once the grace period is over.

Authorizations (the Alipay ledger's `authorizations`, and its `orders` for a capture's
payment): what the rail authorised (frozen, or on credit) equals what it captured plus
what it released plus what it still holds; a frozen hold froze exactly the amount and a
credit one nothing, as the router says (`deposit_free`); a captured one captured what its
capture's payment charged, once (`charges` ≤ 1), and holds nothing more; a voided,
expired or failed one captured nothing and holds nothing; answers the client got are kept
(an acknowledged capture is the authorization's payment, a void answered `voided` ends
voided); every authorization ended (captured, voided, expired, failed), and no hold at
the rail is unknown to the router.

Splits (the WeChat Pay ledger's `splits`): a payment's splits never sum above 30 % of what
its order charged; each split the router calls succeeded is in the ledger once with the
same amount shared and returned, one it calls failed shared nothing; every split, split
payment and refund ended; no split at the rail is unknown to the router.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from loadtest.chaos_commerce import PARTNER_TABLE, SHOP_MCHID
from loadtest.chaos_commerce_plan import CAP_BP, CommercePlan, PlannedAuth, PlannedSplitPayment
from loadtest.chaos_social_plan import Api
from loadtest.progress import Progress

KINDS = ("auth_money", "double_captures", "auth_lost", "auth_stuck", "split_cap",
         "split_money", "split_unknown", "split_stuck")
AUTH_ENDED = frozenset({"captured", "voided", "expired", "failed"})
SPLIT_ENDED = frozenset({"succeeded", "failed"})
REFUND_ENDED = frozenset({"succeeded", "failed"})
PAYMENT_UNSETTLED = frozenset({"processing", "requires_action"})


def ledger_place(adapter: str, rail_order_no: str) -> tuple[str, str]:
    """Where an attempt's order is in the ledgers: (simulator, order key). A partner-mode
    instance (`<table>~<provider>~<merchant>`) is on its table's simulator, keyed under
    the sub-merchant's number."""
    table = adapter.split("~")[0]
    if table == PARTNER_TABLE:
        return "wechatpay", f"{SHOP_MCHID}/{rail_order_no}"
    return table, rail_order_no


def payment_orders(payment: dict[str, Any]) -> list[tuple[str, str]]:
    return [ledger_place(str(a.get("adapter") or a.get("rail")), str(a["rail_order_no"]))
            for a in payment.get("attempts", []) if a.get("rail_order_no")]


@dataclass
class CommerceSeen:
    """What the router shows after the grace period."""

    auths: dict[int, dict[str, Any]] = field(default_factory=dict)
    captures: dict[str, dict[str, Any]] = field(default_factory=dict)  # payment id -> it
    payments: dict[int, dict[str, Any]] = field(default_factory=dict)
    splits: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    refunds: dict[int, list[dict[str, Any]]] = field(default_factory=dict)

    def capture_ids(self, a: PlannedAuth) -> set[str]:
        auth = self.auths.get(a.index, {})
        ids = {pid for _, pid, _ in a.captures}
        return ids | ({auth["payment_id"]} if auth.get("payment_id") else set())

    def auth_pending(self, a: PlannedAuth) -> bool:
        if a.id is None:
            return False
        if self.auths.get(a.index, {}).get("status") not in AUTH_ENDED:
            return True
        return any(self.captures.get(pid, {}).get("status", "processing") in PAYMENT_UNSETTLED
                   for pid in self.capture_ids(a))

    def payment_pending(self, p: PlannedSplitPayment) -> bool:
        if p.id is None:
            return False
        if self.payments.get(p.index, {}).get("status", "processing") in PAYMENT_UNSETTLED:
            return True
        return (any(s["status"] not in SPLIT_ENDED for s in self.splits.get(p.index, []))
                or any(r["status"] not in REFUND_ENDED for r in self.refunds.get(p.index, [])))


async def settle_commerce(api: Api, shop: Api, plan: CommercePlan, grace_s: float
                          ) -> CommerceSeen:
    """Read every authorization, capture, split payment, split and refund until all
    have ended or the grace period ends."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + grace_s
    seen = CommerceSeen()
    total = plan.items
    progress = Progress("chaos commerce settle", total, "ended")
    limit = asyncio.Semaphore(16)

    async def get(client: Api, path: str) -> dict[str, Any] | None:
        async with limit:
            got = await client.call("GET", path)
        return got.body if got is not None and got.status == 200 else None

    async def read_auth(a: PlannedAuth) -> None:
        if (body := await get(api, f"/v1/authorizations/{a.id}")) is not None:
            seen.auths[a.index] = body
        for pid in seen.capture_ids(a):
            if (payment := await get(api, f"/v1/payments/{pid}")) is not None:
                seen.captures[pid] = payment

    async def read_payment(p: PlannedSplitPayment) -> None:
        if (body := await get(shop, f"/v1/payments/{p.id}")) is not None:
            seen.payments[p.index] = body
        if (splits := await get(shop, f"/v1/payments/{p.id}/splits")) is not None:
            seen.splits[p.index] = splits["data"]
        if (refunds := await get(shop, f"/v1/payments/{p.id}/refunds")) is not None:
            seen.refunds[p.index] = refunds["data"]

    while True:
        await asyncio.gather(*(read_auth(a) for a in plan.authorizations
                               if seen.auth_pending(a)),
                             *(read_payment(p) for p in plan.payments
                               if seen.payment_pending(p)))
        pending = (sum(seen.auth_pending(a) for a in plan.authorizations)
                   + sum(seen.payment_pending(p) for p in plan.payments))
        if not pending or loop.time() >= deadline:
            progress.finish(f"{total - pending} of {total} ended")
            return seen
        progress.show(total - pending, None, deadline - loop.time(),
                      f"{pending} not ended yet (ETA: the grace period at most)")
        await asyncio.sleep(0.5)


@dataclass
class CommerceReport:
    counts: dict[str, int]
    problems: list[str]
    summary: dict[str, Any]
    orders: dict[str, list[tuple[str, str]]]  # whose payments ("merchant" | "shop") -> orders
    payments: dict[str, list[dict[str, Any]]]  # ... -> the payments, as the API shows them
    split_rows: list[str]  # the ledger's split keys the shop's splits name

    def to_json(self) -> dict[str, Any]:
        return {"violations": self.counts, "problems": self.problems, **self.summary}


class CommerceChecker:
    def __init__(self, ledgers: dict[str, dict[str, Any]]) -> None:
        self.ledgers = ledgers
        self.counts: Counter[str] = Counter({kind: 0 for kind in KINDS})
        self.problems: list[str] = []
        self.orders: dict[str, list[tuple[str, str]]] = {"merchant": [], "shop": []}
        self.payments: dict[str, list[dict[str, Any]]] = {"merchant": [], "shop": []}
        self.split_rows: list[str] = []

    def problem(self, kind: str, text: str) -> None:
        self.counts[kind] += 1
        self.problems.append(f"{kind}: {text}")

    def order(self, place: tuple[str, str]) -> dict[str, Any]:
        row: dict[str, Any] = self.ledgers.get(place[0], {}).get("orders", {}).get(place[1], {})
        return row

    def report(self, plan: CommercePlan, seen: CommerceSeen) -> CommerceReport:
        holds = self.ledgers.get("alipay", {}).get("authorizations", {})
        named = {a.id.replace("_", "") for a in plan.authorizations if a.id}
        for a in plan.authorizations:
            self.authorization(a, seen)
        for no in holds:
            if no not in named:
                self.problem("auth_money", f"the rail holds {no}, which no authorization names")
        for p in plan.payments:
            self.split_payment(p, seen)
        known = set(self.split_rows)
        for key, row in self.ledgers.get("wechatpay", {}).get("splits", {}).items():
            if key not in known:
                self.problem("split_unknown", f"the rail shared {row['amount']} under {key}, "
                                              "which no split names")
        return CommerceReport(dict(self.counts), self.problems, summarize(plan, seen),
                              self.orders, self.payments, self.split_rows)

    # ----------------------------------------------------------------- authorizations
    def authorization(self, a: PlannedAuth, seen: CommerceSeen) -> None:
        if a.id is None:
            return
        auth = seen.auths.get(a.index)
        name = f"authorization {a.id} ({a.action})"
        if auth is None:
            self.problem("auth_stuck", f"{name}: could not be read")
            return
        status = str(auth["status"])
        if status not in AUTH_ENDED:
            self.problem("auth_stuck", f"{name}: still {status}; created {a.created}")
        pids = seen.capture_ids(a)
        if len(pids) > 1:
            self.problem("double_captures", f"{name}: captured as {sorted(pids)}")
        row = self.ledgers.get("alipay", {}).get("authorizations", {}).get(a.id.replace("_", ""))
        for pid in pids:
            self.orders["merchant"] += payment_orders(seen.captures.get(pid, {}))
            self.payments["merchant"].append(seen.captures.get(pid, {}))
        self.acknowledged(a, name, auth)
        if row is None:
            if status != "failed":
                self.problem("auth_money", f"{name}: {status} but the rail has no hold")
            return
        self.hold(name, auth, row, [seen.captures.get(pid, {}) for pid in pids])

    def acknowledged(self, a: PlannedAuth, name: str, auth: dict[str, Any]) -> None:
        for http, pid, _ in a.captures:
            if auth.get("payment_id") != pid:
                self.problem("auth_lost", f"{name}: capture answered {http} {pid}, now "
                                          f"{auth['status']} with {auth.get('payment_id')}")
        if any(status == "voided" for _, status in a.voids) and auth["status"] != "voided":
            self.problem("auth_lost", f"{name}: void answered voided, now {auth['status']}")

    def hold(self, name: str, auth: dict[str, Any], row: dict[str, Any],
             captures: list[dict[str, Any]]) -> None:
        status, amount = str(auth["status"]), int(auth["amount"])
        held = int(row["amount"]) if row["credit"] or row["frozen"] else 0  # 0: declined
        moved = row["captured"] + row["released"] + row["rest"]
        if held != moved:
            self.problem("auth_money", f"{name}: the rail authorised {held}, captured "
                                       f"{row['captured']} + released {row['released']} + "
                                       f"holds {row['rest']}")
        if held and row["frozen"] != (0 if row["credit"] else amount):
            self.problem("auth_money", f"{name}: froze {row['frozen']} of {amount} "
                                       f"(credit {row['credit']})")
        if held and bool(auth.get("deposit_free")) != row["credit"]:
            self.problem("auth_money", f"{name}: deposit_free {auth.get('deposit_free')}, "
                                       f"the rail's credit {row['credit']}")
        if row["rest"]:
            self.problem("auth_money", f"{name}: {status}, the rail still holds {row['rest']}")
        charged = [self.order(place) for c in captures for place in payment_orders(c)]
        if any(order.get("charges", 0) > 1 for order in charged):
            self.problem("double_captures", f"{name}: capture orders {charged}")
        taken = sum(order.get("charged", 0) for order in charged)
        if status == "captured":
            if not (auth["captured_amount"] == row["captured"] == taken):
                self.problem("auth_money", f"{name}: captured {auth['captured_amount']}, "
                                           f"the rail captured {row['captured']}, its "
                                           f"payment's order charged {taken}")
        elif row["captured"] or taken:
            self.problem("auth_money", f"{name}: {status}, but the rail captured "
                                       f"{row['captured']} (orders charged {taken})")

    # ----------------------------------------------------------------- splits
    def split_payment(self, p: PlannedSplitPayment, seen: CommerceSeen) -> None:
        if p.id is None:
            return
        payment = seen.payments.get(p.index, {})
        name = f"split payment {p.id}"
        places = payment_orders(payment)
        self.orders["shop"] += places
        self.payments["shop"].append(payment)
        if payment.get("status", "processing") in PAYMENT_UNSETTLED:
            self.problem("split_stuck", f"{name}: still {payment.get('status')}")
        charged = sum(self.order(place).get("charged", 0) for place in places)
        splits = seen.splits.get(p.index, [])
        rows = self.ledgers.get("wechatpay", {}).get("splits", {})
        shared = 0
        for split in splits:
            key = f"{SHOP_MCHID}/{split['id'].replace('_', '')}"
            self.split_rows.append(key)
            row = rows.get(key)
            paid = sum(r["amount"] for r in row["receivers"]
                       if r["result"] == "SUCCESS") if row else 0
            shared += paid
            status = split["status"]
            if status not in SPLIT_ENDED:
                self.problem("split_stuck", f"split {split['id']}: still {status}")
            elif status == "succeeded" and paid != split["amount"]:
                self.problem("split_money", f"split {split['id']}: succeeded for "
                                            f"{split['amount']}, the rail shared {paid} ({row})")
            elif status == "failed" and paid:
                self.problem("split_money", f"split {split['id']}: failed, the rail shared "
                                            f"{paid}")
            returned = row["returned"] if row else 0
            if returned != split["returned_amount"]:
                self.problem("split_money", f"split {split['id']}: returned "
                                            f"{split['returned_amount']}, at the rail {returned}")
        if shared > charged * CAP_BP // 10_000:
            self.problem("split_cap", f"{name}: {shared} shared of {charged} charged")
        for refund in seen.refunds.get(p.index, []):
            if refund["status"] not in REFUND_ENDED:
                self.problem("split_stuck", f"refund {refund['id']}: still {refund['status']}")


def summarize(plan: CommercePlan, seen: CommerceSeen) -> dict[str, Any]:
    auths = [seen.auths[a.index] for a in plan.authorizations if a.index in seen.auths]
    splits = [s for p in plan.payments for s in seen.splits.get(p.index, [])]
    refunds = [r for p in plan.payments for r in seen.refunds.get(p.index, [])]
    return {
        "authorizations": {
            "planned": len(plan.authorizations),
            "created": sum(1 for a in plan.authorizations if a.id),
            "statuses": dict(sorted(Counter(str(a["status"]) for a in auths).items())),
            "deposit_free": sum(1 for a in auths if a.get("deposit_free")),
            "captured_amount": sum(int(a.get("captured_amount", 0)) for a in auths),
            "actions": dict(sorted(Counter(a.action for a in plan.authorizations).items())),
        },
        "split_payments": {
            "planned": len(plan.payments),
            "paid": sum(1 for p in plan.payments if p.paid),
            "statuses": dict(sorted(Counter(str(seen.payments[p.index]["status"])
                                            for p in plan.payments
                                            if p.index in seen.payments).items())),
            "splits": dict(sorted(Counter(str(s["status"]) for s in splits).items())),
            "refused_over_cap": sum(1 for p in plan.payments for s in p.splits
                                    if s.refused == "split_exceeds_cap"),
            "shared": sum(int(s["amount"]) for s in splits if s["status"] == "succeeded"),
            "returned": sum(int(s["returned_amount"]) for s in splits),
            "refunds": dict(sorted(Counter(str(r["status"]) for r in refunds).items())),
        },
    }


def print_commerce(commerce: dict[str, Any], kills: int) -> None:
    auths, shared = commerce["authorizations"], commerce["split_payments"]
    print(f"authorizations: {auths['planned']} planned {auths['actions']}, "
          f"{auths['created']} created, final {auths['statuses']}, "
          f"{auths['deposit_free']} deposit-free, {auths['captured_amount']} captured")
    print(f"split payments: {shared['planned']} planned, {shared['paid']} paid when split "
          f"(final {shared['statuses']}), splits "
          f"{shared['splits']} ({shared['refused_over_cap']} refused over the cap), "
          f"{shared['shared']} shared, {shared['returned']} returned, refunds "
          f"{shared['refunds']}; {kills} gateway kills at a capture, void or split")
    for kind in KINDS:
        print(f"commerce {kind.replace('_', ' ') + ':':<22}{commerce['violations'][kind]}")
    for line in commerce["problems"][:50]:
        print(f"  {line}")
