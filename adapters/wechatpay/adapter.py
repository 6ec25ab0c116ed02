"""The WeChat Pay API v3 adapter: builds signed requests, checks and parses signed answers.

Direct-merchant mode by default; with `sub_mchid` in the options it speaks the
service-provider ("partner") dialect of the same calls.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import NoReturn, assert_never, final
from urllib.parse import quote, urlencode, urlsplit

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
from adapters.wechatpay import protocol
from adapters.wechatpay.protocol import RefundStatus, TradeState, WeChatPayCredentials

__all__ = ["SCENES", "PartnerIds", "WeChatPayAdapter", "create_adapter"]

# Router scene -> the v3 order endpoint that serves it.
_ENDPOINTS: Mapping[str, str] = {
    "quickpay": "codepay",
    "native": "native",
    "jsapi": "jsapi",
    "mini_program": "jsapi",
    "app": "app",
    "h5": "h5",
}
SCENES = frozenset(_ENDPOINTS)

_JSON = "application/json"
MAX_DESCRIPTION = 127
DEFAULT_STORE_ID = "default"
H5_TYPES = frozenset({"iOS", "Android", "Wap"})

# Refusals after which WeChat provably moved no money for this call (fact sheet, errors).
_DEFINITIVE: Mapping[int, frozenset[str]] = {
    400: frozenset(
        {
            "PARAM_ERROR",
            "INVALID_REQUEST",
            "APPID_MCHID_NOT_MATCH",
            "MCH_NOT_EXISTS",
            "ORDER_CLOSED",
            "ORDERPAID",  # close of a paid order: refused, nothing changed
        }
    ),
    401: frozenset({"SIGN_ERROR"}),
    403: frozenset(
        {
            "NO_AUTH",
            "OUT_TRADE_NO_USED",
            "NOTENOUGH",
            "TRADE_ERROR",
            "RULELIMIT",
            "ACCOUNTERROR",
            "NOT_ENOUGH",
            "USER_ACCOUNT_ABNORMAL",
        }
    ),
    404: frozenset({"ORDER_NOT_EXIST", "ORDERNOTEXIST", "RESOURCE_NOT_EXISTS"}),
}
_LOOKUP_MISSES = frozenset({"ORDER_NOT_EXIST", "ORDERNOTEXIST", "RESOURCE_NOT_EXISTS"})


class _Malformed(Exception):
    """A signed body that does not have the documented shape."""


@final
@dataclass(frozen=True, slots=True)
class PartnerIds:
    """Service-provider mode: the provider (sp_*) acts for one sub-merchant (sub_*)."""

    sp_mchid: str
    sp_appid: str
    sub_mchid: str
    sub_appid: str | None = None


@final
class WeChatPayAdapter:
    __slots__ = ("_base_url", "_clock", "_creds", "_name", "_nonce", "_partner")

    def __init__(
        self,
        name: str,
        base_url: str,
        credentials: WeChatPayCredentials,
        *,
        partner: PartnerIds | None = None,
        clock: Callable[[], float] = time.time,
        nonce: Callable[[], str] = protocol.new_nonce,
    ) -> None:
        if partner is not None and partner.sp_mchid != credentials.mchid:
            raise ValueError("sp_mchid must be the mchid of the credential bundle that signs")
        self._name = name
        self._base_url = base_url.rstrip("/")
        self._creds = credentials
        self._partner = partner
        self._clock = clock
        self._nonce = nonce

    def __repr__(self) -> str:
        mode = f"partner sub_mchid={self._partner.sub_mchid}" if self._partner else "direct"
        return f"WeChatPayAdapter(name={self._name!r}, base_url={self._base_url!r}, {mode})"

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
                no = _checked_order_no(op.rail_order_no)
                return self._get(f"{self._orders_path}/out-trade-no/{_seg(no)}", self._mch_query)
            case Close():
                no = _checked_order_no(op.rail_order_no)
                path = f"{self._orders_path}/out-trade-no/{_seg(no)}/close"
                return self._post(path, self._mch_fields)
            case Reverse():
                no = _checked_order_no(op.rail_order_no)
                path = f"{self._orders_path}/out-trade-no/{_seg(no)}/reverse"
                return self._post(path, self._app_fields)
            case Refund():
                return self._build_refund(op)
            case RefundQuery():
                path = f"/v3/refund/domestic/refunds/{_seg(_checked_refund_no(op.rail_refund_no))}"
                sub = {"sub_mchid": self._partner.sub_mchid} if self._partner else {}
                return self._get(path, sub)
            case _:
                assert_never(op)

    @property
    def _orders_path(self) -> str:
        return "/v3/pay/partner/transactions" if self._partner else "/v3/pay/transactions"

    @property
    def _mch_fields(self) -> dict[str, object]:
        if self._partner:
            return {"sp_mchid": self._partner.sp_mchid, "sub_mchid": self._partner.sub_mchid}
        return {"mchid": self._creds.mchid}

    @property
    def _mch_query(self) -> dict[str, str]:
        return {k: str(v) for k, v in self._mch_fields.items()}

    @property
    def _app_fields(self) -> dict[str, object]:
        p = self._partner
        if p is None:
            return {"appid": self._creds.appid, "mchid": self._creds.mchid}
        fields: dict[str, object] = {
            "sp_appid": p.sp_appid,
            "sp_mchid": p.sp_mchid,
            "sub_mchid": p.sub_mchid,
        }
        if p.sub_appid:
            fields["sub_appid"] = p.sub_appid
        return fields

    def _build_charge(self, op: Charge) -> HttpRequest:
        endpoint = _ENDPOINTS.get(op.scene)
        if endpoint is None:
            _refuse(f"scene {op.scene!r} is not offered by WeChat Pay")
        _check_money(op.amount, op.currency)
        body: dict[str, object] = {
            **self._app_fields,
            "description": (op.description or op.rail_order_no)[:MAX_DESCRIPTION],
            "out_trade_no": _checked_order_no(op.rail_order_no),
            "amount": {"total": op.amount, "currency": op.currency},
        }
        if endpoint != "codepay":  # WeChat never notifies codepay orders
            body["notify_url"] = op.notify_url
        body.update(self._scene_fields(op, endpoint))
        return self._post(f"{self._orders_path}/{endpoint}", body)

    def _scene_fields(self, op: Charge, endpoint: str) -> dict[str, object]:
        if endpoint == "codepay":
            auth_code = _required(op.payer, "auth_code", "quickpay needs payer.auth_code")
            store: dict[str, object] = {"out_id": op.metadata.get("store_id") or DEFAULT_STORE_ID}
            scene: dict[str, object] = {"store_info": store}
            if op.metadata.get("device_id"):
                scene["device_id"] = op.metadata["device_id"]
            return {"payer": {"auth_code": auth_code}, "scene_info": scene}
        if endpoint == "jsapi":
            return {"payer": self._jsapi_payer(op.payer)}
        if endpoint == "h5":
            ip = _required(op.payer, "client_ip", "h5 needs payer.client_ip")
            h5_type = op.payer.get("h5_type") or op.metadata.get("h5_type") or "Wap"
            if h5_type not in H5_TYPES:
                _refuse(f"h5_type must be one of {sorted(H5_TYPES)}")
            return {"scene_info": {"payer_client_ip": ip, "h5_info": {"type": h5_type}}}
        return {}

    def _jsapi_payer(self, payer: Mapping[str, str]) -> dict[str, object]:
        if self._partner is None:
            return {"openid": _required(payer, "openid", "jsapi needs payer.openid")}
        for key in ("sub_openid", "sp_openid"):
            if payer.get(key):
                return {key: payer[key]}
        openid = _required(payer, "openid", "jsapi needs payer.openid")
        # A plain openid belongs to the sub-merchant's app when there is one.
        return {"sub_openid" if self._partner.sub_appid else "sp_openid": openid}

    def _build_refund(self, op: Refund) -> HttpRequest:
        _check_money(op.amount, op.currency)
        if type(op.total) is not int or op.total < op.amount:
            _refuse("refund total must be the order amount, at least the refund")
        body: dict[str, object] = {
            "out_trade_no": _checked_order_no(op.rail_order_no),
            "out_refund_no": _checked_refund_no(op.rail_refund_no),
            "amount": {"refund": op.amount, "total": op.total, "currency": op.currency},
        }
        if self._partner:
            body["sub_mchid"] = self._partner.sub_mchid
        if op.reason:
            body["reason"] = op.reason[:80]
        if op.notify_url:
            body["notify_url"] = op.notify_url
        return self._post("/v3/refund/domestic/refunds", body)

    def _get(self, path: str, query: Mapping[str, str]) -> HttpRequest:
        target = f"{path}?{urlencode(query)}" if query else path
        return self._signed("GET", target, b"")

    def _post(self, path: str, payload: Mapping[str, object]) -> HttpRequest:
        return self._signed("POST", path, _dump(payload))

    def _signed(self, method: str, path: str, body: bytes) -> HttpRequest:
        url = self._base_url + path
        # Sign what the server will see: any path prefix in base_url included.
        split = urlsplit(url)
        target = split.path + (f"?{split.query}" if split.query else "")
        headers = protocol.sign_request(
            self._creds, method, target, body, now=self._clock(), nonce=self._nonce()
        )
        return HttpRequest(method=method, url=url, headers=headers, body=body)

    # ----------------------------------------------------------------------- parse
    def parse(self, op: Operation, response: HttpResponse) -> RailResult:
        signed = protocol.verify_response(
            self._creds.platform_public_key,
            self._creds.platform_public_key_id,
            response.headers,
            response.body,
            now=self._clock(),
        )
        if not 200 <= response.status < 300:
            return _parse_refusal(op, response.status, response.body, signed=signed)
        if not signed:
            raise RailError(
                "UNVERIFIABLE_RESPONSE",
                f"unsigned, stale or foreign-signed HTTP {response.status} answer",
                definitive=False,
            )
        try:
            return self._parse_success(op, response.status, response.body)
        except _Malformed as exc:
            raise RailError("MALFORMED_RESPONSE", str(exc), definitive=False) from None

    def _parse_success(self, op: Operation, status: int, body: bytes) -> RailResult:
        if status == 202:
            return _userpaying(op, body)
        match op:
            case Charge():
                return self._charge_result(op, _load(body))
            case Query():
                tx = _load(body)
                _same(tx, "out_trade_no", op.rail_order_no)
                return _transaction_result(tx)
            case Close():
                return RailResult(RailStatus.CLOSED)  # 204, no body
            case Reverse():
                return _reverse_result(op, body)
            case Refund() | RefundQuery():
                refund = _load(body)
                _same(refund, "out_refund_no", op.rail_refund_no)
                return _refund_result(refund, _str(refund, "status"))
            case _:
                assert_never(op)

    def _charge_result(self, op: Charge, payload: dict[str, object]) -> RailResult:
        endpoint = _ENDPOINTS[op.scene]
        if endpoint == "codepay":
            _same(payload, "out_trade_no", op.rail_order_no)
            return _transaction_result(payload, codepay=True)
        if endpoint == "native":
            url = _str(payload, "code_url")
            return RailResult(
                RailStatus.REQUIRES_ACTION, action=Action("qr_code", {"qr_code": url})
            )
        if endpoint == "h5":
            url = _str(payload, "h5_url")
            return RailResult(RailStatus.REQUIRES_ACTION, action=Action("redirect", {"url": url}))
        prepay_id = _str(payload, "prepay_id")
        params = self._client_params(op, endpoint, prepay_id)
        return RailResult(RailStatus.REQUIRES_ACTION, action=Action("sdk_params", params))

    def _client_params(self, op: Charge, endpoint: str, prepay_id: str) -> dict[str, str]:
        key, now, nonce = self._creds.merchant_private_key, self._clock(), self._nonce()
        p = self._partner
        if endpoint == "app":
            appid = (p.sub_appid or p.sp_appid) if p else self._creds.appid
            # Partner apps pay into the sub-merchant: it is the `partnerid` the app names.
            partner_id = p.sub_mchid if p else self._creds.mchid
            return protocol.app_params(key, appid, partner_id, prepay_id, now=now, nonce=nonce)
        appid = self._creds.appid
        if p is not None:
            uses_sub = "sub_openid" in self._jsapi_payer(op.payer)
            appid = p.sub_appid if uses_sub and p.sub_appid else p.sp_appid
        return protocol.jsapi_params(key, appid, prepay_id, now=now, nonce=nonce)

    # ----------------------------------------------------------------------- notifications
    def verify_notification(self, headers: Mapping[str, str], body: bytes) -> Notification:
        if not protocol.verify_response(
            self._creds.platform_public_key,
            self._creds.platform_public_key_id,
            headers,
            body,
            now=self._clock(),
        ):
            raise RailError(
                "NOTIFICATION_UNVERIFIABLE", "bad, stale or foreign signature", definitive=False
            )
        try:
            envelope = _load(body)
            if envelope.get("resource_type") != "encrypt-resource":
                raise _Malformed("resource_type is not encrypt-resource")
            event = _str(envelope, "event_type")
            plain = _load(
                protocol.decrypt_resource(self._creds.apiv3_key, _obj(envelope, "resource"))
            )
            return self._notification(event, plain)
        except (_Malformed, protocol.DecryptError) as exc:
            raise RailError("NOTIFICATION_UNVERIFIABLE", str(exc), definitive=False) from None

    def _notification(self, event: str, plain: Mapping[str, object]) -> Notification:
        if event == "TRANSACTION.SUCCESS":
            self._check_owner(plain, payment=True)
            return Notification("payment", _str(plain, "out_trade_no"), _transaction_result(plain))
        if event in ("REFUND.SUCCESS", "REFUND.ABNORMAL", "REFUND.CLOSED"):
            self._check_owner(plain, payment=False)
            return Notification(
                "refund",
                _str(plain, "out_trade_no"),
                _refund_result(plain, _str(plain, "refund_status")),
                _str(plain, "out_refund_no"),
            )
        raise _Malformed(f"unknown event_type {event!r}")

    def _check_owner(self, plain: Mapping[str, object], *, payment: bool) -> None:
        """A message for another merchant (or app) must never settle one of ours."""
        p = self._partner
        if p is None:
            expected = {"mchid": self._creds.mchid}
            if payment:
                expected["appid"] = self._creds.appid
        else:
            expected = {"sp_mchid": p.sp_mchid, "sub_mchid": p.sub_mchid}
            if payment:
                expected["sp_appid"] = p.sp_appid
        for key, value in expected.items():
            _same(plain, key, value)

    def notification_reply(self, accepted: bool) -> HttpResponse:
        if accepted:
            return HttpResponse(204, {}, b"")
        body = _dump({"code": "FAIL", "message": "notification rejected; query instead"})
        return HttpResponse(400, {"Content-Type": _JSON}, body)


def create_adapter(config: AdapterConfig) -> WeChatPayAdapter:
    """Entry-point factory; the bundle must already exist in `config.keys_dir`.

    Options `sub_mchid` (turns partner mode on), `sub_appid`, `sp_mchid` (defaults to,
    and must equal, the bundle's mchid) and `sp_appid` (defaults to the bundle's appid).
    """
    if config.keys_dir is None:
        raise ValueError(f"rail {config.name!r}: the wechatpay adapter needs keys_dir")
    creds = protocol.load_bundle(config.keys_dir)
    return WeChatPayAdapter(
        config.name, config.base_url, creds, partner=_partner_ids(config, creds)
    )


def _partner_ids(config: AdapterConfig, creds: WeChatPayCredentials) -> PartnerIds | None:
    opts = {k: config.options.get(k) for k in ("sp_mchid", "sp_appid", "sub_mchid", "sub_appid")}
    for key, value in opts.items():
        if value is not None and not (isinstance(value, str) and value):
            raise ValueError(f"rail {config.name!r}: option {key} must be a non-empty string")
    if opts["sub_mchid"] is None:
        if any(v is not None for v in opts.values()):
            raise ValueError(f"rail {config.name!r}: partner options need sub_mchid")
        return None
    return PartnerIds(
        sp_mchid=str(opts["sp_mchid"] or creds.mchid),
        sp_appid=str(opts["sp_appid"] or creds.appid),
        sub_mchid=str(opts["sub_mchid"]),
        sub_appid=str(opts["sub_appid"]) if opts["sub_appid"] else None,
    )


# --------------------------------------------------------------------------- build helpers
def _refuse(message: str) -> NoReturn:
    # Raised before anything is sent: nothing can have moved.
    raise RailError("INVALID_REQUEST", message, definitive=True)


def _required(fields: Mapping[str, str], key: str, message: str) -> str:
    value = fields.get(key)
    if not value:
        _refuse(message)
    return value


def _checked_order_no(value: str) -> str:
    if not protocol.valid_out_trade_no(value):
        _refuse("rail_order_no must be 6-32 characters of [0-9A-Za-z_-]")
    return value


def _checked_refund_no(value: str) -> str:
    if not protocol.valid_out_refund_no(value):
        _refuse("rail_refund_no must be 1-64 characters of [0-9A-Za-z_-]")
    return value


def _check_money(amount: int, currency: str) -> None:
    if not protocol.valid_amount(amount):
        _refuse("amount must be a positive integer of fen")
    if currency != "CNY":
        _refuse(f"currency {currency!r} is not supported (CNY only)")


def _seg(value: str) -> str:
    return quote(value, safe="")


def _dump(payload: Mapping[str, object]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


# --------------------------------------------------------------------------- parse helpers
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
    if not isinstance(value, str) or not value:
        raise _Malformed(f"field {key!r} missing or not a string")
    return value


def _opt_str(obj: Mapping[str, object], key: str) -> str | None:
    value = obj.get(key)
    return value if isinstance(value, str) and value else None


def _obj(obj: Mapping[str, object], key: str) -> dict[str, object]:
    value = obj.get(key)
    if not isinstance(value, dict):
        raise _Malformed(f"field {key!r} missing or not an object")
    return value


def _opt_int(obj: Mapping[str, object], outer: str, key: str) -> int | None:
    inner = obj.get(outer)
    value = inner.get(key) if isinstance(inner, dict) else None
    return value if type(value) is int else None


def _same(obj: Mapping[str, object], key: str, expected: str) -> None:
    if _str(obj, key) != expected:
        raise _Malformed(f"answer names another {key}")


def _userpaying(op: Operation, body: bytes) -> RailResult:
    """202: the payer is still confirming (codepay): poll; a reverse must be retried."""
    code = _opt_str(_load(body), "code") if body else None
    if isinstance(op, Charge | Query):
        return RailResult(RailStatus.PROCESSING, failure_code=code)
    raise RailError(code or "USERPAYING", "HTTP 202: payer still confirming", definitive=False)


def _reverse_result(op: Reverse, body: bytes) -> RailResult:
    # The reverse answer only echoes ids; a Transaction-shaped answer is honoured too.
    if not body:
        return RailResult(RailStatus.CLOSED)
    payload = _load(body)
    _same(payload, "out_trade_no", op.rail_order_no)
    if "trade_state" in payload:
        return _transaction_result(payload)
    return RailResult(RailStatus.CLOSED)


def _transaction_result(tx: Mapping[str, object], *, codepay: bool = False) -> RailResult:
    try:
        state = TradeState(_str(tx, "trade_state"))
    except ValueError:
        raise _Malformed("unknown trade_state") from None
    ref = _opt_str(tx, "transaction_id")
    amount = _opt_int(tx, "amount", "total")
    match state:
        case TradeState.NOTPAY:
            # A codepay order is never waiting for the payer to act: it is being decided.
            waiting = not codepay and tx.get("trade_type") != "MICROPAY"
            status = RailStatus.REQUIRES_ACTION if waiting else RailStatus.PROCESSING
            return RailResult(status, rail_reference=ref, amount=amount)
        case TradeState.USERPAYING:
            return RailResult(RailStatus.PROCESSING, rail_reference=ref, amount=amount)
        case TradeState.SUCCESS | TradeState.REFUND:
            # REFUND: paid, refunds started; the router sums refunds itself.
            return RailResult(RailStatus.SUCCEEDED, rail_reference=ref, amount=amount)
        case TradeState.PAYERROR:
            return RailResult(
                RailStatus.FAILED,
                rail_reference=ref,
                amount=amount,
                failure_code="PAYERROR",
                failure_message=_opt_str(tx, "trade_state_desc"),
            )
        case TradeState.CLOSED | TradeState.REVOKED:
            return RailResult(
                RailStatus.CLOSED, rail_reference=ref, amount=amount, failure_code=state.value
            )
        case _:
            assert_never(state)


def _refund_result(refund: Mapping[str, object], status_text: str) -> RailResult:
    try:
        status = RefundStatus(status_text)
    except ValueError:
        raise _Malformed("unknown refund status") from None
    ref = _str(refund, "refund_id")
    amount = _opt_int(refund, "amount", "refund")
    match status:
        case RefundStatus.PROCESSING:
            return RailResult(RailStatus.PROCESSING, rail_reference=ref, amount=amount)
        case RefundStatus.SUCCESS:
            return RailResult(RailStatus.SUCCEEDED, rail_reference=ref, amount=amount)
        case RefundStatus.CLOSED | RefundStatus.ABNORMAL:
            # ABNORMAL: the payer's account is unreachable; the amount stays reserved
            # until someone fixes it by hand, so the refund has not succeeded.
            return RailResult(
                RailStatus.FAILED,
                rail_reference=ref,
                amount=amount,
                failure_code=f"REFUND_{status.value}",
            )
        case _:
            assert_never(status)


def _parse_refusal(op: Operation, status: int, body: bytes, *, signed: bool) -> RailResult:
    try:
        payload = _load(body)
        code = _str(payload, "code")
    except _Malformed:
        raise RailError(
            f"HTTP_{status}", "answer without an error code", definitive=False
        ) from None
    message = _opt_str(payload, "message") or code
    if not signed:
        # Only a refusal WeChat signed may fail a payment; anything else is unknown.
        raise RailError(code, f"HTTP {status} (unsigned): {message}", definitive=False)
    if status == 404 and code in _LOOKUP_MISSES and isinstance(op, Query | RefundQuery):
        return RailResult(RailStatus.NOT_FOUND, failure_code=code, failure_message=message)
    if code == "ORDER_CLOSED" and isinstance(op, Charge | Query | Close | Reverse):
        return RailResult(RailStatus.CLOSED, failure_code=code, failure_message=message)
    definitive = code in _DEFINITIVE.get(status, frozenset())
    if code == "ORDERPAID" and isinstance(op, Charge):
        definitive = False  # the order exists and is paid: only a query tells the rest
    if definitive:
        raise RailError(code, message, definitive=True)
    # 5xx, 429, 202-less USERPAYING and anything undocumented: maybe applied, maybe not.
    raise RailError(code, f"HTTP {status}: {message}", definitive=False)
