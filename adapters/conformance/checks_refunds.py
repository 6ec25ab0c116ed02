"""Checks of refunds, and of the notifications a rail sends for payments and refunds."""

from __future__ import annotations

import uuid

from adapters.base import RailError, RailStatus, RefundQuery
from adapters.conformance.checks import (
    PAYER_CODE_SCENE,
    _describe,
    _is_definitive_refusal,
    check,
)
from adapters.conformance.env import RailEnv
from adapters.conformance.kit import ConformanceError, expect


@check("simulator", "refunds", "stateful")
async def check_refund_capped(env: RailEnv) -> None:
    """A partial refund succeeds; one above what remains is refused (definitive);
    the ledger's refunded never exceeds charged; a repeated refund is applied once."""
    total = 1000
    op = env.charge(PAYER_CODE_SCENE, code="1", amount=total)
    expect((await env.call(op)).status is RailStatus.SUCCEEDED, "the charge did not succeed")
    no = op.rail_order_no
    first = env.refund(no, 400, total)
    ok = await env.call(first)
    expect(ok.status in (RailStatus.SUCCEEDED, RailStatus.PROCESSING),
           f"partial refund gave {ok.status.value}")
    repeat = await env.outcome(first)
    expect(not _is_definitive_refusal(repeat), f"the same refund again gave {_describe(repeat)}")
    too_much = await env.outcome(env.refund(no, total - 400 + 1, total))
    expect(_is_definitive_refusal(too_much),
           f"a refund above the remaining {total - 400} gave {_describe(too_much)}")
    entry = await env.ledger_order(no)
    expect(entry is not None and entry["refunded"] <= entry["charged"] == total,
           f"ledger after refunds: {entry}")
    rest = env.refund(no, total - 400, total)
    rest_result = await env.call(rest)
    expect(rest_result.status in (RailStatus.SUCCEEDED, RailStatus.PROCESSING),
           f"refund of the rest gave {rest_result.status.value}")
    beyond = await env.outcome(env.refund(no, 1, total))
    expect(_is_definitive_refusal(beyond), f"a refund of a refunded order gave "
                                           f"{_describe(beyond)}")
    for refund in (first, rest):
        query = RefundQuery(no, refund.rail_refund_no)
        settled = await env.until(query, lambda r: r.status is not RailStatus.PROCESSING,
                                  "refund")
        expect(settled.status is RailStatus.SUCCEEDED, f"refund query: {settled.status.value}")
    entry = await env.ledger_order(no)
    expect(entry is not None and entry["refunded"] == entry["charged"] == total
           and entry["charges"] == 1, f"ledger after full refund: {entry}")
    missing = await env.call(RefundQuery(no, "rf" + uuid.uuid4().hex[:22]))
    expect(missing.status is RailStatus.NOT_FOUND,
           f"query of a refund never made gave {missing.status.value}")


def _tampered(body: bytes) -> list[bytes]:
    """Copies of `body` changed so slightly that only a signature can tell."""
    copies = [body[:-1], body + b" " if body.endswith(b"}") else body + b"&x=1"]
    for i in range(len(body) // 2, len(body)):
        if body[i : i + 1].isdigit():
            digit = b"1" if body[i : i + 1] != b"1" else b"2"
            copies.append(body[:i] + digit + body[i + 1 :])
            break
    return copies


@check("simulator", "notifications", "actions")
async def check_notifications(env: RailEnv) -> None:
    """A genuine notification verifies to the right Notification; tampered copies raise
    RailError; refund notifications name the refund."""
    scene = env.kit.waiting_scene
    op = env.charge(scene, amount=1500)
    await env.present(scene, await env.call(op))
    await env.payer_pays(op.rail_order_no)
    headers, body, note = await env.notification(
        lambda n: n.kind == "payment" and n.rail_order_no == op.rail_order_no, "payment")
    expect(note.result.status is RailStatus.SUCCEEDED,
           f"payment notification gave {note.result.status.value}")
    expect(note.result.amount in (None, 1500), f"notified amount {note.result.amount} != 1500")
    expect(note.rail_refund_no is None, "a payment notification names a refund")
    for copy in _tampered(body):
        try:
            forged = env.adapter.verify_notification(headers, copy)
        except RailError:
            continue
        raise ConformanceError(f"a tampered notification verified: {forged}")
    reply = env.adapter.notification_reply(True)
    expect(200 <= reply.status < 300, f"notification_reply(True) is HTTP {reply.status}")
    refund = env.refund(op.rail_order_no, 500, 1500)
    await env.call(refund)
    _, _, refund_note = await env.notification(
        lambda n: n.kind == "refund" and n.rail_order_no == op.rail_order_no, "refund")
    expect(refund_note.rail_refund_no == refund.rail_refund_no,
           f"refund notification names {refund_note.rail_refund_no}")
    expect(refund_note.result.status is RailStatus.SUCCEEDED,
           f"refund notification gave {refund_note.result.status.value}")
    # Every other genuine delivery (resends, duplicates) verifies too.
    await env.settled()
    while not env.receiver.queue.empty():
        env.adapter.verify_notification(*env.receiver.queue.get_nowait())
