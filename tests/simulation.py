"""Seeded simulation of payments, refunds, the sweeper, notifications and client retries.

One seed drives everything: which action runs next, what the model rail answers, when
the payer acts, which notification is delivered when. The router under test is the real
one (the payments package, the Sweeper, the Lua scripts on a real redis-server); only the rail is
a model. After every step the invariants are checked from Redis and the rail's ledger;
after the last step the simulation runs to quiescence and checks the settled ones.

Replay a failing seed exactly:

    python -m tests.simulation --seed 17 --steps 150 [--redis-url redis://...]

Determinism. The harness controls the three sources of non-determinism the router has:
  * the clock and ids: the router takes them from an injected `Clock` (router/clock.py);
    the simulation passes one that only it advances, whose ids come from a seeded
    generator, so ids, and with them the sweeper's claim order, repeat;
  * the rail: every rail decision is drawn from a generator keyed by (seed, operation,
    order, how many times that operation was asked), not from one shared stream, so the
    answers do not depend on how concurrent tasks interleave.
Redis's own clock still serves idempotency leases and rate limits (limits are set out of
reach here and leases are never outlived in simulated runs).

The model rail is an in-process adapter that follows the HTTP shape of a real rail:
`build` only describes the operation (pure), the rail's "network" (a fake aiohttp
session handed to the real RailClient) applies it to the ledger, and `parse` returns the
ledger's answer. Doing the work in `build` would be wrong for a rail with a ledger: the
router builds the charge *before* the store decides between "created" and "exists", so
a repeated request would charge an order that no payment owns.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import enum
import random
import string
import sys
import tempfile
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, cast

import aiohttp
import orjson

from adapters.base import (
    Action,
    ActionType,
    Adapter,
    Charge,
    Close,
    HttpRequest,
    HttpResponse,
    Notification,
    NotificationKind,
    Operation,
    Query,
    RailError,
    RailResult,
    RailStatus,
    Refund,
    RefundQuery,
    Reverse,
    Scene,
)
from router.domain import TRANSITIONS, UNSETTLED, Payment, RefundStatus, Status
from router.errors import RouterError
from router.merchants import Merchant
from router.ops.metrics import Metrics
from router.payments import Payments
from router.payments.numbers import payment_id_of
from router.rails.client import RailClient
from router.routing import HealthBook
from router.security import Secret
from router.settings import (
    IdempotencySettings,
    RailSettings,
    RateLimit,
    RedisSettings,
    Settings,
    SweeperSettings,
)
from router.store import keys
from router.store.link import open_link
from router.store.store import Store
from router.validation import PaymentRequest, RefundRequest
from router.workers.sweeper import Sweeper
from tests.redis_cluster import flush_all

RAILS = ("alpha", "beta")
START_MS = 1_700_000_000_000
SHARDS = 4
# A charge request is accepted by the rail at most this long after it was sent (rails
# refuse requests signed ~5 minutes earlier); below the sweeper's never_seen_s.
SIGNATURE_VALID_MS = 2_500

SWEEP = SweeperSettings(interval_s=0.05, first_check_s=2.0, query_every_s=0.25,
                        confirm_window_s=1.5, unknown_window_s=1.5, never_seen_s=3.0,
                        order_expiry_s=20.0, lease_s=2.0, batch=500)
TERMINAL = frozenset({Status.FAILED, Status.CLOSED, Status.REFUNDED})
PAID = frozenset({Status.SUCCEEDED, Status.PARTIALLY_REFUNDED, Status.REFUNDED})


def _closure() -> dict[Status, frozenset[Status]]:
    """Statuses reachable from each status (several moves can happen within one step)."""
    reach: dict[Status, frozenset[Status]] = {}
    for start in Status:
        seen: set[Status] = set()
        todo = [start]
        while todo:
            for nxt in sorted(TRANSITIONS[todo.pop()]):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        reach[start] = frozenset(seen)
    return reach


REACHABLE = _closure()


class SimulationFailure(AssertionError):
    pass


# =========================================================================== clock, ids
class Clock:
    """The router's clock and id source (router.clock.Clock), advanced only by the
    simulation; ids come from a generator seeded by the run."""

    def __init__(self, seed: int) -> None:
        self.ms = START_MS
        self._ids = random.Random(f"ids|{seed}")

    def now_ms(self) -> int:
        return self.ms

    def token(self, length: int) -> str:
        return "".join(self._ids.choice(_ID_ALPHABET) for _ in range(length))


_ID_ALPHABET = string.ascii_letters + string.digits


# =========================================================================== model rail
class OrderState(enum.Enum):
    PENDING = "pending"  # open: the payer has not paid yet
    PAID = "paid"
    FAILED = "failed"  # declined
    CLOSED = "closed"  # closed (by us or the payer) with no money
    REVERSED = "reversed"  # was paid, money returned by a reversal


@dataclass
class RailRefund:
    amount: int
    status: str  # processing | succeeded | failed


@dataclass
class Order:
    rail_order_no: str
    amount: int
    scene: str
    state: OrderState
    charged: int = 0
    refunded: int = 0
    charges: int = 0  # times money was taken: never more than 1
    refunds: dict[str, RailRefund] = field(default_factory=dict)

    @property
    def held(self) -> int:
        return self.charged - self.refunded


@dataclass
class LateCharge:
    land_ms: int
    expires_ms: int
    op: Charge
    pay: bool


class Timeout(Exception):
    """The rail's network lost the answer (RailClient turns it into RAIL_TIMEOUT)."""


