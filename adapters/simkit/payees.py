"""The people payouts go to, as every simulator models them (SANDBOX.md, "Payouts").

The payee's identity (openid, Alipay user id, bank account) decides the outcome by its
last character, like payer codes do for charges: `2` is refused for good (the account is
frozen), `9` is paid but the rail's answer is lost (only a query tells), anything else is
paid. `POST /sim/payees {"id", "name"}` sets the real name behind an identity; a payout
that carries another name is refused (`NAME_NOT_CORRECT` on every rail).

The payout ledger (`GET /sim/ledger` → `payouts`) counts how many times money was paid
for each rail-side number: above 1 is a double payout.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import final

from aiohttp import web


class PayeeOutcome(enum.Enum):
    PAID = "paid"
    FROZEN = "frozen"  # refused definitively: the account cannot receive
    ANSWER_LOST = "answer_lost"  # paid, but the answer never reaches the merchant


def payee_outcome(identity: str) -> PayeeOutcome:
    if identity.endswith("2"):
        return PayeeOutcome.FROZEN
    if identity.endswith("9"):
        return PayeeOutcome.ANSWER_LOST
    return PayeeOutcome.PAID


@final
class Payees:
    """Real names behind payee identities, set by `POST /sim/payees`."""

    __slots__ = ("_names",)

    def __init__(self) -> None:
        self._names: dict[str, str] = {}

    def set_name(self, identity: str, name: str) -> None:
        self._names[identity] = name

    def name_matches(self, identity: str, name: str | None) -> bool:
        """A payout that carries no name is not checked; one that carries a name must
        carry the one set for the identity (any name passes for an unknown identity)."""
        if name is None:
            return True
        known = self._names.get(identity)
        return known is None or known == name

    def route(self) -> web.RouteDef:
        async def set_payee(request: web.Request) -> web.Response:
            try:
                body = json.loads(await request.read() or b"{}")
                identity, name = body["id"], body["name"]
                if not isinstance(identity, str) or not isinstance(name, str) or not identity:
                    raise ValueError("id and name must be non-empty strings")
            except (ValueError, KeyError, TypeError) as exc:
                return web.json_response(
                    {"code": "INVALID_REQUEST", "message": f"expected {{id, name}}: {exc}"},
                    status=400)
            self.set_name(identity, name)
            return web.json_response({"id": identity})

        return web.post("/sim/payees", set_payee)


@final
@dataclass(slots=True)
class PayoutRow:
    """One payout as the rail keeps it."""

    status: str  # as the rail names it
    amount: int  # minor units asked for
    payee: str
    paid: int = 0  # minor units actually paid to the payee
    payouts: int = 0  # how many times money was paid: above 1 is a double payout


def payouts_snapshot(rows: Mapping[str, PayoutRow]) -> dict[str, object]:
    """The `payouts` part of `GET /sim/ledger`."""
    return {
        key: {"status": row.status, "paid": row.paid, "payouts": row.payouts,
              "amount": row.amount, "payee": row.payee}
        for key, row in rows.items()
    }
