"""The WeChat Pay simulator's event-loop side: request checks, signed answers and
encrypted, signed notifications."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Mapping
from typing import final

from aiohttp import web

from adapters.simkit.delivery import Delivery
from adapters.simkit.replies import Reply, dump_json, error
from adapters.simkit.runtime import SimulatorOptions
from adapters.simkit.signed_api import Refusals, SignedRuntime
from adapters.wechatpay import protocol
from adapters.wechatpay.protocol import WeChatPayCredentials
from adapters.wechatpay.simulator.crossborder import CrossBorder
from adapters.wechatpay.simulator.fapiao import Fapiao
from adapters.wechatpay.simulator.ledger import Ledger
from adapters.wechatpay.simulator.payscore import PayScore
from adapters.wechatpay.simulator.profit_sharing import ProfitSharing
from adapters.wechatpay.simulator.records import now_text
from adapters.wechatpay.simulator.refunds import Refunds
from adapters.wechatpay.simulator.trade_bills import TradeBills
from adapters.wechatpay.simulator.transfer_bills import TransferBills

log = logging.getLogger(__name__)

# WeChat's documented resend schedule after the first attempt (× time_scale): ~24 h.
NOTIFY_RETRY_DELAYS = (
    15.0, 15.0, 30.0, 180.0, 600.0, 1200.0, 1800.0, 1800.0,
    1800.0, 3600.0, 10800.0, 10800.0, 10800.0, 21600.0, 21600.0,
)  # fmt: skip
NOTIFY_TIMEOUT = 5.0

_REFUSALS = Refusals(
    unauthentic=error(401, "SIGN_ERROR", "签名错误，请检查后再试"),
    not_an_object=error(400, "PARAM_ERROR", "请求体不是 JSON 对象"),
    system_error=error(500, "SYSTEM_ERROR", "系统错误"),
    internal_error=error(500, "SYSTEM_ERROR", "系统错误"),
)


@final
class Runtime(SignedRuntime):
    """Event-loop side of the simulator: timers, notifications, faults, randomness."""

    __slots__ = ("_platform_key", "credentials", "crossborder", "fapiao", "ledger", "options",
                 "payouts", "payscore", "refunds", "splits", "trade_bills")

    def __init__(
        self,
        credentials: WeChatPayCredentials,
        options: SimulatorOptions,
        *,
        userpaying_as_202: bool,
    ) -> None:
        if credentials.platform_private_key is None:
            raise ValueError("the simulator needs platform_private_key.pem in its bundle")
        delivery = Delivery("wechatpay", NOTIFY_RETRY_DELAYS, NOTIFY_TIMEOUT, log)
        super().__init__(options, delivery, _REFUSALS)
        self._platform_key = credentials.platform_private_key
        self.credentials = credentials
        self.options = options
        self.ledger = Ledger(
            credentials, self.schedule, self.emit, userpaying_202=userpaying_as_202
        )
        self.refunds = Refunds(self.ledger, self.schedule, self.emit)
        self.payouts = TransferBills(credentials, self.schedule, self.emit, self.ledger.serial)
        self.splits = ProfitSharing(credentials, self.ledger, self.schedule, self.payouts.payees)
        self.payscore = PayScore(credentials, self.ledger, self.emit)
        self.crossborder = CrossBorder(credentials, self.ledger, self.schedule, self.emit)
        self.fapiao = Fapiao(credentials, self.ledger, self.emit)
        self.trade_bills = TradeBills(credentials.appid, credentials.mchid, self.ledger, lambda: [
            *self.refunds.records(), *self.crossborder.records()])

    def __repr__(self) -> str:
        return f"Runtime(mchid={self.credentials.mchid!r}, options={self.options!r})"

    # ----------------------------------------------------------------- notifications
    def emit(
        self,
        url: str,
        event_type: str,
        summary: str,
        original_type: str,
        plaintext: Mapping[str, object],
    ) -> None:
        resource = protocol.encrypt_resource(
            self.credentials.apiv3_key,
            dump_json(plaintext),
            associated_data=original_type,
            original_type=original_type,
        )
        envelope = {
            "id": str(uuid.uuid4()),
            "create_time": now_text(),
            "resource_type": "encrypt-resource",
            "event_type": event_type,
            "summary": summary,
            "resource": resource,
        }
        # Every attempt is signed afresh, so a late retry is still inside the 300 s window.
        self.notify(url, dump_json(envelope), lambda body: (body, self.signed_headers(body)))

    # ----------------------------------------------------------------- answers
    def authentic(self, request: web.Request, body: bytes) -> bool:
        return protocol.verify_request(
            self.credentials, request.method, request.raw_path, request.headers, body,
            now=time.time(),
        )  # fmt: skip

    def signed_headers(self, body: bytes) -> dict[str, str]:
        headers = protocol.sign_response(
            self._platform_key, self.credentials.platform_public_key_id, body, now=time.time()
        )
        headers["Content-Type"] = "application/json"
        return headers

    def answer(self, reply: Reply) -> web.Response:
        body = reply.body()
        return web.Response(status=reply.status, body=body, headers=self.signed_headers(body))
