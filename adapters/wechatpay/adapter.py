"""The WeChat Pay API v3 adapter: builds signed requests, checks and parses signed answers.

Direct-merchant mode by default; with `sub_mchid` in the options it speaks the
service-provider ("partner") dialect of the same calls. The bodies are in `wire`, the
mapping to and from canonical operations in `transformers`, the cryptography in
`protocol`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import assert_never, final
from urllib.parse import quote, urlencode, urlsplit

import msgspec

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
    Query,
    RailError,
    RailErrorCode,
    RailResult,
    RailStatus,
    Refund,
    RefundQuery,
    Reverse,
)
from adapters.wechatpay import protocol, transformers
from adapters.wechatpay.protocol import DecryptError, WeChatPayCredentials
from adapters.wechatpay.transformers import ENDPOINTS, Endpoint, checked_order_no, checked_refund_no
from adapters.wechatpay.wire import (
    ErrorAnswer,
    H5Prepay,
    Merchant,
    MerchantApp,
    NativePrepay,
    NotificationEnvelope,
    Prepay,
)
from adapters.wire import Malformed, decode

__all__ = ["PartnerIds", "WeChatPayAdapter", "create_adapter"]

_JSON = "application/json"
_SCENES = frozenset(ENDPOINTS)


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
    __slots__ = (
        "_app",
        "_base_url",
        "_clock",
        "_creds",
        "_merchant",
        "_name",
        "_nonce",
        "_partner",
    )

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
        # Who every call is for: the identity fields of its body.
        if partner is None:
            self._merchant = Merchant(mchid=credentials.mchid)
            self._app = MerchantApp(appid=credentials.appid, mchid=credentials.mchid)
        else:
            self._merchant = Merchant(sp_mchid=partner.sp_mchid, sub_mchid=partner.sub_mchid)
            self._app = MerchantApp(
                sp_appid=partner.sp_appid,
                sp_mchid=partner.sp_mchid,
                sub_mchid=partner.sub_mchid,
                sub_appid=partner.sub_appid or None,
            )

    def __repr__(self) -> str:
        mode = f"partner sub_mchid={self._partner.sub_mchid}" if self._partner else "direct"
        return f"WeChatPayAdapter(name={self._name!r}, base_url={self._base_url!r}, {mode})"

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
                endpoint = transformers.endpoint_for(op.scene)
                body = transformers.order_request(op, endpoint, self._app)
                return self._post(f"{self._orders_path}/{endpoint}", body)
            case Query():
                path = self._order_path(op.rail_order_no)
                return self._get(path, msgspec.to_builtins(self._merchant))
            case Close():
                return self._post(f"{self._order_path(op.rail_order_no)}/close", self._merchant)
            case Reverse():
                return self._post(f"{self._order_path(op.rail_order_no)}/reverse", self._app)
            case Refund():
                sub_mchid = self._partner.sub_mchid if self._partner else None
                refund = transformers.refund_request(op, sub_mchid)
                return self._post("/v3/refund/domestic/refunds", refund)
            case RefundQuery():
                path = f"/v3/refund/domestic/refunds/{_seg(checked_refund_no(op.rail_refund_no))}"
                sub = {"sub_mchid": self._partner.sub_mchid} if self._partner else {}
                return self._get(path, sub)
            case _:
                assert_never(op)

    @property
    def _orders_path(self) -> str:
        return "/v3/pay/partner/transactions" if self._partner else "/v3/pay/transactions"

    def _order_path(self, rail_order_no: str) -> str:
        return f"{self._orders_path}/out-trade-no/{_seg(checked_order_no(rail_order_no))}"

    def _get(self, path: str, query: Mapping[str, str]) -> HttpRequest:
        target = f"{path}?{urlencode(query)}" if query else path
        return self._signed("GET", target, b"")

    def _post(self, path: str, body: msgspec.Struct) -> HttpRequest:
        return self._signed("POST", path, msgspec.json.encode(body))

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
            return transformers.refusal_result(op, response.status, response.body, signed=signed)
        if not signed:
            raise RailError(
                "UNVERIFIABLE_RESPONSE",
                f"unsigned, stale or foreign-signed HTTP {response.status} answer",
                definitive=False,
            )
        try:
            return self._parse_success(op, response.status, response.body)
        except Malformed as exc:
            raise RailError(RailErrorCode.MALFORMED_RESPONSE, str(exc), definitive=False) from None

    def _parse_success(self, op: Operation, status: int, body: bytes) -> RailResult:
        if status == 202:
            return transformers.userpaying_result(op, body)
        match op:
            case Charge():
                return self._charge_result(op, body)
            case Query():
                return transformers.transaction_answer(body, op.rail_order_no)
            case Close():
                return RailResult(RailStatus.CLOSED)  # 204, no body
            case Reverse():
                return transformers.reverse_result(op, body)
            case Refund() | RefundQuery():
                return transformers.refund_answer(body, op.rail_refund_no)
            case _:
                assert_never(op)

    def _charge_result(self, op: Charge, body: bytes) -> RailResult:
        endpoint = ENDPOINTS[op.scene]
        match endpoint:
            case Endpoint.CODEPAY:
                return transformers.transaction_answer(body, op.rail_order_no, codepay=True)
            case Endpoint.NATIVE:
                url = decode(body, NativePrepay).code_url
                return _awaiting(Action(ActionType.QR_CODE, {"qr_code": url}))
            case Endpoint.H5:
                h5_url = decode(body, H5Prepay).h5_url
                return _awaiting(Action(ActionType.REDIRECT, {"url": h5_url}))
            case Endpoint.JSAPI | Endpoint.APP:
                prepay_id = decode(body, Prepay).prepay_id
                params = self._client_params(op, endpoint, prepay_id)
                return _awaiting(Action(ActionType.SDK_PARAMS, params))
            case _:
                assert_never(endpoint)

    def _client_params(self, op: Charge, endpoint: Endpoint, prepay_id: str) -> dict[str, str]:
        key, now, nonce = self._creds.merchant_private_key, self._clock(), self._nonce()
        p = self._partner
        if endpoint is Endpoint.APP:
            appid = (p.sub_appid or p.sp_appid) if p else self._creds.appid
            # Partner apps pay into the sub-merchant: it is the `partnerid` the app names.
            partner_id = p.sub_mchid if p else self._creds.mchid
            return protocol.app_params(key, appid, partner_id, prepay_id, now=now, nonce=nonce)
        appid = self._creds.appid
        if p is not None:
            uses_sub = transformers.jsapi_payer(op.payer, self._app).sub_openid is not None
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
                RailErrorCode.NOTIFICATION_UNVERIFIABLE,
                "bad, stale or foreign signature",
                definitive=False,
            )
        try:
            envelope = decode(body, NotificationEnvelope)
            if envelope.resource_type != "encrypt-resource":
                raise Malformed("resource_type is not encrypt-resource")
            resource = msgspec.structs.asdict(envelope.resource)
            plain = protocol.decrypt_resource(self._creds.apiv3_key, resource)
            return transformers.notification(envelope.event_type, plain, self._app)
        except (Malformed, DecryptError) as exc:
            raise RailError(
                RailErrorCode.NOTIFICATION_UNVERIFIABLE, str(exc), definitive=False
            ) from None

    def notification_reply(self, accepted: bool) -> HttpResponse:
        if accepted:
            return HttpResponse(204, {}, b"")
        refusal = ErrorAnswer(code="FAIL", message="notification rejected; query instead")
        return HttpResponse(400, {"Content-Type": _JSON}, msgspec.json.encode(refusal))


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


def _seg(value: str) -> str:
    return quote(value, safe="")


def _awaiting(action: Action) -> RailResult:
    return RailResult(RailStatus.REQUIRES_ACTION, action=action)
