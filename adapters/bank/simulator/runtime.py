"""The bank simulator's event-loop side: request checks, signed answers and notifications."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Mapping
from typing import final

from aiohttp import web

from adapters.bank import protocol
from adapters.bank.protocol import BankCredentials
from adapters.bank.simulator.ledger import Ledger
from adapters.bank.simulator.transfers import Transfers
from adapters.simkit.delivery import Delivery
from adapters.simkit.payees import Payees
from adapters.simkit.replies import Reply, dump_json, error
from adapters.simkit.runtime import SimulatorOptions
from adapters.simkit.signed_api import Refusals, SignedRuntime

log = logging.getLogger(__name__)

# Delays before the 2nd..10th notification attempts (× time_scale).
NOTIFY_RETRY_DELAYS = (15.0, 15.0, 30.0, 180.0, 600.0, 1800.0, 1800.0, 3600.0, 3600.0)
NOTIFY_TIMEOUT = 10.0

_REFUSALS = Refusals(
    unauthentic=error(401, "SIGNATURE_INVALID", "signature, merchant or timestamp rejected"),
    not_an_object=error(400, "INVALID_REQUEST", "body must be a JSON object"),
    system_error=error(500, "SYSTEM_ERROR", "temporary failure, nothing was done"),
    internal_error=error(500, "SYSTEM_ERROR", "internal error"),
)


@final
class Runtime(SignedRuntime):
    """Event-loop side of the simulator: timers, notifications, faults, randomness."""

    __slots__ = ("credentials", "ledger", "options", "payees", "transfers")

    def __init__(self, credentials: BankCredentials, options: SimulatorOptions) -> None:
        delivery = Delivery("bank", NOTIFY_RETRY_DELAYS, NOTIFY_TIMEOUT, log)
        super().__init__(options, delivery, _REFUSALS)
        self.credentials = credentials
        self.options = options
        self.ledger = Ledger(credentials.hmac_key, self.schedule, self.emit)
        self.payees = Payees()
        self.transfers = Transfers(self.schedule, self.emit, self.payees)

    def __repr__(self) -> str:
        return f"Runtime(merchant_id={self.credentials.merchant_id!r}, options={self.options!r})"

    # ----------------------------------------------------------------- notifications
    def emit(self, url: str, event: str, data: Mapping[str, object]) -> None:
        body = dump_json({"id": f"ntf_{uuid.uuid4().hex}", "event": event, "data": data})
        self.notify(url, body, self._signed_notification)

    def _signed_notification(self, body: bytes) -> tuple[bytes, dict[str, str]]:
        headers = protocol.sign_notification(self.credentials.hmac_key, body, now=time.time())
        headers["Content-Type"] = "application/json"
        return body, headers

    # ----------------------------------------------------------------- answers
    def authentic(self, request: web.Request, body: bytes) -> bool:
        headers = request.headers
        merchant = headers.get(protocol.H_MERCHANT)
        ts = headers.get(protocol.H_TIMESTAMP)
        nonce = headers.get(protocol.H_NONCE)
        signature = headers.get(protocol.H_SIGNATURE)
        if (
            merchant != self.credentials.merchant_id
            or ts is None
            or nonce is None
            or signature is None
        ):
            return False
        if not protocol.valid_nonce(nonce) or not protocol.is_fresh(ts, time.time()):
            return False
        message = protocol.request_string(request.method, request.raw_path, ts, nonce, body)
        return protocol.verify(self.credentials.hmac_key, message, signature)

    def answer(self, reply: Reply) -> web.Response:
        body = reply.body()
        headers = protocol.sign_response(
            self.credentials.hmac_key, reply.status, body, now=time.time()
        )
        headers["Content-Type"] = "application/json"
        return web.Response(status=reply.status, body=body, headers=headers)
