"""Payments and refunds: the domain's rules, one concern per module.

    create.py         admission, the first charge, failover, the re-drive of a lost answer
    transitions.py    the compare-and-set of every change (with its event and due time)
    settle.py         the rail's word applied; queries, closes and reversals
    handover.py       an unpaid payment continued in another wallet
    notifications.py  a rail's notification matched to its attempt or refund
    refunds.py        reserve against the amount paid, send, settle
    replies.py        what a request is answered: the one table of refusals to HTTP
    mutations.py, charges.py, numbers.py   the small shared pieces

`Payments` wires them for one gateway process; handlers and workers use its parts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import final

from router.clock import Clock
from router.ops.metrics import Metrics
from router.payments.create import Creator
from router.payments.handover import HandOver
from router.payments.notifications import Notifications
from router.payments.refunds import Refunds
from router.payments.settle import Settler
from router.payments.transitions import Transitions
from router.rails.client import RailClient
from router.settings import Settings
from router.store.store import Store


@final
@dataclass(frozen=True, slots=True)
class Payments:
    transitions: Transitions
    settler: Settler
    creator: Creator
    handover: HandOver
    refunds: Refunds
    notifications: Notifications

    @classmethod
    def wire(cls, store: Store, rails: RailClient, settings: Settings, metrics: Metrics,
             clock: Clock) -> Payments:
        transitions = Transitions(store, settings, metrics, clock)
        settler = Settler(transitions, rails, settings, clock)
        creator = Creator(store, transitions, settler, rails, settings, metrics, clock)
        refunds = Refunds(store, rails, settings, clock)
        return cls(
            transitions=transitions,
            settler=settler,
            creator=creator,
            handover=HandOver(creator, settler, transitions, rails, settings),
            refunds=refunds,
            notifications=Notifications(store, settler, refunds),
        )
