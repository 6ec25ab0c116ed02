"""`payrouter listen`: a small webhook receiver that prints and verifies events.

For trying the sandbox (and for merchants to see what a delivery looks like): it checks
the `Payrouter-Signature` header with the webhook secret and prints each event.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from aiohttp import web

from router.security import verify_webhook_signature


def listener_app(secret_source: Callable[[], str | None]) -> web.Application:
    """`secret_source` is asked on every delivery, so a secret written later is used."""

    async def receive(request: web.Request) -> web.Response:
        body = await request.read()
        secret = secret_source()
        header = request.headers.get("Payrouter-Signature", "")
        if secret is None:
            verdict = "signature not checked (no secret given)"
        elif verify_webhook_signature(secret, header, body, now=int(time.time())):
            verdict = "signature OK"
        else:
            print(f"REJECTED {request.path}: bad signature", flush=True)
            return web.Response(status=400, text="bad signature")
        try:
            event = json.loads(body)
            data = event.get("data", {})
            line = (f"{event.get('type')} {event.get('id')} "
                    f"{data.get('id')} status={data.get('status')} amount={data.get('amount')}")
        except ValueError:
            line = f"(not JSON) {body[:200]!r}"
        print(f"{line}  [{verdict}]", flush=True)
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/{tail:.*}", receive)
    return app
