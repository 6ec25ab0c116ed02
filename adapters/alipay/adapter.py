"""The Alipay rail adapter: signs gateway calls, verifies and maps Alipay's answers.

Pure like every adapter: it builds form POSTs to `gateway.do` and reads the core's
responses. `app` and `h5` need no call: their signed order string *is* the result.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import assert_never, final
from urllib.parse import urlsplit

from adapters.alipay import protocol
from adapters.alipay.protocol import (
    AlipayCredentials,
    Code,
    FormError,
    Method,
    SubCode,
    TradeStatus,
)
from adapters.base import (
    Action,
    AdapterConfig,
    Charge,
    Close,
    HttpRequest,
    HttpResponse,
    Notification,
    Operation,
    Query,
    RailError,
    RailResult,
    RailStatus,
    Refund,
    RefundQuery,
    Reverse,
)

__all__ = ["SCENES", "AlipayAdapter", "create_adapter", "gateway_url"]

SCENES = frozenset({"native", "quickpay", "jsapi", "mini_program", "app", "h5"})

_FORM = "application/x-www-form-urlencoded;charset=utf-8"
_REFUND_SUCCESS = "REFUND_SUCCESS"
_SUBJECT_MAX = 256
_PASSTHROUGH = ("timeout_express",)  # Charge.metadata keys copied into biz_content

# Payer-code failures, refund refusals and the like: Alipay moved no money.
_REFUSALS = frozenset(
    {
        SubCode.CONTEXT_INCONSISTENT,
        SubCode.BUYER_BALANCE_NOT_ENOUGH,
        SubCode.BUYER_BANKCARD_BALANCE_NOT_ENOUGH,
        SubCode.PAYMENT_AUTH_CODE_INVALID,
        SubCode.TRADE_BUYER_NOT_MATCH,
        SubCode.TOTAL_FEE_EXCEED,
        SubCode.INVALID_PARAMETER,
        SubCode.REFUND_AMT_NOT_EQUAL_TOTAL,
        SubCode.SELLER_BALANCE_NOT_ENOUGH,
        SubCode.TRADE_HAS_FINISHED,
        SubCode.TRADE_STATUS_ERROR,
    }
)


class _Malformed(Exception):
    """A verified answer without the documented shape."""


def gateway_url(base_url: str) -> str:
    """`base_url` as configured → the gateway: `…/gateway.do` is appended unless present."""
    url = base_url.rstrip("/")
    return url if urlsplit(url).path.endswith(".do") else url + protocol.GATEWAY_PATH


@final
class AlipayAdapter:
    __slots__ = ("_app_auth_token", "_clock", "_creds", "_gateway", "_name", "_seller_id")

    def __init__(
        self,
        name: str,
        base_url: str,
        credentials: AlipayCredentials,
        *,
        app_auth_token: str | None = None,
        seller_id: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._name = name
        self._gateway = gateway_url(base_url)
        self._creds = credentials
        self._app_auth_token = app_auth_token or None
        self._seller_id = seller_id or None
        self._clock = clock

    def __repr__(self) -> str:
        return f"AlipayAdapter(name={self._name!r}, gateway={self._gateway!r})"

    @property
    def name(self) -> str:
        return self._name

    @property
    def scenes(self) -> frozenset[str]:
        return SCENES

    # ----------------------------------------------------------------------- build
    def build(self, op: Operation) -> HttpRequest | RailResult:
        match op:
            case Charge():
                return self._build_charge(op)
            case Query():
                return self._call(Method.QUERY, {"out_trade_no": _out_no(op.rail_order_no)})
            case Close():
                return self._call(Method.CLOSE, {"out_trade_no": _out_no(op.rail_order_no)})
            case Reverse():
                return self._call(Method.CANCEL, {"out_trade_no": _out_no(op.rail_order_no)})
            case Refund():
                return self._call(Method.REFUND, _refund_biz(op))
            case RefundQuery():
                biz = {
                    "out_trade_no": _out_no(op.rail_order_no),
                    "out_request_no": _out_no(op.rail_refund_no),
                }
                return self._call(Method.REFUND_QUERY, biz)
            case _:
                assert_never(op)

    def _build_charge(self, op: Charge) -> HttpRequest | RailResult:
        base = _charge_biz(op)
        notify = op.notify_url
        match op.scene:
            case "native":
                return self._call(Method.PRECREATE, base, notify_url=notify)
            case "quickpay":
                return self._call(Method.PAY, {**base, **_payer_code(op)}, notify_url=notify)
            case "jsapi" | "mini_program":
                biz = {**base, "product_code": "JSAPI_PAY", **_buyer(op)}
                return self._call(Method.CREATE, biz, notify_url=notify)
            case "app":
                biz = {**base, "product_code": "QUICK_MSECURITY_PAY"}
                params = self._signed(Method.APP_PAY, biz, notify_url=notify)
                order = protocol.urlencode_params(params)
                return _awaiting(Action("sdk_params", {"order_string": order}))
            case "h5":
                biz = {**base, "product_code": "QUICK_WAP_WAY"}
                if quit_url := op.metadata.get("quit_url"):
                    biz["quit_url"] = quit_url
                params = self._signed(
                    Method.WAP_PAY, biz, notify_url=notify, return_url=op.metadata.get("return_url")
                )
                url = f"{self._gateway}?{protocol.urlencode_params(params)}"
                return _awaiting(Action("redirect", {"url": url}))
            case _:
                raise RailError(
                    "INVALID_REQUEST",
                    f"scene {op.scene!r} is not offered by Alipay",
                    definitive=True,
                )

    def _signed(
        self,
        method: Method,
        biz: Mapping[str, object],
        *,
        notify_url: str | None = None,
        return_url: str | None = None,
    ) -> dict[str, str]:
        params = {
            "app_id": self._creds.app_id,
            "method": method.value,
            "format": "JSON",
            "charset": protocol.CHARSET,
            "sign_type": protocol.SIGN_TYPE,
            "timestamp": protocol.format_time(self._clock()),
            "version": "1.0",
            "app_auth_token": self._app_auth_token or "",
            "notify_url": notify_url or "",
            "return_url": return_url or "",
            "biz_content": json.dumps(biz, ensure_ascii=False, separators=(",", ":")),
        }
        # Empty values are not signed: leave them out of the wire too, to match exactly.
        return protocol.sign_params(
            self._creds.app_private_key, {k: v for k, v in params.items() if v}
        )

    def _call(
        self, method: Method, biz: Mapping[str, object], *, notify_url: str | None = None
    ) -> HttpRequest:
        params = self._signed(method, biz, notify_url=notify_url)
        body = protocol.urlencode_params(params).encode("ascii")
        return HttpRequest("POST", self._gateway, {"Content-Type": _FORM}, body)

    # ----------------------------------------------------------------------- parse
    def parse(self, op: Operation, response: HttpResponse) -> RailResult:
        method = _method_of(op)
        answer = self._verified(method, response)
        try:
            _check_identity(op, answer)
            return _outcome(op, _code(answer), answer)
        except _Malformed as exc:
            raise RailError("MALFORMED_RESPONSE", str(exc), definitive=False) from None

    def _verified(self, method: Method, response: HttpResponse) -> dict[str, object]:
        """The signed `*_response` object, or `RailError(definitive=False)`."""
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
        payload = json.loads(section[1])
        if not isinstance(payload, dict):  # signed_section only returns objects
            raise RailError("MALFORMED_RESPONSE", "answer is not an object", definitive=False)
        return payload

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
        if params.get("app_id") != self._creds.app_id:
            raise _unverifiable("notification for another app")
        if self._seller_id is not None and params.get("seller_id") != self._seller_id:
            raise _unverifiable("notification for another seller")
        try:
            return _notification(params)
        except _Malformed as exc:
            raise _unverifiable(str(exc)) from None

    def notification_reply(self, accepted: bool) -> HttpResponse:
        # Alipay stops resending only on a body of exactly `success`; `fail` makes it
        # resend on its schedule (a 200 keeps proxies from logging it as an outage).
        body = b"success" if accepted else b"fail"
        return HttpResponse(200, {"Content-Type": "text/plain; charset=utf-8"}, body)


def create_adapter(config: AdapterConfig) -> AlipayAdapter:
    """Entry-point factory; the bundle must already exist in `config.keys_dir`.

    Options: `app_auth_token` (a service provider acting for a merchant) and
    `seller_id` (the merchant PID that notifications must name).
    """
    if config.keys_dir is None:
        raise ValueError(f"rail {config.name!r}: the Alipay adapter needs keys_dir")
    return AlipayAdapter(
        config.name,
        config.base_url,
        protocol.load_bundle(config.keys_dir),
        app_auth_token=_option(config, "app_auth_token"),
        seller_id=_option(config, "seller_id"),
    )


def _option(config: AdapterConfig, key: str) -> str | None:
    value = config.options.get(key)
    if value is not None and not isinstance(value, str):
        raise ValueError(f"rail {config.name!r}: option {key} must be a string")
    return value


# --------------------------------------------------------------------------- request parts
def _out_no(value: str) -> str:
    if not protocol.valid_out_no(value):
        raise RailError(
            "INVALID_REQUEST",
            "order and refund numbers must be 1-64 of [A-Za-z0-9_]",
            definitive=True,
        )
    return value


def _yuan(amount: int, currency: str) -> str:
    if currency != "CNY" or not protocol.valid_fen(amount):
        raise RailError("INVALID_REQUEST", "amount must be 1..10^10 fen of CNY", definitive=True)
    return protocol.fen_to_yuan(amount)


def _charge_biz(op: Charge) -> dict[str, object]:
    biz: dict[str, object] = {
        "out_trade_no": _out_no(op.rail_order_no),
        "total_amount": _yuan(op.amount, op.currency),
        "subject": (op.description or op.rail_order_no)[:_SUBJECT_MAX],
    }
    for key in _PASSTHROUGH:
        if value := op.metadata.get(key):
            biz[key] = value
    return biz


def _payer_code(op: Charge) -> dict[str, object]:
    auth_code = op.payer.get("auth_code")
    if not auth_code:
        raise RailError("INVALID_REQUEST", "quickpay needs payer.auth_code", definitive=True)
    # Face payments present `fp…` codes and must be declared as such.
    scene = "security_code" if auth_code.startswith("fp") else "bar_code"
    return {"auth_code": auth_code, "scene": scene, "product_code": "FACE_TO_FACE_PAYMENT"}


def _buyer(op: Charge) -> dict[str, object]:
    keys = ("buyer_id", "buyer_open_id", "op_app_id", "op_buyer_open_id")
    buyer: dict[str, object] = {k: op.payer[k] for k in keys if op.payer.get(k)}
    if not ({"buyer_id", "buyer_open_id", "op_buyer_open_id"} & buyer.keys()):
        raise RailError(
            "INVALID_REQUEST",
            f"{op.scene} needs payer.buyer_id or payer.buyer_open_id",
            definitive=True,
        )
    return buyer


def _refund_biz(op: Refund) -> dict[str, object]:
    biz: dict[str, object] = {
        "out_trade_no": _out_no(op.rail_order_no),
        "refund_amount": _yuan(op.amount, op.currency),
        "out_request_no": _out_no(op.rail_refund_no),
    }
    if op.reason:
        biz["refund_reason"] = op.reason[:256]
    return biz


def _awaiting(action: Action) -> RailResult:
    return RailResult(RailStatus.REQUIRES_ACTION, action=action)


def _method_of(op: Operation) -> Method:
    match op:
        case Charge():
            methods = {
                "native": Method.PRECREATE,
                "quickpay": Method.PAY,
                "jsapi": Method.CREATE,
                "mini_program": Method.CREATE,
            }
            method = methods.get(op.scene)
            if method is None:  # app / h5 are answered by build: nothing to parse
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
        case _:
            assert_never(op)


# --------------------------------------------------------------------------- answer fields
def _str(obj: Mapping[str, object], key: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        raise _Malformed(f"field {key!r} missing or not a string")
    return value


def _opt_str(obj: Mapping[str, object], key: str) -> str | None:
    value = obj.get(key)
    return value if isinstance(value, str) and value else None


def _fen(obj: Mapping[str, object], key: str) -> int:
    try:
        return protocol.yuan_to_fen(_str(obj, key))
    except ValueError:
        raise _Malformed(f"field {key!r} is not an amount") from None


def _opt_fen(obj: Mapping[str, object], key: str) -> int | None:
    return _fen(obj, key) if key in obj else None


def _code(answer: Mapping[str, object]) -> Code:
    raw = answer.get("code")
    try:
        return Code(str(raw))
    except ValueError:
        raise _Malformed(f"unknown code {raw!r}") from None


def _check_identity(op: Operation, answer: Mapping[str, object]) -> None:
    """An answer naming another order or refund is never applied to this one."""
    named = _opt_str(answer, "out_trade_no")
    if named is not None and named != op.rail_order_no:
        raise _Malformed("answer is about another order")
    if isinstance(op, RefundQuery):
        refund = _opt_str(answer, "out_request_no")
        if refund is not None and refund != op.rail_refund_no:
            raise _Malformed("answer is about another refund")


# --------------------------------------------------------------------------- mapping
def _outcome(op: Operation, code: Code, answer: Mapping[str, object]) -> RailResult:
    match code:
        case Code.SUCCESS:
            return _success(op, answer)
        case Code.IN_PROGRESS:
            # Only trade.pay may answer 10003 (the payer is confirming on the phone).
            if isinstance(op, Charge) and op.scene == "quickpay":
                return RailResult(
                    RailStatus.PROCESSING, rail_reference=_opt_str(answer, "trade_no")
                )
            raise RailError("10003", "in progress", definitive=False)
        case Code.UNKNOWN_ERROR:
            raise _error(answer, code, definitive=False)
        case Code.AUTH_TOKEN_PROBLEM | Code.MISSING_PARAMETER | Code.INVALID_PARAMETER:
            # Configuration problems: the gateway refused before any business logic ran.
            raise _error(answer, code, definitive=True)
        case Code.BUSINESS_FAILED:
            return _business_failure(op, answer)
        case _:
            assert_never(code)


def _error(answer: Mapping[str, object], code: Code, *, definitive: bool) -> RailError:
    sub_code = _opt_str(answer, "sub_code") or code.value
    message = _opt_str(answer, "sub_msg") or _opt_str(answer, "msg") or sub_code
    return RailError(sub_code, message, definitive=definitive)


def _business_failure(op: Operation, answer: Mapping[str, object]) -> RailResult:
    raw = answer.get("sub_code")
    try:
        sub = SubCode(str(raw))
    except ValueError:
        # Undocumented: nothing proves that no money moved.
        raise _error(answer, Code.BUSINESS_FAILED, definitive=False) from None
    if isinstance(op, Reverse) and answer.get("retry_flag") == "Y":
        raise _error(answer, Code.BUSINESS_FAILED, definitive=False)
    match sub:
        case SubCode.SYSTEM_ERROR:
            raise _error(answer, Code.BUSINESS_FAILED, definitive=False)
        case SubCode.TRADE_HAS_SUCCESS:
            # A repeated trade.pay: paid, maybe by this very attempt earlier. Only a
            # query (same amount, buyer) can tell, so for a charge it proves nothing.
            raise _error(answer, Code.BUSINESS_FAILED, definitive=not isinstance(op, Charge))
        case SubCode.TRADE_NOT_EXIST:
            return _not_exist(op, answer)
        case SubCode.TRADE_HAS_CLOSE:
            if isinstance(op, Close | Reverse):
                return RailResult(RailStatus.CLOSED, rail_reference=_opt_str(answer, "trade_no"))
            raise _error(answer, Code.BUSINESS_FAILED, definitive=True)
        case (
            SubCode.CONTEXT_INCONSISTENT
            | SubCode.BUYER_BALANCE_NOT_ENOUGH
            | SubCode.BUYER_BANKCARD_BALANCE_NOT_ENOUGH
            | SubCode.PAYMENT_AUTH_CODE_INVALID
            | SubCode.TRADE_BUYER_NOT_MATCH
            | SubCode.TOTAL_FEE_EXCEED
            | SubCode.INVALID_PARAMETER
            | SubCode.REFUND_AMT_NOT_EQUAL_TOTAL
            | SubCode.SELLER_BALANCE_NOT_ENOUGH
            | SubCode.TRADE_HAS_FINISHED
            | SubCode.TRADE_STATUS_ERROR
        ):
            raise _error(answer, Code.BUSINESS_FAILED, definitive=True)
        case _:
            assert_never(sub)


def _not_exist(op: Operation, answer: Mapping[str, object]) -> RailResult:
    match op:
        case Query() | Close() | Reverse() | RefundQuery():
            # No proof of anything: an unscanned QR, or a lost trade.pay, looks the same.
            return RailResult(
                RailStatus.NOT_FOUND,
                failure_code=SubCode.TRADE_NOT_EXIST.value,
                failure_message=_opt_str(answer, "sub_msg"),
            )
        case Refund():
            raise _error(answer, Code.BUSINESS_FAILED, definitive=True)
        case Charge():
            raise _error(answer, Code.BUSINESS_FAILED, definitive=False)
        case _:
            assert_never(op)


def _success(op: Operation, answer: Mapping[str, object]) -> RailResult:
    match op:
        case Charge():
            return _charge_success(op, answer)
        case Query():
            return _trade_result(answer)
        case Close():
            return RailResult(RailStatus.CLOSED, rail_reference=_opt_str(answer, "trade_no"))
        case Reverse():
            return _cancel_result(answer)
        case Refund():
            return _refund_result(op, answer)
        case RefundQuery():
            return _refund_query_result(answer)
        case _:
            assert_never(op)


def _charge_success(op: Charge, answer: Mapping[str, object]) -> RailResult:
    if op.scene == "native":
        action = Action("qr_code", {"qr_code": _str(answer, "qr_code")})
        return RailResult(RailStatus.REQUIRES_ACTION, action=action)
    trade_no = _str(answer, "trade_no")
    if op.scene == "quickpay":
        return RailResult(
            RailStatus.SUCCEEDED, rail_reference=trade_no, amount=_fen(answer, "total_amount")
        )
    # jsapi / mini_program: the page passes trade_no to my.tradePay.
    action = Action("sdk_params", {"trade_no": trade_no})
    return RailResult(RailStatus.REQUIRES_ACTION, rail_reference=trade_no, action=action)


def _trade_result(trade: Mapping[str, object]) -> RailResult:
    try:
        status = TradeStatus(_str(trade, "trade_status"))
    except ValueError:
        raise _Malformed("unknown trade_status") from None
    ref = _opt_str(trade, "trade_no")
    amount = _opt_fen(trade, "total_amount")
    match status:
        case TradeStatus.WAIT_BUYER_PAY:
            # Query has no scene: a quickpay after 10003 looks the same (see README).
            return RailResult(RailStatus.REQUIRES_ACTION, rail_reference=ref, amount=amount)
        case TradeStatus.TRADE_SUCCESS | TradeStatus.TRADE_FINISHED:
            return RailResult(RailStatus.SUCCEEDED, rail_reference=ref, amount=amount)
        case TradeStatus.TRADE_CLOSED:
            # Unpaid and closed, or fully refunded: the core knows which from its history.
            return RailResult(RailStatus.CLOSED, rail_reference=ref, amount=amount)
        case _:
            assert_never(status)


def _cancel_result(answer: Mapping[str, object]) -> RailResult:
    if answer.get("retry_flag") == "Y":
        raise RailError("CANCEL_RETRY", "Alipay asks to repeat the cancel", definitive=False)
    # action close (was unpaid) or refund (money returned): nothing is kept either way.
    return RailResult(RailStatus.CLOSED, rail_reference=_opt_str(answer, "trade_no"))


def _refund_result(op: Refund, answer: Mapping[str, object]) -> RailResult:
    ref = _opt_str(answer, "trade_no")
    refunded = _opt_fen(answer, "refund_fee")
    if answer.get("fund_change") == "Y":
        return RailResult(
            RailStatus.SUCCEEDED, rail_reference=ref, amount=op.amount, refunded_amount=refunded
        )
    # N: this call moved nothing (a repeat, or still processing): ask the refund query.
    return RailResult(RailStatus.PROCESSING, rail_reference=ref, refunded_amount=refunded)


def _refund_query_result(answer: Mapping[str, object]) -> RailResult:
    status = _opt_str(answer, "refund_status")
    if status is None:
        # Absent means "not received or failed": the core then sends the refund again
        # with the same out_request_no, which Alipay applies at most once.
        return RailResult(RailStatus.NOT_FOUND)
    if status != _REFUND_SUCCESS:
        return RailResult(RailStatus.PROCESSING, failure_message=status)
    return RailResult(
        RailStatus.SUCCEEDED,
        rail_reference=_opt_str(answer, "trade_no"),
        amount=_opt_fen(answer, "refund_amount"),
    )


# --------------------------------------------------------------------------- notifications
def _unverifiable(reason: str) -> RailError:
    return RailError("NOTIFICATION_UNVERIFIABLE", reason, definitive=False)


def _notification(params: Mapping[str, str]) -> Notification:
    order_no = _str(params, "out_trade_no")
    result = _trade_result(params)
    refund_no = _opt_str(params, "out_biz_no")
    if refund_no is None:
        return Notification("payment", order_no, result)
    # A refund: TRADE_SUCCESS after a partial one, TRADE_CLOSED after the last one.
    refunded = _fen(params, "refund_fee")
    # The notification names the trade's total and the cumulative refund, never this
    # refund's own amount: `amount` stays unset rather than misleading a cross-check.
    refund = RailResult(
        RailStatus.SUCCEEDED, rail_reference=result.rail_reference, refunded_amount=refunded
    )
    return Notification("refund", order_no, refund, refund_no)