class ModelRail:
    """One rail with its ledger. Deterministic for a seed, whatever the interleaving."""

    def __init__(self, name: str, seed: int, clock: Clock,
                 notes: list[tuple[tuple[str, str, int], str, Notification]]) -> None:
        self.name = name
        self.seed = seed
        self.clock = clock
        self.orders: dict[str, Order] = {}
        self.late: list[LateCharge] = []
        self.notes = notes  # shared with the simulation: (sort key, rail, notification)
        self._draws: dict[str, int] = {}
        self._note_seq: dict[str, int] = {}
        self.log: list[str] = []

    def rng(self, *parts: str) -> random.Random:
        key = "|".join(parts)
        n = self._draws.get(key, 0)
        self._draws[key] = n + 1
        return random.Random(f"{self.seed}|{self.name}|{key}|{n}")

    # ----------------------------------------------------------------- notifications
    def _notify(self, rng: random.Random, kind: str, order: Order, result: RailResult,
                refund_no: str | None = None, *, p: float = 0.6) -> None:
        if rng.random() >= p:
            return
        copies = 2 if rng.random() < 0.25 else 1
        note = Notification(NotificationKind(kind), order.rail_order_no, result, refund_no)
        for _ in range(copies):
            key = f"{order.rail_order_no}/{refund_no or ''}"
            n = self._note_seq.get(key, 0)
            self._note_seq[key] = n + 1
            self.notes.append(((order.rail_order_no, refund_no or "", n), self.name, note))

    def _answer(self, order: Order) -> RailResult:
        match order.state:
            case OrderState.PENDING:
                if order.scene == "quickpay":
                    return RailResult(RailStatus.PROCESSING)
                return RailResult(RailStatus.REQUIRES_ACTION, action=Action(
                    ActionType.QR_CODE, {"code_url": f"model://{order.rail_order_no}"}))
            case OrderState.PAID:
                return RailResult(RailStatus.SUCCEEDED, rail_reference="t" + order.rail_order_no,
                                  amount=order.amount, refunded_amount=order.refunded)
            case OrderState.FAILED:
                return RailResult(RailStatus.FAILED, failure_code="DECLINED",
                                  failure_message="Declined by the model rail.")
            case OrderState.CLOSED | OrderState.REVERSED:
                return RailResult(RailStatus.CLOSED)

    def _pay(self, order: Order) -> None:
        order.state = OrderState.PAID
        order.charged = order.amount
        order.charges += 1

    # ----------------------------------------------------------------- operations
    def execute(self, op: Operation) -> RailResult:
        """Apply `op` to the ledger; raises Timeout (unknown) or RailError (definitive)."""
        self.land_due()
        match op:
            case Charge():
                return self._charge(op)
            case Query():
                return self._query(op)
            case Close() | Reverse():
                return self._close(op)
            case Refund():
                return self._refund(op)
            case RefundQuery():
                return self._refund_query(op)

    def _charge(self, op: Charge, *, late: LateCharge | None = None) -> RailResult:
        no = op.rail_order_no
        rng = self.rng("charge", no)
        existing = self.orders.get(no)
        if existing is not None:  # the rail dedupes on rail_order_no
            if late is None and rng.random() < 0.1:
                raise Timeout
            return self._answer(existing)
        if late is not None:
            order = Order(no, op.amount, op.scene, OrderState.PENDING)
            self.orders[no] = order
            if late.pay:
                self._pay(order)
            self.log.append(f"late charge landed {no} pay={late.pay}")
            self._notify(rng, "payment", order, self._answer(order))
            return self._answer(order)
        u = rng.random()
        if u < 0.05:
            # Never sent: the router may fail over to another rail.
            raise RailError("RAIL_UNREACHABLE", "cannot connect to the model rail",
                            definitive=True)
        order = Order(no, op.amount, op.scene, OrderState.PENDING)
        if u < 0.40:
            self.orders[no] = order
            self._pay(order)
            self._notify(rng, "payment", order, self._answer(order), p=0.3)
            return self._answer(order)
        if u < 0.47:
            order.state = OrderState.FAILED
            self.orders[no] = order
            return self._answer(order)
        if u < 0.50:
            order.state = OrderState.FAILED
            self.orders[no] = order
            raise RailError("INSUFFICIENT_FUNDS", "declined", definitive=True)
        if u < 0.60:  # charged, but the answer is lost
            self.orders[no] = order
            self._pay(order)
            self._notify(rng, "payment", order, self._answer(order))
            raise Timeout
        if u < 0.66:  # lost on the way: never arrives
            raise Timeout
        if u < 0.72:  # delayed on the way: lands later, if still valid then
            now = self.clock.ms
            self.late.append(LateCharge(now + rng.randrange(100, 3_000),
                                        now + SIGNATURE_VALID_MS, op, rng.random() < 0.6))
            raise Timeout
        self.orders[no] = order  # the payer must still act (confirm / scan)
        if rng.random() < 0.2:  # a stale "still processing" news, delivered whenever
            self._notify(rng, "payment", order, self._answer(order), p=1.0)
        if u < 0.78:
            raise Timeout
        return self._answer(order)

    def _query(self, op: Query) -> RailResult:
        rng = self.rng("query", op.rail_order_no)
        if rng.random() < 0.05:
            raise Timeout
        order = self.orders.get(op.rail_order_no)
        return RailResult(RailStatus.NOT_FOUND) if order is None else self._answer(order)

    def _close(self, op: Close | Reverse) -> RailResult:
        no = op.rail_order_no
        rng = self.rng(type(op).__name__, no)
        if rng.random() < 0.05:
            raise Timeout  # before applying
        order = self.orders.get(no)
        if order is None:
            # Closing an order it never saw: the rail records it closed, so the lost
            # charge can no longer land.
            order = self.orders[no] = Order(no, 0, "", OrderState.CLOSED)
        elif order.state is OrderState.PAID:
            if isinstance(op, Close):
                raise RailError("ORDER_PAID", "the order is paid", definitive=True)
            if order.refunds:
                raise RailError("ORDER_REFUNDED", "a refunded order cannot be reversed",
                                definitive=True)
            order.refunded = order.charged
            order.state = OrderState.REVERSED
        elif order.state is OrderState.PENDING:
            order.state = OrderState.CLOSED
        if rng.random() < 0.05:
            raise Timeout  # after applying
        return RailResult(RailStatus.CLOSED)

    def _refund(self, op: Refund) -> RailResult:
        rng = self.rng("refund", op.rail_refund_no)
        order = self.orders.get(op.rail_order_no)
        if order is None or order.state is not OrderState.PAID:
            raise RailError("ORDER_NOT_PAID", "nothing to refund", definitive=True)
        existing = order.refunds.get(op.rail_refund_no)
        if existing is not None:  # deduped on rail_refund_no
            if rng.random() < 0.1:
                raise Timeout
            return self._refund_answer(existing)
        if op.total != order.amount:
            raise RailError("TOTAL_MISMATCH", "total differs from the order", definitive=True)
        taken = sum(r.amount for r in order.refunds.values() if r.status != "failed")
        if taken + op.amount > order.charged:
            raise RailError("REFUND_EXCEEDS", "more than paid", definitive=True)
        u = rng.random()
        if u < 0.08:
            raise Timeout  # lost: never arrives
        refund = RailRefund(op.amount, "processing")
        order.refunds[op.rail_refund_no] = refund
        if u < 0.65:
            self._settle_refund(rng, order, op.rail_refund_no, refund, True, p=0.3)
            return self._refund_answer(refund)
        if u < 0.72:
            self._settle_refund(rng, order, op.rail_refund_no, refund, False, p=0.3)
            return self._refund_answer(refund)
        if u < 0.82:
            self._settle_refund(rng, order, op.rail_refund_no, refund, True)
            raise Timeout  # applied, answer lost
        if u < 0.90:
            raise Timeout  # accepted, in progress, answer lost
        return self._refund_answer(refund)  # in progress

    def _settle_refund(self, rng: random.Random, order: Order, refund_no: str,
                       refund: RailRefund, ok: bool, *, p: float = 0.6) -> None:
        refund.status = "succeeded" if ok else "failed"
        if ok:
            order.refunded += refund.amount
        self._notify(rng, "refund", order, self._refund_answer(refund), refund_no, p=p)

    def _refund_answer(self, refund: RailRefund) -> RailResult:
        return RailResult({"processing": RailStatus.PROCESSING,
                           "succeeded": RailStatus.SUCCEEDED,
                           "failed": RailStatus.FAILED}[refund.status])

    def _refund_query(self, op: RefundQuery) -> RailResult:
        rng = self.rng("refund_query", op.rail_refund_no)
        if rng.random() < 0.05:
            raise Timeout
        order = self.orders.get(op.rail_order_no)
        refund = order.refunds.get(op.rail_refund_no) if order else None
        return RailResult(RailStatus.NOT_FOUND) if refund is None else self._refund_answer(refund)

    # ----------------------------------------------------------------- the rail's own time
    def land_due(self, *, everything: bool = False) -> None:
        """Delayed charge requests reach the rail at their time; one arriving after its
        signature expired is refused (nothing charged)."""
        keep: list[LateCharge] = []
        for late in self.late:
            if late.land_ms <= self.clock.ms or everything:
                if late.land_ms <= late.expires_ms and late.op.rail_order_no not in self.orders:
                    self._charge(late.op, late=late)
            else:
                keep.append(late)
        self.late = keep

    def tick(self, rng: random.Random, *, everything: bool = False) -> None:
        """What happens at the rail without the router: a payer pays or walks away, a
        refund in progress completes."""
        self.land_due(everything=everything)
        pending = [o for o in sorted(self.orders.values(), key=lambda o: o.rail_order_no)
                   if o.state is OrderState.PENDING]
        if pending and not everything:
            order = rng.choice(pending)
            orng = self.rng("payer", order.rail_order_no)
            if orng.random() < 0.6:
                self._pay(order)
            else:
                order.state = OrderState.CLOSED  # the payer cancelled
            self.log.append(f"payer acted on {order.rail_order_no}: {order.state.value}")
            self._notify(orng, "payment", order, self._answer(order))
        in_progress = [(o, no, r) for o in sorted(self.orders.values(),
                                                  key=lambda o: o.rail_order_no)
                       for no, r in sorted(o.refunds.items()) if r.status == "processing"]
        chosen = in_progress if everything else (
            [rng.choice(in_progress)] if in_progress else [])
        for order, no, refund in chosen:
            rrng = self.rng("refund_done", no)
            self._settle_refund(rrng, order, no, refund, rrng.random() < 0.8)


