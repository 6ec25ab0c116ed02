"""The Alipay simulator's event-loop side: gateway request checks, signed answers and
signed notifications, under the current faults."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from decimal import Decimal
from typing import final

import aiohttp
from aiohttp import web

from adapters.alipay import protocol
from adapters.alipay.fund_auth_wire import FUND_AUTH_METHODS
from adapters.alipay.fund_wire import FundSubCode
from adapters.alipay.protocol import AlipayCredentials, Code, Method, SubCode
from adapters.alipay.simulator import refunds
from adapters.alipay.simulator.answers import ERROR_KEY, Answer, Refused, failure
from adapters.alipay.simulator.bills import Bills
from adapters.alipay.simulator.fund_auths import FundAuths
from adapters.alipay.simulator.ledger import Ledger
from adapters.alipay.simulator.royalties import Royalties
from adapters.alipay.simulator.transfers import Transfers
from adapters.simkit.delivery import Delivery
from adapters.simkit.payees import Payees
from adapters.simkit.runtime import SimRuntime, SimulatorOptions

log = logging.getLogger(__name__)

# Delays before the 2nd..8th notification attempts (× time_scale): 4m 10m 10m 1h 2h 6h 15h.
NOTIFY_RETRY_DELAYS = (240.0, 600.0, 600.0, 3600.0, 7200.0, 21600.0, 54000.0)
NOTIFY_TIMEOUT = 10.0

_JSON = "application/json;charset=utf-8"
_FORM = "application/x-www-form-urlencoded;charset=utf-8"
_REQUIRED_COMMON = (
    ("method", "isv.missing-method"),
    ("app_id", "isv.missing-app-id"),
    ("sign", "isv.missing-signature"),
    ("sign_type", "isv.missing-signature-type"),
    ("timestamp", "isv.missing-timestamp"),
    ("version", "isv.missing-version"),
)


async def _success(resp: aiohttp.ClientResponse) -> bool:
    # Alipay stops only on the exact 7 bytes `success`.
    return resp.status == 200 and await resp.read() == b"success"


@final
class Runtime(SimRuntime):
    """Event-loop side of the simulator: checks, signing, timers, notifications, faults."""

    __slots__ = ("_signing_key", "bills", "credentials", "fund_auths", "ledger", "options",
                 "payees", "royalties", "transfers")

    def __init__(self, credentials: AlipayCredentials, options: SimulatorOptions) -> None:
        if credentials.alipay_private_key is None:
            raise ValueError("the simulator needs the bundle's alipay_private_key.pem")
        super().__init__(
            options,
            Delivery("alipay", NOTIFY_RETRY_DELAYS, NOTIFY_TIMEOUT, log, acknowledged=_success),
        )
        self._signing_key = credentials.alipay_private_key
        self.credentials = credentials
        self.options = options
        self.ledger = Ledger(credentials.app_id, self.schedule, self.emit)
        self.bills = Bills(self.ledger, self.schedule)
        self.payees = Payees()
        self.transfers = Transfers(self.payees)
        self.royalties = Royalties(self.ledger)
        self.fund_auths = FundAuths(self.ledger, self.schedule, self.emit, credentials.app_id)

    def __repr__(self) -> str:
        return f"Runtime(app_id={self.credentials.app_id!r}, options={self.options!r})"

    # ----------------------------------------------------------------- requests
    def check(self, params: Mapping[str, str]) -> tuple[Method, dict[str, object]] | Answer:
        """The method and business fields of an authentic request, or the refusal."""
        for name, sub_code in _REQUIRED_COMMON:
            if not params.get(name):
                key = None if name != "method" else ERROR_KEY
                return failure(Code.MISSING_PARAMETER, sub_code, f"{name} is required", key=key)
        try:
            method = Method(params["method"])
        except ValueError:
            return failure(
                Code.INVALID_PARAMETER, "isv.invalid-method", "unknown method", key=ERROR_KEY
            )
        refusal = self._authenticate(params)
        if refusal is not None:
            return refusal
        try:
            biz = json.loads(params.get("biz_content") or "{}", parse_float=Decimal)
        except ValueError:
            biz = None
        if not isinstance(biz, dict):
            return failure(
                Code.BUSINESS_FAILED, SubCode.INVALID_PARAMETER.value, "biz_content is not JSON"
            )
        return method, biz

    def _authenticate(self, params: Mapping[str, str]) -> Answer | None:
        if params["app_id"] != self.credentials.app_id:
            return failure(Code.INVALID_PARAMETER, "isv.invalid-app-id", "unknown app_id")
        if params["sign_type"] != protocol.SIGN_TYPE:
            return failure(Code.INVALID_PARAMETER, "isv.invalid-signature-type", "RSA2 only")
        if params.get("charset", protocol.CHARSET).lower() != protocol.CHARSET:
            return failure(Code.INVALID_PARAMETER, "isv.invalid-charset", "utf-8 only")
        if not protocol.verify_request_params(self.credentials.app_public_key, params):
            return failure(Code.INVALID_PARAMETER, "isv.invalid-signature", "signature mismatch")
        return None

    def apply(self, method: Method, biz: Mapping[str, object], common: Mapping[str, str]) -> Answer:
        """Apply one authentic call to the ledger."""
        ledger = self.ledger
        try:
            match method:
                case Method.PRECREATE:
                    return ledger.precreate(biz, common)
                case Method.PAY if "auth_no" in biz:  # the capture of a fund authorisation
                    return self.fund_auths.capture(biz)
                case Method.PAY:
                    return ledger.pay(biz, common)
                case Method.CREATE:
                    return ledger.create(biz, common)
                case Method.APP_PAY | Method.WAP_PAY | Method.PAGE_PAY:
                    return ledger.present(method, biz, common)
                case Method.QUERY:
                    return ledger.query(biz)
                case Method.CLOSE:
                    return ledger.close(biz)
                case Method.CANCEL:
                    return ledger.cancel(biz)
                case Method.REFUND:
                    return refunds.refund(ledger, biz)
                case Method.REFUND_QUERY:
                    return refunds.refund_query(ledger, biz)
                case Method.BILL_URL_QUERY:
                    return self.bills.url_query(biz)
                case Method.TRANSFER:
                    return self.transfers.transfer(biz)
                case Method.TRANSFER_QUERY:
                    return self.transfers.query(biz)
                case Method.SETTLE | Method.SETTLE_QUERY:
                    return self.royalties.apply(method, biz)
                case (Method.AUTH_FREEZE | Method.AUTH_APP_FREEZE | Method.AUTH_UNFREEZE
                      | Method.AUTH_QUERY):
                    return self.fund_auths.apply(method, biz, common)
        except Refused as refused:
            return refused.answer

    async def serve(self, request: web.Request, params: Mapping[str, str]) -> web.StreamResponse:
        """One `gateway.do` call: authenticate, maybe fail on purpose, apply, answer."""
        checked = self.check(params)
        if isinstance(checked, Answer):
            return self.respond(params.get("method", ""), checked)
        method, biz = checked
        return await self.perform(
            request,
            lambda: self.apply(method, biz, params),
            lambda answer: self.respond(method, answer),
            lambda: self.respond(method, self._system_error(method)),  # not applied
        )

    def _system_error(self, method: Method) -> Answer:
        if self.roll(0.5):  # Alipay answers either way
            return failure(Code.UNKNOWN_ERROR, "isp.unknow-error", "system busy")
        # The fund API's sub_codes carry no `ACQ.` prefix.
        fund = method in (Method.TRANSFER, Method.TRANSFER_QUERY, *FUND_AUTH_METHODS)
        sub = FundSubCode.SYSTEM_ERROR.value if fund else SubCode.SYSTEM_ERROR.value
        return failure(Code.BUSINESS_FAILED, sub, "system error")

    def respond(self, method: str, answer: Answer) -> web.Response:
        key = answer.key or protocol.response_key(method)
        payload = _sanitize(answer.payload)
        assert isinstance(payload, Mapping)
        body = protocol.signed_answer(key, payload, self._signing_key)
        return web.Response(body=body, headers={"Content-Type": _JSON})

    # ----------------------------------------------------------------- notifications
    def emit(self, url: str, fields: dict[str, str]) -> None:
        self.notify(url, fields, self._encode_notification)

    def sign_notification(self, fields: Mapping[str, str], now: float) -> dict[str, str]:
        """A send of `fields`: stamped with this attempt's time and signed afresh."""
        params = {**fields, "notify_time": protocol.format_time(now)}
        params["sign"] = protocol.rsa2_sign(
            self._signing_key, protocol.notification_content(params)
        )
        return params

    def _encode_notification(self, fields: Mapping[str, str]) -> tuple[bytes, dict[str, str]]:
        body = protocol.urlencode_params(self.sign_notification(fields, time.time()))
        return body.encode("ascii"), {"Content-Type": _FORM}


def _sanitize(value: object) -> object:
    """No `{`/`}` in string values: naive brace counters (the Python SDK) would misparse."""
    if isinstance(value, str):
        return value.replace("{", "(").replace("}", ")")
    if isinstance(value, Mapping):
        return {k: _sanitize(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_sanitize(v) for v in value]
    return value
