"""The bank rail adapter: builds signed requests, checks and parses signed answers.

The bodies are in `wire`, the mapping to and from canonical operations in
`transformers`, the signatures in `protocol`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import assert_never, final
from urllib.parse import quote, urlsplit

import msgspec

from adapters.bank import bills, protocol, transformers
from adapters.bank.protocol import BankCredentials
from adapters.bank.transformers import CHARGE_PATHS, TRANSFERS_PATH
from adapters.base import (
    AdapterConfig,
    Charge,
    Close,
    HttpRequest,
    HttpResponse,
    Notification,
    Operation,
    Payout,
    PayoutQuery,
    Query,
    RailError,
    RailErrorCode,
    RailResult,
    Refund,
    RefundQuery,
    Reverse,
    unsupported,
)
from adapters.commerce_ops import (
    AuthorizationQuery,
    Authorize,
    BillDownload,
    Capture,
    InvoiceQuery,
    IssueInvoice,
    Release,
    ReverseInvoice,
    Split,
    SplitQuery,
    SplitReturn,
)
from adapters.wire import Malformed

__all__ = ["BankAdapter", "create_adapter"]

_JSON = "application/json"
_EMPTY_OBJECT = b"{}"  # the body of close and reverse
_SCENES = frozenset(CHARGE_PATHS)


@final
class BankAdapter:
    __slots__ = ("_base_url", "_clock", "_creds", "_name")

    def __init__(
        self,
        name: str,
        base_url: str,
        credentials: BankCredentials,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._name = name
        self._base_url = base_url.rstrip("/")
        self._creds = credentials
        self._clock = clock

    def __repr__(self) -> str:
        return f"BankAdapter(name={self._name!r}, base_url={self._base_url!r})"

    @property
    def name(self) -> str:
        return self._name

    @property
    def scenes(self) -> frozenset[str]:
        return _SCENES

    # ----------------------------------------------------------------------- build
    def build(self, op: Operation) -> HttpRequest | RailResult:
        match op:
            case Charge():
                charge = transformers.charge_request(op)
                return self._signed("POST", CHARGE_PATHS[op.scene], msgspec.json.encode(charge))
            case Query():
                return self._signed("GET", f"/v1/orders/{_seg(op.rail_order_no)}", b"")
            case Close():
                return self._signed(
                    "POST", f"/v1/orders/{_seg(op.rail_order_no)}/close", _EMPTY_OBJECT
                )
            case Reverse():
                return self._signed(
                    "POST", f"/v1/orders/{_seg(op.rail_order_no)}/reverse", _EMPTY_OBJECT
                )
            case Refund():
                refund = transformers.refund_request(op)
                return self._signed("POST", "/v1/refunds", msgspec.json.encode(refund))
            case RefundQuery():
                return self._signed("GET", f"/v1/refunds/{_seg(op.rail_refund_no)}", b"")
            case Payout():
                transfer = transformers.transfer_request(op)
                return self._signed("POST", TRANSFERS_PATH, msgspec.json.encode(transfer))
            case PayoutQuery():
                return self._signed("GET", f"{TRANSFERS_PATH}/{_seg(op.rail_payout_no)}", b"")
            case BillDownload():  # one call: the bank answers the bill itself
                return self._signed("GET", bills.bill_path(op), b"")
            case (Split() | SplitQuery() | SplitReturn() | Authorize() | AuthorizationQuery()
                    | Capture() | Release() | IssueInvoice() | ReverseInvoice() | InvoiceQuery()):
                raise unsupported(self.name, op)
            case _:
                assert_never(op)

    def _signed(self, method: str, path: str, body: bytes) -> HttpRequest:
        url = self._base_url + path
        # Sign what the server will see: any path prefix in base_url included.
        split = urlsplit(url)
        target = split.path + (f"?{split.query}" if split.query else "")
        headers = protocol.sign_request(self._creds, method, target, body, now=self._clock())
        if body:
            headers["Content-Type"] = _JSON
        return HttpRequest(method=method, url=url, headers=headers, body=body)

    # ----------------------------------------------------------------------- parse
    def parse(self, op: Operation, response: HttpResponse) -> RailResult:
        if not protocol.verify_response_headers(
            self._creds.hmac_key,
            response.status,
            response.headers,
            response.body,
            now=self._clock(),
        ):
            raise RailError(
                "UNVERIFIABLE_RESPONSE",
                f"unsigned or stale HTTP {response.status} answer",
                definitive=False,
            )
        try:
            if isinstance(op, BillDownload):
                return bills.bill_result(op, response.status, response.body)
            if 200 <= response.status < 300:
                return transformers.success_result(op, response.body)
            return transformers.refusal_result(op, response.status, response.body)
        except Malformed as exc:
            raise RailError(RailErrorCode.MALFORMED_RESPONSE, str(exc), definitive=False) from None

    # ----------------------------------------------------------------------- notifications
    def verify_notification(self, headers: Mapping[str, str], body: bytes) -> Notification:
        if not protocol.verify_notification_headers(
            self._creds.hmac_key, headers, body, now=self._clock()
        ):
            raise RailError(
                RailErrorCode.NOTIFICATION_UNVERIFIABLE,
                "bad or stale signature",
                definitive=False,
            )
        try:
            return transformers.notification(body)
        except Malformed as exc:
            raise RailError(
                RailErrorCode.NOTIFICATION_UNVERIFIABLE, str(exc), definitive=False
            ) from None

    def notification_reply(self, accepted: bool) -> HttpResponse:
        if accepted:
            return HttpResponse(200, {"Content-Type": _JSON}, b'{"ok":true}')
        return HttpResponse(400, {"Content-Type": _JSON}, b'{"ok":false}')


def create_adapter(config: AdapterConfig) -> BankAdapter:
    """Entry-point factory; the bundle must already exist in `config.keys_dir`."""
    if config.keys_dir is None:
        raise ValueError(f"rail {config.name!r}: the bank adapter needs keys_dir")
    return BankAdapter(config.name, config.base_url, protocol.load_bundle(config.keys_dir))


def _seg(value: str) -> str:
    return quote(value, safe="")
