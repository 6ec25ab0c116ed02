"""/v1/notify/{adapter}: a rail's asynchronous notification, verified by its adapter.

An unverifiable notification changes nothing and is answered as the rail expects for a
failure (so it resends); the sweeper's queries settle the payment regardless. A verified
one is matched and applied by `payments/notifications.py`.
"""

from __future__ import annotations

import logging

from aiohttp import web

from adapters.base import HttpResponse, NotificationKind, RailError
from router.api.common import services
from router.errors import not_found

routes = web.RouteTableDef()
log = logging.getLogger("payrouter.notify")


def _reply(response: HttpResponse) -> web.Response:
    return web.Response(status=response.status, body=response.body,
                        headers=dict(response.headers))


@routes.post("/v1/notify/{adapter}")
async def notify(request: web.Request) -> web.Response:
    svc = services(request)
    name = request.match_info["adapter"]
    adapter = await svc.rails.resolve(name)  # a rail, or a partner-mode instance
    if adapter is None:
        raise not_found("adapter")
    body = await request.read()
    try:
        note = adapter.verify_notification(request.headers, body)
    except RailError as err:
        log.warning("rejected a %s notification: %s", name, err.code)
        return _reply(adapter.notification_reply(False))
    if note.kind is NotificationKind.PAYOUT:
        accepted = await svc.social.payouts.on_notification(name, note)
    elif note.kind is NotificationKind.AUTHORIZATION:
        accepted = await svc.preauth.worker.on_notification(name, note)
    elif note.kind is NotificationKind.INVOICE:
        accepted = await svc.invoices.worker.on_notification(name, note)
    else:
        accepted = await svc.payments.notifications.apply(name, note)
    return _reply(adapter.notification_reply(accepted))