class ModelAdapter:
    """The Adapter of a ModelRail: pure; the work happens when the core sends."""

    def __init__(self, rail: ModelRail) -> None:
        self.rail = rail
        self._ops: dict[str, Operation] = {}
        self._outcomes: dict[str, RailResult | RailError] = {}
        self._n = 0

    @property
    def name(self) -> str:
        return self.rail.name

    @property
    def scenes(self) -> frozenset[str]:
        return frozenset({"quickpay", "native"})

    def build(self, op: Operation) -> HttpRequest | RailResult:
        self._n += 1
        op_id = f"{self._n}"
        self._ops[op_id] = op
        return HttpRequest("POST", f"model://{self.rail.name}/{type(op).__name__}",
                           {"x-op": op_id})

    def send(self, op_id: str) -> None:
        """The rail receives a request (called by the fake network)."""
        op = self._ops[op_id]
        try:
            self._outcomes[op_id] = self.rail.execute(op)
        except RailError as err:
            self._outcomes[op_id] = err

    def parse(self, op: Operation, response: HttpResponse) -> RailResult:
        outcome = self._outcomes.pop(response.headers["x-op"])
        if isinstance(outcome, RailError):
            raise outcome
        return outcome

    def verify_notification(self, headers: Mapping[str, str], body: bytes) -> Notification:
        raise RailError("NOT_HTTP", "notifications are delivered in-process", definitive=False)

    def notification_reply(self, accepted: bool) -> HttpResponse:
        return HttpResponse(200 if accepted else 500, {}, b"")


