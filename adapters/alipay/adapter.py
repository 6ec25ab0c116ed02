"""The Alipay rail adapter: signs gateway calls, verifies and maps Alipay's answers.

Pure like every adapter: it builds form POSTs to `gateway.do` and reads the core's
responses. `app` and `h5` need no call: their signed order string *is* the result. The
shapes are in `wire`, the mapping to and from canonical operations in `transformers`, the
signatures in `protocol`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import assert_never, final
from urllib.parse import urlsplit

import msgspec

from adapters.alipay import bills, crossborder, fund_auth, payouts, protocol, royalty, transformers
from adapters.alipay.credentials import AlipayCredentials
from adapters.alipay.fund_auth_wire import FREEZE_NOTIFY_TYPE
from adapters.alipay.protocol import FormError
from adapters.alipay.transformers import CALL_FREE, CHARGE_METHODS, out_no
from adapters.alipay.wire import GatewayParams, Method, TradeNotification, TradeRef, format_time
from adapters.base import (
    Action,
    ActionType,
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
    RailStatus,
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
from adapters.wire import Malformed, convert

__all__ = ["AlipayAdapter", "create_adapter", "gateway_url"]

_FORM = "application/x-www-form-urlencoded;charset=utf-8"
_SCENES = frozenset(CHARGE_METHODS)
# The merchant-service operations Alipay lacks (SplitReturn: see README).
_UNOFFERED = (SplitReturn, IssueInvoice, ReverseInvoice, InvoiceQuery)


def gateway_url(base_url: str) -> str:
    """`base_url` as configured → the gateway: `…/gateway.do` is appended unless present."""
    url = base_url.rstrip("/")
    return url if urlsplit(url).path.endswith(".do") else url + protocol.GATEWAY_PATH


@final
class AlipayAdapter:
    __slots__ = ("_app_auth_token", "_clock", "_creds", "_gateway", "_name", "_seller_id",
                 "_settle_currency")

    def __init__(
        self,
        name: str,
        base_url: str,
        credentials: AlipayCredentials,
        *,
        app_auth_token: str | None = None,
        seller_id: str | None = None,
        settle_currency: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._name = name
        self._gateway = gateway_url(base_url)
        self._creds = credentials
        self._app_auth_token = app_auth_token or None
        self._seller_id = seller_id or None
        self._settle_currency = settle_currency or None  # set: a cross-border merchant
        self._clock = clock

    def __repr__(self) -> str:
        return f"AlipayAdapter(name={self._name!r}, gateway={self._gateway!r})"

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
                return self._build_charge(op)
            case Query():
                return self._call(Method.QUERY, TradeRef(out_trade_no=out_no(op.rail_order_no)))
            case Close():
                return self._call(Method.CLOSE, TradeRef(out_trade_no=out_no(op.rail_order_no)))
            case Reverse():
                return self._call(Method.CANCEL, TradeRef(out_trade_no=out_no(op.rail_order_no)))
            case Refund():
                if crossborder.is_foreign(op.currency):
                    refund = crossborder.refund_biz(op, self._settle_currency)
                    return self._call(Method.REFUND, refund)
                return self._call(Method.REFUND, transformers.refund_biz(op))
            case RefundQuery():
                ref = TradeRef(
                    out_trade_no=out_no(op.rail_order_no),
                    out_request_no=out_no(op.rail_refund_no),
                )
                return self._call(Method.REFUND_QUERY, ref)
            case Payout():
                # No notify_url: Alipay's payout notification is unconfirmed (see README).
                return self._call(Method.TRANSFER, payouts.transfer_biz(op))
            case PayoutQuery():
                return self._call(Method.TRANSFER_QUERY, payouts.transfer_ref(op))
            case BillDownload() if op.url is not None:
                return bills.download_request(op, op.url)
            case BillDownload():
                return self._call(Method.BILL_URL_QUERY, bills.url_query_biz(op))
            case Split() | SplitQuery():
                return self._call(*royalty.call(op))
            case Authorize():
                return self._build_authorize(op)
            case AuthorizationQuery() | Capture() | Release():
                return self._call(*fund_auth.call(op))
            case SplitReturn() | IssueInvoice() | ReverseInvoice() | InvoiceQuery():
                raise unsupported(self.name, op)
            case _:
                assert_never(op)

    def _build_charge(self, op: Charge) -> HttpRequest | RailResult:
        if crossborder.is_foreign(op.currency):  # priced abroad, or refused for its currency
            biz = crossborder.order_biz(op, self._settle_currency)
        else:
            biz = transformers.order_biz(op)
        method = CHARGE_METHODS[op.scene]
        notify = op.notify_url or None
        if method is Method.APP_PAY:
            order = protocol.urlencode_params(self._signed(method, biz, notify_url=notify))
            return _awaiting(Action(ActionType.SDK_PARAMS, {"order_string": order}))
        if method is Method.WAP_PAY:
            return_url = op.metadata.get("return_url") or None
            params = self._signed(method, biz, notify_url=notify, return_url=return_url)
            url = f"{self._gateway}?{protocol.urlencode_params(params)}"
            return _awaiting(Action(ActionType.REDIRECT, {"url": url}))
        return self._call(method, biz, notify_url=notify)

    def _build_authorize(self, op: Authorize) -> HttpRequest | RailResult:
        method, biz, notify = fund_auth.freeze_method(op), fund_auth.freeze_biz(op), op.notify_url
        if method is Method.AUTH_APP_FREEZE:  # a signed order string the wallet opens
            order = protocol.urlencode_params(self._signed(method, biz, notify_url=notify or None))
            return _awaiting(Action(ActionType.SDK_PARAMS, {"order_string": order}))
        return self._call(method, biz, notify_url=notify or None)

    def _signed(
        self,
        method: Method,
        biz: msgspec.Struct,
        *,
        notify_url: str | None = None,
        return_url: str | None = None,
    ) -> dict[str, str]:
        params = GatewayParams(
            app_id=self._creds.app_id,
            method=method.value,
            format="JSON",
            charset=protocol.CHARSET,
            sign_type=protocol.SIGN_TYPE,
            timestamp=format_time(self._clock()),
            version="1.0",
            app_auth_token=self._app_auth_token,
            notify_url=notify_url,
            return_url=return_url,
            biz_content=msgspec.json.encode(biz).decode("utf-8"),
        )
        # Unset values are neither signed nor sent, so the wire matches the signature.
        fields: dict[str, str] = msgspec.to_builtins(params)
        return protocol.sign_params(self._creds.app_private_key, fields)

    def _call(
        self, method: Method, biz: msgspec.Struct, *, notify_url: str | None = None
    ) -> HttpRequest:
        params = self._signed(method, biz, notify_url=notify_url)
        body = protocol.urlencode_params(params).encode("ascii")
        return HttpRequest("POST", self._gateway, {"Content-Type": _FORM}, body)

    # ----------------------------------------------------------------------- parse
    def parse(self, op: Operation, response: HttpResponse) -> RailResult:
        if isinstance(op, BillDownload):
            return self._parse_bill(op, response)
        if isinstance(op, _UNOFFERED):
            raise unsupported(self.name, op)
        text = self._verified(_method_of(op), response)
        try:
            if isinstance(op, Payout | PayoutQuery):
                return payouts.answer_result(op, text)
            if isinstance(op, Split | SplitQuery):
                return royalty.answer_result(op, text)
            if isinstance(op, Authorize | AuthorizationQuery | Capture | Release):
                return fund_auth.answer_result(op, text)
            result = transformers.answer_result(op, text)
            if isinstance(op, Charge | Query):  # a cross-border trade: what the buyer paid
                result = crossborder.with_payer_amount(result, text)
            return result
        except Malformed as exc:
            raise RailError(RailErrorCode.MALFORMED_RESPONSE, str(exc), definitive=False) from None

    def _parse_bill(self, op: BillDownload, response: HttpResponse) -> RailResult:
        try:
            if op.url is not None:  # the bill itself: unsigned
                return bills.bill_result(op, response)
            return bills.url_result(self._verified(Method.BILL_URL_QUERY, response))
        except Malformed as exc:
            raise RailError(RailErrorCode.MALFORMED_RESPONSE, str(exc), definitive=False) from None

    def _verified(self, method: Method, response: HttpResponse) -> str:
        """The exact text of the signed `*_response` object, or `RailError(definitive=False)`."""
        if response.status != 200:
            raise RailError(
                "UNVERIFIABLE_RESPONSE",
                f"HTTP {response.status} from the gateway",
                definitive=False,
            )
        try:
            text = response.body.decode("utf-8")
        except UnicodeDecodeError:
            text = ""
        section = protocol.signed_section(text, (protocol.response_key(method), "error_response"))
        if section is None or not protocol.rsa2_verify(
            self._creds.alipay_public_key, section[1], section[2]
        ):
            raise RailError(
                "UNVERIFIABLE_RESPONSE", "unsigned or wrongly signed answer", definitive=False
            )
        return section[1]

    # ----------------------------------------------------------------------- notifications
    def verify_notification(self, headers: Mapping[str, str], body: bytes) -> Notification:
        try:
            params = protocol.decode_form(body)
        except FormError as exc:
            raise _unverifiable(str(exc)) from None
        if params.get("sign_type") != protocol.SIGN_TYPE:
            raise _unverifiable("sign_type is not RSA2")
        if not protocol.verify_notification_params(self._creds.alipay_public_key, params):
            raise _unverifiable("bad signature")
        try:
            if params.get("notify_type") == FREEZE_NOTIFY_TYPE:  # an online freeze's outcome
                return fund_auth.notification(params, self._creds.app_id)
            note = convert(params, TradeNotification)
            if note.app_id != self._creds.app_id:
                raise Malformed("notification for another app")
            if self._seller_id is not None and note.seller_id != self._seller_id:
                raise Malformed("notification for another seller")
            return crossborder.with_payer_notification(transformers.notification(note), params)
        except Malformed as exc:
            raise _unverifiable(str(exc)) from None

    def notification_reply(self, accepted: bool) -> HttpResponse:
        # Alipay stops resending only on a body of exactly `success`; `fail` makes it
        # resend on its schedule (a 200 keeps proxies from logging it as an outage).
        body = b"success" if accepted else b"fail"
        return HttpResponse(200, {"Content-Type": "text/plain; charset=utf-8"}, body)


def create_adapter(config: AdapterConfig) -> AlipayAdapter:
    """Entry-point factory; the bundle must already exist in `config.keys_dir`.

    Options: `app_auth_token` (a service provider acting for a merchant),
    `seller_id` (the merchant PID that notifications must name) and `settle_currency`
    (a merchant Alipay settles abroad, e.g. "JPY": charges in other currencies than CNY
    are then priced in their own).
    """
    if config.keys_dir is None:
        raise ValueError(f"rail {config.name!r}: the Alipay adapter needs keys_dir")
    return AlipayAdapter(
        config.name,
        config.base_url,
        protocol.load_bundle(config.keys_dir),
        app_auth_token=_option(config, "app_auth_token"),
        seller_id=_option(config, "seller_id"),
        settle_currency=crossborder.settle_currency_option(
            config.name, _option(config, "settle_currency")),
    )


def _option(config: AdapterConfig, key: str) -> str | None:
    value = config.options.get(key)
    if value is not None and not isinstance(value, str):
        raise ValueError(f"rail {config.name!r}: option {key} must be a string")
    return value


def _method_of(op: Operation) -> Method:
    match op:
        case Charge():
            method = CHARGE_METHODS.get(op.scene)
            if method is None or method in CALL_FREE:  # answered by build: nothing to parse
                raise RailError(
                    "UNEXPECTED_RESPONSE", f"scene {op.scene!r} makes no call", definitive=False
                )
            return method
        case Query():
            return Method.QUERY
        case Close():
            return Method.CLOSE
        case Reverse():
            return Method.CANCEL
        case Refund():
            return Method.REFUND
        case RefundQuery():
            return Method.REFUND_QUERY
        case Payout():
            return Method.TRANSFER
        case PayoutQuery():
            return Method.TRANSFER_QUERY
        case BillDownload():
            return Method.BILL_URL_QUERY
        case Split() | SplitQuery():
            return royalty.method_of(op)
        case Authorize() | AuthorizationQuery() | Capture() | Release():
            return fund_auth.method_of(op)
        case SplitReturn() | IssueInvoice() | ReverseInvoice() | InvoiceQuery():
            raise unsupported("alipay", op)
        case _:
            assert_never(op)


def _awaiting(action: Action) -> RailResult:
    return RailResult(RailStatus.REQUIRES_ACTION, action=action)


def _unverifiable(reason: str) -> RailError:
    return RailError(RailErrorCode.NOTIFICATION_UNVERIFIABLE, reason, definitive=False)
