"""The WeChat Pay API v3 adapter: builds signed requests, checks and parses signed answers.

Direct-merchant mode by default; with `sub_mchid` in the options it speaks the
service-provider ("partner") dialect of the same calls (payouts and Pay Score excepted).
The bodies are in `wire`, the mapping to and from canonical operations in `transformers`
(payouts in `payouts`, profit sharing in `profit_sharing`, Pay Score holds in `payscore`,
refusals in `refusals`), the cryptography in `protocol`. With `global = true` it speaks the
Global API of an overseas merchant (`global_pay`); e-invoices are in `fapiao`, the day's
trade bill in `bills`.
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
from adapters.wechatpay import (
    bills,
    fapiao,
    payouts,
    payscore,
    profit_sharing,
    protocol,
    transformers,
)
from adapters.wechatpay.global_pay import GlobalApi, global_mcc
from adapters.wechatpay.payouts import TransferScene
from adapters.wechatpay.payscore import PayScoreService
from adapters.wechatpay.protocol import DecryptError, WeChatPayCredentials
from adapters.wechatpay.refusals import refusal_result
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
        "_global",
        "_merchant",
        "_name",
        "_nonce",
        "_partner",
        "_payscore",
        "_tax_code",
        "_transfer_scene",
    )

    def __init__(
        self,
        name: str,
        base_url: str,
        credentials: WeChatPayCredentials,
        *,
        partner: PartnerIds | None = None,
        transfer_scene: TransferScene = payouts.DEFAULT_SCENE,
        payscore_service: PayScoreService = PayScoreService(),  # noqa: B008 (frozen)
        global_mcc: str | None = None,  # cross-border: the Global API, with this MCC
        fapiao_tax_code: str = fapiao.DEFAULT_TAX_CODE,
        clock: Callable[[], float] = time.time,
        nonce: Callable[[], str] = protocol.new_nonce,
    ) -> None:
        if partner is not None and partner.sp_mchid != credentials.mchid:
            raise ValueError("sp_mchid must be the mchid of the credential bundle that signs")
        self._name = name
        self._base_url = base_url.rstrip("/")
        self._creds = credentials
        self._partner = partner
        self._transfer_scene = transfer_scene
        self._payscore = payscore_service
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
        self._global = GlobalApi(self._app, global_mcc) if global_mcc is not None else None
        self._tax_code = fapiao_tax_code

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
        if self._global is not None and (call := self._global.call(op)) is not None:
            return self._get(call.path, call.query) if call.body is None else self._post(
                call.path, call.body)
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
            case Payout() | PayoutQuery() if self._partner is not None:
                payouts.refuse_in_partner_mode()
            case Payout():
                bill = payouts.payout_request(op, self._creds.appid, self._transfer_scene,
                                              self._creds.platform_public_key)
                return self._post(payouts.BILLS_PATH, bill)
            case PayoutQuery():
                return self._get(payouts.bill_path(op.rail_payout_no), {})
            case Split() | SplitQuery() | SplitReturn():
                return self._wire(profit_sharing.request(op, self._app,
                                                         self._creds.platform_public_key))
            case (Authorize() | AuthorizationQuery() | Capture() | Release()) if self._partner:
                payscore.refuse_in_partner_mode()
            case Authorize() | AuthorizationQuery() | Capture() | Release():
                return self._wire(payscore.request(op, self._creds.appid, self._payscore))
            case IssueInvoice():
                invoice = fapiao.issue_request(op, self._tax_code, self._creds.platform_public_key)
                return self._post(fapiao.APPLICATIONS_PATH, invoice)
            case InvoiceQuery():
                path = fapiao.application_path(op.rail_reference)
                return self._get(path, fapiao.query_params(op))
            case ReverseInvoice():
                path = f"{fapiao.application_path(op.rail_reference)}/reverse"
                return self._post(path, fapiao.reverse_request(op))
            case BillDownload():
                return self._get(*bills.request_target(op, self._base_url))
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

    def _wire(self, call: profit_sharing.WireCall) -> HttpRequest:
        if call.body is not None:
            return self._post(call.path, call.body)
        return self._get(call.path, call.query or {})

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
        if isinstance(op, BillDownload) and op.url is not None and response.status == 200:
            return bills.bill_answer(op.url, response.body)  # unsigned: its digest checks it
        if not 200 <= response.status < 300:
            return refusal_result(op, response.status, response.body, signed=signed)
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
        if status == 202 and not isinstance(op, IssueInvoice | ReverseInvoice):
            return transformers.userpaying_result(op, body)
        if self._global is not None and (result := self._global.parse(op, body)) is not None:
            return result
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
            case Payout() | PayoutQuery():
                return payouts.bill_answer(body, op.rail_payout_no, self._creds.mchid)
            case Split() | SplitQuery() | SplitReturn():
                return profit_sharing.answer(op, body)
            case Authorize() | AuthorizationQuery() | Capture() | Release():
                return payscore.answer(op, body, self._creds.mchid)
            case IssueInvoice() | ReverseInvoice():
                return RailResult(RailStatus.PROCESSING)  # 202, no body: accepted
            case InvoiceQuery():
                return fapiao.query_answer(body, op.rail_invoice_no)
            case BillDownload():
                return bills.location_answer(body)
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
            if envelope.event_type == payouts.BILL_FINISHED:
                return payouts.bill_notification(plain, self._creds.mchid)
            if envelope.event_type in payscore.EVENTS:
                return payscore.notification(envelope.event_type, plain, self._creds.mchid,
                                             self._creds.appid)
            if envelope.event_type in fapiao.EVENTS:
                return fapiao.notification(envelope.event_type, plain, self._creds.mchid)
            if self._global is not None:
                return self._global.notification(envelope.event_type, plain)
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
    and must equal, the bundle's mchid) and `sp_appid` (defaults to the bundle's appid);
    for payouts `transfer_scene_id` (default 1000) and `transfer_scene_report_types`; for
    Pay Score `payscore_service_id` and `payscore_min_score` (the service's bar, default 550);
    `global` (true: cross-border, the Global API) with `merchant_category_code`; for
    invoices `fapiao_tax_code`.
    """
    if config.keys_dir is None:
        raise ValueError(f"rail {config.name!r}: the wechatpay adapter needs keys_dir")
    creds = protocol.load_bundle(config.keys_dir)
    return WeChatPayAdapter(
        config.name, config.base_url, creds, partner=_partner_ids(config, creds),
        transfer_scene=payouts.transfer_scene(config.options, config.name),
        payscore_service=payscore.payscore_service(config.options, config.name),
        global_mcc=global_mcc(config.options, config.name),
        fapiao_tax_code=fapiao.tax_code(config.options, config.name),
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