class _Response:
    def __init__(self, op_id: str) -> None:
        self.status = 200
        self.headers = {"x-op": op_id}

    async def read(self) -> bytes:
        return b""


class FakeNetwork:
    """Stands in for the aiohttp session the RailClient sends through: a request reaches
    the model rail; a lost answer is a TimeoutError, as aiohttp raises it."""

    def __init__(self, adapters: dict[str, ModelAdapter]) -> None:
        self.adapters = adapters

    def request(self, method: str, url: str, **kw: Any) -> _Call:
        return _Call(self.adapters[url.removeprefix("model://").split("/", 1)[0]],
                     kw["headers"]["x-op"])


class _Call:
    def __init__(self, adapter: ModelAdapter, op_id: str) -> None:
        self.adapter = adapter
        self.op_id = op_id

    async def __aenter__(self) -> _Response:
        try:
            self.adapter.send(self.op_id)
        except Timeout:
            raise TimeoutError from None
        return _Response(self.op_id)

    async def __aexit__(self, t: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        return None


# =========================================================================== simulation
@dataclass
class ClientRequest:
    req: PaymentRequest
    idem: tuple[str, str] | None


@dataclass
class Seen:
    status: Status
    version: int


class Simulation:
    def __init__(self, seed: int, steps: int, redis_url: str, *, verbose: bool = False) -> None:
        self.seed = seed
        self.steps = steps
        self.redis_url = redis_url
        self.verbose = verbose
        self.rng = random.Random(seed)
        self.clock = Clock(seed)
        self.notes: list[tuple[tuple[str, str, int], str, Notification]] = []
        self.rails = {name: ModelRail(name, seed, self.clock, self.notes) for name in RAILS}
        self.adapters = {name: ModelAdapter(rail) for name, rail in self.rails.items()}
        self.merchant = Merchant(id="mer_sim", name="Sim", shard=1,
                                 webhook_secret=Secret("whsec_sim"),
                                 rate_limit=RateLimit(1e9, 10**9),
                                 payer_limit=RateLimit(1e9, 10**9))
        self.requests: list[ClientRequest] = []
        self.otns: list[str] = []
        self.refund_nos: list[tuple[str, RefundRequest]] = []
        self.seen: dict[str, Seen] = {}
        self.seen_refunds: dict[str, RefundStatus] = {}
        self.step = 0
        self.action = ""
        self.trace: list[str] = []

    # ----------------------------------------------------------------- setup
    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        await flush_all(self.redis_url)
        settings = Settings(
            redis=RedisSettings(url=self.redis_url, shards=SHARDS),
            rails=tuple(RailSettings(name=n) for n in RAILS),
            idempotency=IdempotencySettings(lease_s=30.0),
            sweeper=SWEEP,
        )
        self.settings = settings
        link = open_link(self.redis_url, 5.0)
        metrics = Metrics()
        adapters = cast(dict[str, Adapter], dict(self.adapters))
        health = HealthBook(adapters, settings.routing.breaker)
        session = cast(aiohttp.ClientSession, FakeNetwork(self.adapters))
        rails = RailClient(session, adapters, {n: 1.0 for n in RAILS}, metrics, health)
        self.store = Store(link, shards=SHARDS, idem_ttl_s=settings.idempotency.ttl_s)
        self.payments = Payments.wire(self.store, rails, settings, metrics, self.clock)
        self.sweeper = Sweeper(self.store, self.payments, SWEEP, SHARDS, metrics, self.clock)
        try:
            yield
        finally:
            await link.aclose()

    def fail(self, message: str) -> SimulationFailure:
        return SimulationFailure(
            f"seed={self.seed} step={self.step} action={self.action}: {message}\n"
            f"replay: python -m tests.simulation --seed {self.seed} --steps {self.steps}\n"
            f"last actions:\n  " + "\n  ".join(self.trace[-12:]))

    def note(self, text: str) -> None:
        self.trace.append(f"[{self.step} t+{self.clock.ms - START_MS}ms] {text}")
        if self.verbose:
            print(self.trace[-1])

    # ----------------------------------------------------------------- actions
    def _new_request(self) -> ClientRequest:
        n = len(self.otns)
        otn = f"otn{n}"
        self.otns.append(otn)
        scene = self.rng.choice((Scene.QUICKPAY, Scene.QUICKPAY, Scene.NATIVE))
        payer = {"auth_code": f"1345678901234{n:05d}"} if scene == "quickpay" else {}
        req = PaymentRequest(amount=self.rng.choice((100, 250, 999, 1000, 5000)),
                             currency="CNY", out_trade_no=otn, description="sim",
                             scene=scene, method=None, payer=payer, notify_url=None,
                             metadata={})
        idem = (f"idem{n}", f"h{n}") if self.rng.random() < 0.5 else None
        return ClientRequest(req, idem)

    async def act_create(self, retry: bool) -> None:
        if retry and self.requests:
            request = self.rng.choice(self.requests)
            kind = "retry"
        else:
            request = self._new_request()
            self.requests.append(request)
            kind = "create"
        first = self.rng.choice(RAILS)
        candidates = [first, *[r for r in RAILS if r != first]]
        try:
            reply = await self.payments.creator.create(self.merchant, request.req, first,
                                             {"candidates": candidates}, request.idem)
            body = orjson.loads(reply.body)
            got = body.get("status") or body.get("error", {}).get("code")
            self.note(f"{kind} {request.req.out_trade_no} on {first} -> {reply.status} {got}")
        except RouterError as err:
            self.note(f"{kind} {request.req.out_trade_no} -> {err.http_status} {err.code}")

    async def act_sweep(self) -> None:
        n = await self.sweeper.sweep_once()
        self.note(f"sweep examined {n}")

    async def act_deliver(self) -> None:
        if not self.notes:
            return
        self.notes.sort(key=lambda n: n[0])
        _, rail, note = self.notes.pop(self.rng.randrange(len(self.notes)))
        accepted = await self.payments.notifications.apply(rail, note)
        self.note(f"notify {note.kind} {note.rail_order_no} {note.rail_refund_no or ''} "
                  f"{note.result.status.value} accepted={accepted}")

    async def _payment(self) -> Payment | None:
        if not self.otns:
            return None
        otn = self.rng.choice(self.otns)
        return await self.store.payments.by_out_trade_no(self.merchant.shard,
                                                         self.merchant.id, otn)

    async def _one_refund(self, payment: Payment) -> None:
        if self.refund_nos and self.rng.random() < 0.15:
            orn, req = self.rng.choice(self.refund_nos)  # a client retrying a refund
        else:
            amount = self.rng.choice((1, payment.amount // 3, payment.amount // 2,
                                      payment.amount, payment.amount + 1)) or 1
            orn = f"orn{len(self.refund_nos)}"
            req = RefundRequest(amount=amount, out_refund_no=orn, reason=None)
            self.refund_nos.append((orn, req))
        try:
            reply = await self.payments.refunds.create(payment, req)
            body = orjson.loads(reply.body)
            self.note(f"refund {orn} {req.amount} of {payment.id} -> {reply.status} "
                      f"{body.get('status')}")
        except RouterError as err:
            self.note(f"refund {orn} {req.amount} of {payment.id} -> {err.code}")

    async def act_refund(self, pair: bool) -> None:
        payment = await self._payment()
        if payment is None:
            return
        if pair:
            await asyncio.gather(self._one_refund(payment), self._one_refund(payment))
        else:
            await self._one_refund(payment)

    async def act_close(self) -> None:
        payment = await self._payment()
        if payment is None:
            return
        try:
            reply = await self.payments.settler.close(payment)
            self.note(f"close {payment.id} -> {reply.status}")
        except RouterError as err:
            self.note(f"close {payment.id} -> {err.code}")

    def act_tick(self) -> None:
        for name in RAILS:
            self.rails[name].tick(self.rng)
        self.note("rail tick")

    def act_advance(self) -> None:
        delta = self.rng.choice((50, 100, 250, 500, 1000, 2000))
        self.clock.ms += delta
        for rail in self.rails.values():
            rail.land_due()
        self.note(f"advance {delta}ms")

    async def one_step(self) -> None:
        actions: list[tuple[str, int, Callable[[], Any]]] = [
            ("create", 22, lambda: self.act_create(False)),
            ("retry", 8, lambda: self.act_create(True)),
            ("sweep", 16, self.act_sweep),
            ("deliver", 14, self.act_deliver),
            ("refund", 12, lambda: self.act_refund(False)),
            ("refund_pair", 4, lambda: self.act_refund(True)),
            ("close", 5, self.act_close),
            ("tick", 9, self.act_tick),
            ("advance", 10, self.act_advance),
        ]
        name, _, run = self.rng.choices(actions, weights=[w for _, w, _ in actions])[0]
        self.action = name
        if self.rng.random() < 0.5:
            self.clock.ms += self.rng.randrange(0, 300)
        for rail in self.rails.values():
            rail.land_due()  # whatever reached the rail by now, before anyone looks
        result = run()
        if asyncio.iscoroutine(result):
            await result

    # ----------------------------------------------------------------- invariants
    async def _snapshot(self) -> list[tuple[Payment, dict[bytes, bytes], list[Any]]]:
        async def one(otn: str) -> tuple[Payment, dict[bytes, bytes], list[Any]] | None:
            found = await self.store.payments.by_out_trade_no(self.merchant.shard,
                                                               self.merchant.id, otn)
            if found is None:
                return None
            pid = found.id
            flat, refunds = await asyncio.gather(
                self.store.link.call("HGETALL", keys.payment(self.merchant.shard, pid)),
                self.store.refunds.of_payment(pid))
            raw = dict(zip(flat[::2], flat[1::2], strict=True))
            if not raw:
                raise self.fail(f"out_trade_no {otn} points at missing {pid}")
            return Payment.from_hash(raw), raw, refunds

        rows = await asyncio.gather(*(one(otn) for otn in self.otns))
        return [row for row in rows if row is not None]

    def _order(self, rail: str, no: str) -> Order | None:
        return self.rails[rail].orders.get(no) if rail in self.rails else None

    async def check(self, *, quiescent: bool = False) -> None:
        # -- the rail's own ledger
        for rail in self.rails.values():
            for order in rail.orders.values():
                if order.charges > 1:
                    raise self.fail(f"{order.rail_order_no} charged {order.charges} times")
                if order.charged not in (0, order.amount):
                    raise self.fail(f"{order.rail_order_no} charged {order.charged}")
                if not 0 <= order.refunded <= order.charged:
                    raise self.fail(f"{order.rail_order_no} refunded {order.refunded} of "
                                    f"{order.charged}")
                taken = sum(r.amount for r in order.refunds.values() if r.status != "failed")
                if order.state is not OrderState.REVERSED and taken > order.charged:
                    raise self.fail(f"{order.rail_order_no} has {taken} in refunds of "
                                    f"{order.charged}")
        owned: set[tuple[str, str]] = set()
        rail_held_total = 0
        router_held_total = 0
        for payment, raw, refunds in await self._snapshot():
            pid = payment.id
            for a in payment.rail.attempts:
                owned.add((a.rail, a.rail_order_no))
            reserved = int(raw.get(b"rr", b"0"))
            refunded = payment.refunded_amount
            ok_sum = sum(r.amount for r in refunds if r.status is RefundStatus.SUCCEEDED)
            live_sum = ok_sum + sum(r.amount for r in refunds
                                    if r.status is RefundStatus.PROCESSING)
            if refunded != ok_sum:
                raise self.fail(f"{pid}: refunded_amount {refunded} != succeeded refunds "
                                f"{ok_sum}")
            if reserved != live_sum:
                raise self.fail(f"{pid}: reserved {reserved} != processing+succeeded {live_sum}")
            if not refunded <= reserved <= payment.amount:
                raise self.fail(f"{pid}: refunded {refunded} reserved {reserved} amount "
                                f"{payment.amount}")
            # -- status history
            before = self.seen.get(pid)
            if before is not None:
                if before.status in TERMINAL and payment.status is not before.status:
                    raise self.fail(f"{pid}: terminal {before.status} became {payment.status}")
                if (payment.status is not before.status
                        and payment.status not in REACHABLE[before.status]):
                    raise self.fail(f"{pid}: {before.status} -> {payment.status} is not a "
                                    f"transition")
                if payment.version < before.version:
                    raise self.fail(f"{pid}: version went back {before.version} -> "
                                    f"{payment.version}")
            self.seen[pid] = Seen(payment.status, payment.version)
            for r in refunds:
                prev = self.seen_refunds.get(r.id)
                if prev not in (None, RefundStatus.PROCESSING) and r.status is not prev:
                    raise self.fail(f"refund {r.id}: {prev} became {r.status}")
                self.seen_refunds[r.id] = r.status
            # -- status against the rail
            expect = {Status.SUCCEEDED: refunded == 0,
                      Status.PARTIALLY_REFUNDED: 0 < refunded < payment.amount,
                      Status.REFUNDED: refunded == payment.amount}
            if payment.status in expect and not expect[payment.status]:
                raise self.fail(f"{pid}: {payment.status} with refunded {refunded} of "
                                f"{payment.amount}")
            orders = [(a, self._order(a.rail, a.rail_order_no)) for a in payment.rail.attempts]
            charged = [(a, o) for a, o in orders if o is not None and o.charged]
            held = sum(o.held for _, o in orders if o is not None)
            if len(charged) > 1:
                raise self.fail(f"{pid}: money taken on {len(charged)} attempts")
            if payment.status in PAID:
                if len(charged) != 1 or charged[0][0] is not payment.rail.current:
                    raise self.fail(f"{pid}: {payment.status} but the rail holds money for "
                                    f"{[a.rail_order_no for a, _ in charged]}")
                order = charged[0][1]
                rail_ok = sum(r.amount for r in order.refunds.values()
                              if r.status == "succeeded")
                rail_live = rail_ok + sum(r.amount for r in order.refunds.values()
                                          if r.status == "processing")
                if not refunded <= rail_ok or rail_live > reserved:
                    raise self.fail(f"{pid}: router refunded {refunded} reserved {reserved}, "
                                    f"rail refunded {rail_ok} (+in progress {rail_live})")
                if quiescent and rail_ok != refunded:
                    raise self.fail(f"{pid}: router refunded {refunded}, rail {rail_ok}")
                router_held_total += payment.amount - refunded
            elif payment.status in (Status.FAILED, Status.CLOSED):
                if held:
                    raise self.fail(f"{pid}: {payment.status} but the rail holds {held}")
            else:
                for a, _ in charged:
                    if a is not payment.rail.current:
                        raise self.fail(f"{pid}: money on a superseded attempt {a.rail_order_no}")
            rail_held_total += held
            # -- liveness: unsettled work stays on the sweeper's list
            due = keys.due(self.merchant.shard)
            if payment.status in UNSETTLED and await self.store.link.call(
                    "ZSCORE", due, f"p:{pid}") is None:
                raise self.fail(f"{pid}: {payment.status} but not on the sweeper's list")
            for r in refunds:
                if r.status is RefundStatus.PROCESSING and await self.store.link.call(
                        "ZSCORE", due, f"r:{r.id}") is None:
                    raise self.fail(f"refund {r.id} processing but not on the sweeper's list")
            if quiescent:
                if payment.status in UNSETTLED:
                    raise self.fail(f"{pid}: still {payment.status} at quiescence")
                if any(r.status is RefundStatus.PROCESSING for r in refunds):
                    raise self.fail(f"{pid}: a refund still processing at quiescence")
        for rail in self.rails.values():
            for no, order in rail.orders.items():
                if (rail.name, no) not in owned and order.held:
                    raise self.fail(f"rail {rail.name} holds {order.held} for {no}, which "
                                    f"no payment owns (payment {payment_id_of(no)})")
        if quiescent and rail_held_total != router_held_total:
            raise self.fail(f"money: rail holds {rail_held_total}, router accounts for "
                            f"{router_held_total}")

    # ----------------------------------------------------------------- run
    async def settle(self) -> None:
        """Quiescence: no new requests; the rail finishes what it has in flight, every
        notification is delivered, time passes and the sweeper runs until nothing is due."""
        self.action = "settle"
        for rail in self.rails.values():
            rail.tick(self.rng, everything=True)
        for _ in range(80):
            while self.notes:
                await self.act_deliver()
            self.clock.ms += 5_000
            await self.act_sweep()
            for rail in self.rails.values():
                rail.tick(self.rng, everything=True)
            snapshot = await self._snapshot()
            if not self.notes and all(
                    p.status not in UNSETTLED
                    and all(r.status is not RefundStatus.PROCESSING for r in refunds)
                    for p, _, refunds in snapshot):
                break

    async def run(self) -> list[str]:
        async with self.running():
            for step in range(1, self.steps + 1):
                self.step = step
                await self.one_step()
                await self.check()
            self.step = self.steps + 1
            await self.settle()
            await self.check(quiescent=True)
        return self.trace


async def simulate(seed: int, steps: int, redis_url: str, *, verbose: bool = False
                   ) -> list[str]:
    return await Simulation(seed, steps, redis_url, verbose=verbose).run()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, action="append",
                        help="seed to run (repeatable; default 0..19)")
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--redis-url", help="a Redis to flush and use (default: embedded)")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every action")
    args = parser.parse_args(argv)
    seeds = args.seed if args.seed is not None else list(range(20))

    async def go(url: str) -> int:
        failed = 0
        for seed in seeds:
            try:
                trace = await simulate(seed, args.steps, url, verbose=args.verbose)
                print(f"seed {seed}: ok ({len(trace)} actions)")
            except SimulationFailure as err:
                failed += 1
                print(err, file=sys.stderr)
        return 1 if failed else 0

    if args.redis_url:
        return asyncio.run(go(args.redis_url))
    from router.sandbox.embedded import EmbeddedRedis

    with tempfile.TemporaryDirectory() as tmp:
        server = EmbeddedRedis(Path(tmp))
        server.start()
        try:
            return asyncio.run(go(server.url))
        finally:
            server.stop()


if __name__ == "__main__":
    raise SystemExit(main())
