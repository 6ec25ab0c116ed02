"""What a rail's word changes in a payment's rail state, and what it proves."""

from __future__ import annotations

from collections.abc import Callable
from typing import assert_never

from adapters.base import RailError, RailResult, RailStatus
from router.domain import Payment, RailState, Status

Mutation = Callable[[RailState], None]


def status_of(result: RailResult) -> Status | None:
    """The payment status a rail result proves, or None when it proves nothing."""
    match result.status:
        case RailStatus.REQUIRES_ACTION:
            return Status.REQUIRES_ACTION
        case RailStatus.PROCESSING:
            return Status.PROCESSING
        case RailStatus.SUCCEEDED:
            return Status.SUCCEEDED
        case RailStatus.FAILED:
            return Status.FAILED
        case RailStatus.CLOSED:
            return Status.CLOSED
        case RailStatus.NOT_FOUND:
            return None
        case _:
            assert_never(result.status)


def record_result(result: RailResult) -> Mutation:
    def mutate(state: RailState) -> None:
        if result.action is not None:
            state.action = result.action.to_json()
        if result.rail_reference:
            state.rail_reference = result.rail_reference
        if result.payer_amount is not None:
            paid = result.payer_amount
            state.fx = {
                "payer_amount": {"amount": paid.amount, "currency": paid.currency},
                "exchange_rate": {"rate": paid.rate.rate, "from": paid.rate.base,
                                  "to": paid.rate.quote, "source": paid.rate.source},
            }
        if result.status is RailStatus.FAILED:
            state.failure = {
                "code": result.failure_code or "rail_refused",
                "message": result.failure_message or "The rail refused the payment.",
            }
    return mutate


def record_charge_answer(result: RailResult) -> Mutation:
    """The answer to a charge: recorded, and the charge is no longer unanswered."""
    record = record_result(result)

    def mutate(state: RailState) -> None:
        record(state)
        state.unanswered = False
    return mutate


def record_error(err: RailError) -> Mutation:
    def mutate(state: RailState) -> None:
        state.failure = {"code": err.code, "message": err.message}
    return mutate


def count_check(state: RailState) -> None:
    state.checks += 1


def charge_unanswered(state: RailState) -> None:
    """The charge was sent and its answer never came: a retry of the create re-sends it."""
    state.checks += 1
    state.unanswered = True


def mark_closing(state: RailState) -> None:
    state.closing = True


def clear_closing(state: RailState) -> None:
    state.closing = False


def reversing(current: Payment, status: Status) -> bool:
    """The router is reversing this charge (marked before the reversal was sent): a
    "paid" learnt now — the request's late answer, a query, a notification — may be
    undone by the reversal in flight, and settling on it would report paid what the payer
    gets back. The reversal's own answer decides; a reversal the rail refuses clears the
    mark (`Settler.reversal_refused`)."""
    return (status is Status.SUCCEEDED and current.status is Status.PROCESSING
            and current.rail.closing)
