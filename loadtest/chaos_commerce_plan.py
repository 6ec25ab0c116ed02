"""What the chaos run's commerce load does, drawn from `--seed` before it starts:
pre-authorisations on the Alipay simulator and profit-sharing payments on WeChat Pay.

Authorizations are in-person Alipay freezes. The payer code's last digit decides what the
simulator does (SANDBOX.md): `1` authorised at once, `3` too but the payer scores 500, `9`
authorised with the answer lost, `2` declined. Asked with `deposit_free.min_score` 550, a
payer scoring 700 holds nothing (credit) and one scoring 500 has the amount frozen; asked
without it, the amount is frozen whatever the score. Each is then captured (part or all
of the hold), voided, captured and voided at once, or left to expire.

Split payments are made by a service provider acting for its sub-merchant (partner mode)
and paid at once by a quick pay code; then a few splits go out at once, to the provider's
own account and another sub-merchant's, some together above the 30 % cap, some naming a
frozen account (ending in 2, whose share the rail closes); then some payments are refunded,
which first takes shared money back from the receivers.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

AUTH_CODES = {"credit": "287634567890123451", "low_score": "287634567890123453",
              "answer_lost": "287634567890123459", "declined": "287634567890123452"}
AUTH_PAYERS = ("credit", "credit", "low_score", "low_score", "answer_lost", "declined")
AUTH_ACTIONS = ("capture", "capture", "capture_all", "void", "race", "expire", "expire")
MIN_SCORE = 550  # between the simulator's 500 and 700
HOLD_EXPIRES_S = 20  # captured or voided holds: long enough to act on, ending in the grace
SHORT_EXPIRES_S = (2, 4)  # holds left to expire
WECHAT_PAID_CODE = "134567890123456781"  # a WeChat Pay code paid at once
CAP_BP = 3000  # the default split cap: 30 % of what was paid
SPLIT_RECEIVERS = ("provider", "provider", "merchant", "both", "both", "frozen")


@dataclass
class PlannedAuth:
    """One authorization, and what the client learnt about it."""

    index: int
    body: dict[str, Any]
    key: str
    start_s: float  # created this long after the load starts
    action: str  # capture | capture_all | void | race | expire
    capture_amount: int
    kill: bool = False  # a gateway SIGKILL the moment it is captured or voided
    id: str | None = None
    created: list[str] = field(default_factory=list)  # what each create answer was
    captures: list[tuple[int, str, str]] = field(default_factory=list)  # (http, id, status)
    voids: list[tuple[int, str]] = field(default_factory=list)  # (http, status)
    refusals: list[str] = field(default_factory=list)  # other answers to capture / void
    done: bool = False

    @property
    def out_trade_no(self) -> str:
        return f"{self.body['out_auth_no']}-pay"


@dataclass
class PlannedSplit:
    """One split of a payment: its number and receivers (kinds and amounts)."""

    out_split_no: str
    receivers: list[tuple[str, int]]  # (provider | merchant | frozen, amount)
    answers: list[tuple[int, str, str]] = field(default_factory=list)  # (http, id, status)
    refused: str = ""  # a 4xx answer's code (over the cap)

    @property
    def amount(self) -> int:
        return sum(amount for _, amount in self.receivers)


@dataclass
class PlannedSplitPayment:
    """A partner-mode WeChat Pay payment, its splits and perhaps a refund."""

    index: int
    body: dict[str, Any]
    key: str
    start_s: float
    splits: list[PlannedSplit]
    refund: int  # minor units refunded once its splits ended (0: none)
    kill: bool = False  # a gateway SIGKILL the moment its splits go out
    id: str | None = None
    paid: bool = False
    status: str = ""
    refund_answers: list[tuple[int, str, str]] = field(default_factory=list)
    done: bool = False

    @property
    def amount(self) -> int:
        return int(self.body["amount"])


@dataclass
class CommercePlan:
    authorizations: list[PlannedAuth]
    payments: list[PlannedSplitPayment]

    @property
    def items(self) -> int:
        return len(self.authorizations) + len(self.payments)

    @property
    def done(self) -> int:
        return (sum(1 for a in self.authorizations if a.done)
                + sum(1 for p in self.payments if p.done))


def plan_authorization(rng: random.Random, seed: int, i: int, seconds: float) -> PlannedAuth:
    payer = rng.choice(AUTH_PAYERS)
    action = rng.choice(AUTH_ACTIONS)
    amount = rng.randint(100, 50_000)
    no = f"chaos{seed}au{i}"
    body: dict[str, Any] = {
        "out_auth_no": no, "amount": amount, "currency": "CNY", "method": "alipay",
        "scene": "quickpay", "payer": {"auth_code": AUTH_CODES[payer]},
        "description": f"chaos hold {i}",
        "expires_in_s": (rng.randint(*SHORT_EXPIRES_S) if action == "expire"
                         else HOLD_EXPIRES_S)}
    if rng.random() < 0.75:  # the rest ask for no credit: frozen whatever the score
        body["deposit_free"] = {"min_score": MIN_SCORE}
    capture = amount if action == "capture_all" else rng.randint(1, amount)
    return PlannedAuth(i, body, f"key-{no}", rng.uniform(0.0, 0.7) * seconds, action, capture)


def plan_split_payment(rng: random.Random, seed: int, i: int, seconds: float
                       ) -> PlannedSplitPayment:
    amount = rng.randint(1_000, 20_000)
    cap = amount * CAP_BP // 10_000
    otn = f"chaos-{seed}-split-pay-{i}"
    body = {"amount": amount, "currency": "CNY", "out_trade_no": otn,
            "description": f"chaos shared {i}", "scene": "quickpay", "method": "wechatpay",
            "payer": {"auth_code": WECHAT_PAID_CODE}}
    splits = []
    for j in range(rng.choice((1, 2, 2, 3))):  # sometimes together above the cap
        total = rng.randint(2, max(2, cap * 2 // 3))
        kind = rng.choice(SPLIT_RECEIVERS)
        if kind == "both":
            first = rng.randint(1, total - 1)
            receivers = [("provider", first), ("merchant", total - first)]
        elif kind == "frozen" and rng.random() < 0.5:  # a frozen account beside a good one
            first = rng.randint(1, total - 1)
            receivers = [("provider", first), ("frozen", total - first)]
        else:
            receivers = [(kind, total)]
        splits.append(PlannedSplit(f"{otn}-s{j}", receivers))
    refund = rng.choice((0, 0, amount, rng.randint(1, amount)))
    return PlannedSplitPayment(i, body, f"key-{otn}", rng.uniform(0.0, 0.6) * seconds, splits,
                               refund)


def plan_commerce(seed: int, authorizations: int, split_payments: int, seconds: float,
                  kills: int) -> CommercePlan:
    rng = random.Random(seed + 9)
    auths = [plan_authorization(rng, seed, i, seconds) for i in range(authorizations)]
    payments = [plan_split_payment(rng, seed, i, seconds) for i in range(split_payments)]
    acted: list[PlannedAuth | PlannedSplitPayment] = [a for a in auths if a.action != "expire"]
    acted += payments
    for item in rng.sample(acted, min(kills, len(acted))):
        item.kill = True
    return CommercePlan(auths, payments)
