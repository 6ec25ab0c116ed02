"""/v1/notify/{adapter}: a rail's asynchronous notification, verified by its adapter.

An unverifiable notification changes nothing and is answered as the rail expects for a
failure (so it resends); the sweeper's queries settle the payment regardless. A
verified one goes through the same compare-and-set as every other transition, so
duplicates and late arrivals are harmless.
"""

from __future__ import annotations

import logging

from aiohttp import web

from adapters.base import HttpResponse, Notification, RailError, RailStatus
from router.api.common import services
from router.engine import payment_id_of
from router.errors import not_found
from router.refunds import refund_id_of
from router.services import Services

routes = web.RouteTableDef()
log = logging.getLogger("payrouter.notify")


def _reply(response: HttpResponse) -> web.Response:
    return web.Response(status=response.status, body=response.body,
                        headers=dict(response.headers))


@routes.post("/v1/notify/{adapter}")
async def notify(request: web.Request) -> web.Response:
    svc = services(request)
    name = request.match_info["adapter"]
    adapter = svc.adapters.get(name)
    if adapter is None:
        raise not_found("adapter")
    body = await request.read()
    try:
        note = adapter.verify_notification(request.headers, body)
    except RailError as err:
        log.warning("rejected a %s notification: %s", name, err.code)
        return _reply(adapter.notification_reply(False))
    accepted = await _apply(svc, name, note)
    return _reply(adapter.notification_reply(accepted))


async def _apply(svc: Services, rail: str, note: Notification) -> bool:
    """Apply a verified notification; False when it matches none of our records."""
    payment = await svc.store.load_payment(payment_id_of(note.rail_order_no))
    attempt_rails = {a.rail_order_no: a.rail for a in payment.rail.attempts} if payment else {}
    if payment is None or attempt_rails.get(note.rail_order_no) != rail:
        log.warning("a %s notification names no payment of ours", rail)
        return False
    if note.kind == "refund":
        refund = await svc.store.load_refund(refund_id_of(note.rail_refund_no or ""))
        if refund is None or refund.payment_id != payment.id:
            return False
        await svc.refunds.apply(refund, note.result, payment.notify_url)
        return True
    if (note.rail_order_no != payment.rail.current.rail_order_no
            and note.result.status is not RailStatus.SUCCEEDED):
        # News of an attempt the router has moved on from (failed over, handed over):
        # only money taken would matter, and closing it was confirmed by the rail.
        return True
    if note.result.amount is not None and note.result.amount != payment.amount:
        log.error("a %s notification for %s reports amount %s, not %s; ignored", rail,
                  payment.id, note.result.amount, payment.amount)
        return False
    await svc.engine.apply(payment, note.result)
    return True
