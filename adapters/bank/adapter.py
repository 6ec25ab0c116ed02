"""The bank rail adapter: builds signed requests, checks and parses signed answers."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import assert_never, final
from urllib.parse import quote, urlsplit

from adapters.bank import protocol
from adapters.bank.protocol import BankCredentials, OrderStatus, RefundStatus
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

__all__ = ["BankAdapter", "create_adapter"]

SCENES = frozenset({"quickpay", "native"})

_JSON = "application/json"

# Refusals after which the bank provably moved no money for this call.
_DEFINITIVE: Mapping[int, frozenset[str]] = {
    400: frozenset({"INVALID_REQUEST"}),
    402: frozenset({"INSUFFICIENT_FUNDS", "CARD_DECLINED"}),
    404: frozenset({"ORDER_NOT_FOUND", "REFUND_NOT_FOUND"}),
    409: frozenset(
        {
            "DUPLICATE_ORDER_NO",
            "ORDER_CLOSED",
            "ORDER_PAID",
            "ORDER_NOT_PAID",
            "DUPLICATE_REFUND_NO",
        }
    ),
    422: frozenset({"REFUND_EXCEEDS_AMOUNT"}),
}


class _Malformed(Exception):
    """A signed body that does not have the documented shape."""


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
        return SCENES

    # ----------------------------------------------------------------------- build
    def build(self, op: Operation) -> HttpRequest | RailResult:
        match op:
            case Charge():
                return self._build_charge(op)
            case Query():
                return self._get(f"/v1/orders/{_seg(op.rail_order_no)}")
            case Close():
                return self._post(f"/v1/orders/{_seg(op.rail_order_no)}/close", {})
            case Reverse():
                return self._post(f"/v1/orders/{_seg(op.rail_order_no)}/reverse", {})
            case Refund():
                _check_money(op.amount, op.currency)
                body: dict[str, object] = {
                    "order_no": op.rail_order_no,
                    "refund_no": op.rail_refund_no,
                    "amount": op.amount,
                    "reason": op.reason,
                    "notify_url": op.notify_url,
                }
                return self._post("/v1/refunds", body)
            case RefundQuery():
                return self._get(f"/v1/refunds/{_seg(op.rail_refund_no)}")
            case _:
                assert_never(op)

    def _build_charge(self, op: Charge) -> HttpRequest:
        _check_money(op.amount, op.currency)
        common: dict[str, object] = {
            "order_no": op.rail_order_no,
            "amount": op.amount,
            "currency": op.currency,
            "description": op.description,
        }
        if op.scene == "quickpay":
            auth_code = op.payer.get("auth_code")
            if not auth_code:
                raise RailError(
                    "INVALID_REQUEST", "quickpay needs payer.auth_code", definitive=True
                )
            return self._post("/v1/charges", {**common, "auth_code": auth_code})
        if op.scene == "native":
            return self._post("/v1/qr-orders", {**common, "notify_url": op.notify_url})
        raise RailError(
            "INVALID_REQUEST", f"scene {op.scene!r} is not offered by the bank", definitive=True
        )

    def _get(self, path: str) -> HttpRequest:
        return self._signed("GET", path, b"")

    def _post(self, path: str, payload: Mapping[str, object]) -> HttpRequest:
        return self._signed("POST", path, _dump(payload))

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
            payload = _load(response.body)
            if 200 <= response.status < 300:
                return _parse_success(op, payload)
            return _parse_refusal(op, response.status, payload)
        except _Malformed as exc:
            raise RailError("MALFORMED_RESPONSE", str(exc), definitive=False) from None

    # ----------------------------------------------------------------------- notifications
    def verify_notification(self, headers: Mapping[str, str], body: bytes) -> Notification:
        if not protocol.verify_notification_headers(
            self._creds.hmac_key, headers, body, now=self._clock()
        ):
            raise RailError("NOTIFICATION_UNVERIFIABLE", "bad or stale signature", definitive=False)
        try:
            return _parse_notification(_load(body))
        except _Malformed as exc:
            raise RailError("NOTIFICATION_UNVERIFIABLE", str(exc), definitive=False) from None

    def notification_reply(self, accepted: bool) -> HttpResponse:
        if accepted:
            return HttpResponse(200, {"Content-Type": _JSON}, b'{"ok":true}')
        return HttpResponse(400, {"Content-Type": _JSON}, b'{"ok":false}')


def create_adapter(config: AdapterConfig) -> BankAdapter:
    """Entry-point factory; the bundle must already exist in `config.keys_dir`."""
    if config.keys_dir is None:
        raise ValueError(f"rail {config.name!r}: the bank adapter needs keys_dir")
    return BankAdapter(config.name, config.base_url, protocol.load_bundle(config.keys_dir))


# --------------------------------------------------------------------------- helpers
def _seg(value: str) -> str:
    return quote(value, safe="")


def _dump(payload: Mapping[str, object]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _check_money(amount: int, currency: str) -> None:
    if not protocol.valid_amount(amount):
        raise RailError(
            "INVALID_REQUEST", "amount must be a positive integer of minor units", definitive=True
        )
    if not protocol.valid_currency(currency):
        raise RailError(
            "INVALID_REQUEST", f"currency {currency!r} is not supported", definitive=True
        )


def _load(body: bytes) -> dict[str, object]:
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise _Malformed("body is not JSON") from None
    if not isinstance(payload, dict):
        raise _Malformed("body is not a JSON object")
    return payload


def _str(obj: Mapping[str, object], key: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str):
        raise _Malformed(f"field {key!r} missing or not a string")
    return value


def _opt_str(obj: Mapping[str, object], key: str) -> str | None:
    value = obj.get(key)
    return value if isinstance(value, str) else None


def _int(obj: Mapping[str, object], key: str) -> int:
    value = obj.get(key)
    if type(value) is not int:
        raise _Malformed(f"field {key!r} missing or not an integer")
    return value


def _obj(obj: Mapping[str, object], key: str) -> dict[str, object]:
    value = obj.get(key)
    if not isinstance(value, dict):
        raise _Malformed(f"field {key!r} missing or not an object")
    return value


def _parse_success(op: Operation, payload: dict[str, object]) -> RailResult:
    match op:
        case Refund() | RefundQuery():
            if _str(payload, "refund_no") != op.rail_refund_no:
                raise _Malformed("answer is about another refund")
            return _refund_result(payload)
        case Charge() | Query() | Close() | Reverse():
            if _str(payload, "order_no") != op.rail_order_no:
                raise _Malformed("answer is about another order")
            return _order_result(payload)
        case _:
            assert_never(op)


def _parse_refusal(op: Operation, status: int, payload: dict[str, object]) -> RailResult:
    code = _str(payload, "code")
    message = _opt_str(payload, "message") or code
    if status == 404 and _is_lookup_miss(op, code):
        return RailResult(RailStatus.NOT_FOUND, failure_code=code, failure_message=message)
    if status == 401 or code in _DEFINITIVE.get(status, frozenset()):
        raise RailError(code, message, definitive=True)
    # 5xx and anything undocumented: the call may or may not have been applied.
    raise RailError(code, f"HTTP {status}: {message}", definitive=False)


def _is_lookup_miss(op: Operation, code: str) -> bool:
    if isinstance(op, Query):
        return code == "ORDER_NOT_FOUND"
    if isinstance(op, RefundQuery):
        return code == "REFUND_NOT_FOUND"
    return False


def _order_result(order: Mapping[str, object]) -> RailResult:
    try:
        status = OrderStatus(_str(order, "status"))
    except ValueError:
        raise _Malformed("unknown order status") from None
    ref = _str(order, "bank_txn_id")
    amount = _int(order, "amount")
    refunded = _int(order, "refunded")
    match status:
        case OrderStatus.WAITING:
            qr = _opt_str(order, "qr_code")
            action = Action("qr_code", {"qr_code": qr}) if qr else None
            return RailResult(
                RailStatus.REQUIRES_ACTION, rail_reference=ref, action=action, amount=amount
            )
        case OrderStatus.PAYING:
            return RailResult(RailStatus.PROCESSING, rail_reference=ref, amount=amount)
        case OrderStatus.SUCCESS:
            return RailResult(
                RailStatus.SUCCEEDED, rail_reference=ref, amount=amount, refunded_amount=refunded
            )
        case OrderStatus.FAILED:
            return RailResult(
                RailStatus.FAILED,
                rail_reference=ref,
                amount=amount,
                failure_code=_opt_str(order, "failure_code") or "PAYMENT_FAILED",
                failure_message=_opt_str(order, "failure_message"),
            )
        case OrderStatus.CLOSED | OrderStatus.REVERSED:
            return RailResult(
                RailStatus.CLOSED, rail_reference=ref, amount=amount, refunded_amount=refunded
            )
        case _:
            assert_never(status)


def _refund_result(refund: Mapping[str, object]) -> RailResult:
    try:
        status = RefundStatus(_str(refund, "status"))
    except ValueError:
        raise _Malformed("unknown refund status") from None
    ref = _str(refund, "bank_refund_id")
    amount = _int(refund, "amount")
    match status:
        case RefundStatus.PROCESSING:
            return RailResult(RailStatus.PROCESSING, rail_reference=ref, amount=amount)
        case RefundStatus.SUCCESS:
            return RailResult(RailStatus.SUCCEEDED, rail_reference=ref, amount=amount)
        case RefundStatus.FAILED:
            return RailResult(
                RailStatus.FAILED,
                rail_reference=ref,
                amount=amount,
                failure_code=_opt_str(refund, "failure_code") or "REFUND_FAILED",
            )
        case _:
            assert_never(status)


def _parse_notification(payload: Mapping[str, object]) -> Notification:
    event = _str(payload, "event")
    _str(payload, "id")
    data = _obj(payload, "data")
    if event in ("order.paid", "order.failed"):
        return Notification("payment", _str(data, "order_no"), _order_result(data))
    if event == "refund.succeeded":
        return Notification(
            "refund", _str(data, "order_no"), _refund_result(data), _str(data, "refund_no")
        )
    raise _Malformed(f"unknown event {event!r}")
