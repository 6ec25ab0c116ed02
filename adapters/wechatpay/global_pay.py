"""Cross-border payments on WeChat Pay: the Global API (adapter option `global = true`).

Charges, queries, closes, reverses, refunds and refund queries go to `/v3/global/...`
priced in the charge's currency (its ISO 4217 minor units: 1000 JPY is 1000), with the
merchant's category code. Every answer about a paid order says what the payer paid in
CNY and at which rate: `RailResult.payer_amount`. Order states, owner checks and the
client-side payment params are the domestic ones (`transformers`), read from the same
bodies; only the fields the Global API spells otherwise are read here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from decimal import Decimal
from typing import Final, assert_never, final
from urllib.parse import quote

import msgspec

from adapters.base import (
    Action,
    ActionType,
    Charge,
    Close,
    Notification,
    Operation,
    Query,
    RailResult,
    RailStatus,
    Refund,
    RefundQuery,
    Reverse,
    Scene,
)
from adapters.commerce_ops import ExchangeRate, PayerAmount
from adapters.currencies import UnknownCurrency, exponent
from adapters.wechatpay import transformers
from adapters.wechatpay.global_wire import (
    GLOBAL_REFUNDS,
    GLOBAL_TRANSACTIONS,
    MICROPAY_PATH,
    RATE_SCALE,
    GlobalOrderAmount,
    GlobalOrderRequest,
    GlobalPaidAmount,
    GlobalRefund,
    GlobalRefundAmount,
    GlobalRefundedAmount,
    GlobalRefundRequest,
    GlobalSceneInfo,
    GlobalStoreInfo,
    GlobalTransaction,
    MwebPrepay,
    WireExchangeRate,
)
from adapters.wechatpay.transformers import (
    MAX_DESCRIPTION,
    MAX_REASON,
    Endpoint,
    check_same,
    checked_order_no,
    checked_refund_no,
    refuse,
)
from adapters.wechatpay.wire import Merchant, MerchantApp, Payer, RefundStatus, valid_amount
from adapters.wire import Malformed, decode

__all__ = [
    "DEFAULT_MCC",
    "GlobalApi",
    "GlobalCall",
    "exchange_rate",
    "global_mcc",
    "payer_amount",
]

DEFAULT_MCC: Final = "5411"  # grocery stores and supermarkets
MCC_LENGTH: Final = 4
PAYER_CURRENCY: Final = "CNY"
_TRADE_TYPES: Final = {Endpoint.CODEPAY: "MICROPAY", Endpoint.NATIVE: "NATIVE",
                       Endpoint.JSAPI: "JSAPI", Endpoint.APP: "APP", Endpoint.H5: "MWEB"}
_PATHS: Final = {Endpoint.CODEPAY: f"{MICROPAY_PATH}/pay",
                 Endpoint.NATIVE: f"{GLOBAL_TRANSACTIONS}/native",
                 Endpoint.JSAPI: f"{GLOBAL_TRANSACTIONS}/jsapi",
                 Endpoint.APP: f"{GLOBAL_TRANSACTIONS}/app",
                 Endpoint.H5: f"{GLOBAL_TRANSACTIONS}/mweb"}


@final
@dataclasses.dataclass(frozen=True, slots=True)
class GlobalCall:
    """A Global API call for the adapter to sign: a POST of `body`, or a GET of `query`."""

    path: str
    body: msgspec.Struct | None = None
    query: dict[str, str] = dataclasses.field(default_factory=dict)


def global_mcc(options: Mapping[str, object], rail: str) -> str | None:
    """The merchant category code when the option `global` is true (`merchant_category_code`,
    default 5411); None for a domestic rail."""
    on = options.get("global", False)
    if not isinstance(on, bool):
        raise ValueError(f"rail {rail!r}: option global must be true or false")
    mcc = options.get("merchant_category_code", DEFAULT_MCC)
    if isinstance(mcc, int) and not isinstance(mcc, bool):
        mcc = f"{mcc:04d}"
    if not isinstance(mcc, str) or not (mcc.isdigit() and len(mcc) == MCC_LENGTH):
        raise ValueError(f"rail {rail!r}: option merchant_category_code must be 4 digits")
    if not on:
        return None
    if options.get("sub_mchid") is not None:
        raise ValueError(f"rail {rail!r}: the Global API is spoken for a direct merchant only")
    return mcc


# --------------------------------------------------------------------------- rates
def exchange_rate(wire: WireExchangeRate, base: str) -> ExchangeRate:
    """WeChat's integer rate x 10^8 as an exact decimal string with 8 decimals."""
    rate = Decimal(wire.rate).scaleb(-RATE_SCALE)
    return ExchangeRate(rate=f"{rate:.{RATE_SCALE}f}",
                        source=f"wechatpay:{wire.type or 'SETTLEMENT_RATE'}",
                        base=base, quote=PAYER_CURRENCY)


def payer_amount(currency: str | None, paid: int | None, paid_currency: str | None,
                 rate: WireExchangeRate | None) -> PayerAmount | None:
    """What the payer paid (or got back) in their currency, when the answer says it all."""
    if currency is None or paid is None or rate is None:
        return None
    return PayerAmount(paid, paid_currency or PAYER_CURRENCY, exchange_rate(rate, currency))


def _paid(amount: GlobalPaidAmount | None) -> PayerAmount | None:
    if amount is None:
        return None
    return payer_amount(amount.currency, amount.payer_total, amount.payer_currency,
                        amount.exchange_rate)


def _checked_money(amount: int, currency: str) -> None:
    if not valid_amount(amount):
        refuse("amount must be a positive integer of the currency's minor units",
               param="amount")
    try:
        exponent(currency)
    except UnknownCurrency:
        refuse(f"currency {currency!r} is not an ISO 4217 currency", param="currency")


# --------------------------------------------------------------------------- the API
@final
class GlobalApi:
    """The Global API dialect for one direct merchant (`app`) with one category code."""

    __slots__ = ("_app", "_mcc")

    def __init__(self, app: MerchantApp, merchant_category_code: str) -> None:
        if app.mchid is None:
            raise ValueError("the Global API is spoken for a direct merchant only")
        if not merchant_category_code.isdigit() or len(merchant_category_code) != MCC_LENGTH:
            raise ValueError("merchant_category_code must be a 4-digit MCC")
        self._app = app
        self._mcc = merchant_category_code

    def call(self, op: Operation) -> GlobalCall | None:
        """The Global call of `op`; None for operations the Global API does not change."""
        match op:
            case Charge():
                endpoint = transformers.endpoint_for(op.scene)
                return GlobalCall(_PATHS[endpoint], self._order(op, endpoint))
            case Query():
                return GlobalCall(self._order_path(op.rail_order_no),
                                  query={"mchid": str(self._app.mchid)})
            case Close():
                path = f"{self._order_path(op.rail_order_no)}/close"
                return GlobalCall(path, Merchant(mchid=self._app.mchid))
            case Reverse():
                no = quote(checked_order_no(op.rail_order_no), safe="")
                return GlobalCall(f"{MICROPAY_PATH}/out-trade-no/{no}/reverse", self._app)
            case Refund():
                return GlobalCall(GLOBAL_REFUNDS, self._refund(op))
            case RefundQuery():
                no = quote(checked_refund_no(op.rail_refund_no), safe="")
                return GlobalCall(f"{GLOBAL_REFUNDS}/out-refund-no/{no}",
                                  query={"mchid": str(self._app.mchid)})
            case _:
                return None

    def _order_path(self, rail_order_no: str) -> str:
        no = quote(checked_order_no(rail_order_no), safe="")
        return f"{GLOBAL_TRANSACTIONS}/out-trade-no/{no}"

    def _order(self, op: Charge, endpoint: Endpoint) -> GlobalOrderRequest:
        _checked_money(op.amount, op.currency)
        payer, scene = self._scene_fields(op, endpoint)
        return GlobalOrderRequest(
            **msgspec.structs.asdict(self._app),
            description=(op.description or op.rail_order_no)[:MAX_DESCRIPTION],
            out_trade_no=checked_order_no(op.rail_order_no),
            trade_type=_TRADE_TYPES[endpoint],
            merchant_category_code=self._mcc,
            amount=GlobalOrderAmount(total=op.amount, currency=op.currency),
            notify_url=None if endpoint is Endpoint.CODEPAY else op.notify_url,
            payer=payer,
            scene_info=scene,
        )

    def _scene_fields(self, op: Charge,
                      endpoint: Endpoint) -> tuple[Payer | None, GlobalSceneInfo | None]:
        meta = op.metadata
        match endpoint:
            case Endpoint.CODEPAY:
                auth_code = op.payer.get("auth_code")
                if not auth_code:
                    refuse("quickpay needs payer.auth_code", param="payer.auth_code")
                device = meta.get("device_id") or None
                return Payer(auth_code=auth_code), GlobalSceneInfo(device_id=device)
            case Endpoint.H5:
                ip = op.payer.get("client_ip")
                if not ip:
                    refuse("h5 needs payer.client_ip", param="payer.client_ip")
                store = GlobalStoreInfo(
                    id=meta.get("store_id") or None,
                    name=meta.get("store_name") or op.description or op.rail_order_no,
                    address=meta.get("store_address") or "-",
                )
                return None, GlobalSceneInfo(payer_client_ip=ip, store_info=store)
            case Endpoint.JSAPI:
                return transformers.jsapi_payer(op.payer, self._app), None
            case Endpoint.NATIVE | Endpoint.APP:
                return None, None
            case _:
                assert_never(endpoint)

    def _refund(self, op: Refund) -> GlobalRefundRequest:
        _checked_money(op.amount, op.currency)
        if type(op.total) is not int or op.total < op.amount:
            refuse("refund total must be the order amount, at least the refund",
                   param="amount")
        return GlobalRefundRequest(
            **msgspec.structs.asdict(self._app),
            out_trade_no=checked_order_no(op.rail_order_no),
            out_refund_no=checked_refund_no(op.rail_refund_no),
            amount=GlobalRefundAmount(refund=op.amount, total=op.total, currency=op.currency),
            reason=op.reason[:MAX_REASON] or None,
            notify_url=op.notify_url or None,
        )

    # ----------------------------------------------------------------------- answers
    def parse(self, op: Operation, body: bytes) -> RailResult | None:
        """A 2xx answer the Global API words its own way; None: read it as domestic."""
        match op:
            case Charge() if op.scene == Scene.QUICKPAY:
                return _with_global(transformers.transaction_answer(
                    body, op.rail_order_no, codepay=True), body)
            case Charge() if transformers.endpoint_for(op.scene) is Endpoint.H5:
                prepay = decode(body, MwebPrepay)
                url = prepay.mweb_url or prepay.h5_url
                if not url:
                    raise Malformed("the mweb answer has no mweb_url")
                return RailResult(RailStatus.REQUIRES_ACTION,
                                  action=Action(ActionType.REDIRECT, {"url": url}))
            case Query():
                return _with_global(transformers.transaction_answer(body, op.rail_order_no),
                                    body)
            case Refund() | RefundQuery():
                return refund_answer(body, op.rail_refund_no)
            case _:
                return None

    def notification(self, event_type: str, plain: bytes) -> Notification:
        """A decrypted TRANSACTION.* / REFUND.* resource of the Global API."""
        note = transformers.notification(event_type, plain, self._app)
        if note.rail_refund_no is None:
            return dataclasses.replace(note, result=_with_global(note.result, plain))
        amount = decode(plain, _RefundNoticeAmount).amount
        return dataclasses.replace(note, result=dataclasses.replace(
            note.result, payer_amount=_refunded(amount)))


class _RefundNoticeAmount(msgspec.Struct):
    amount: GlobalRefundedAmount | None = None


def _with_global(result: RailResult, body: bytes) -> RailResult:
    """The domestic reading of a Global transaction, with its `id` and payer amount."""
    tx = decode(body, GlobalTransaction)
    return dataclasses.replace(result, rail_reference=tx.id or result.rail_reference,
                               payer_amount=_paid(tx.amount))


def _refunded(amount: GlobalRefundedAmount | None) -> PayerAmount | None:
    if amount is None:
        return None
    return payer_amount(amount.currency, amount.payer_refund, amount.payer_currency,
                        amount.exchange_rate)


def refund_answer(body: bytes, rail_refund_no: str) -> RailResult:
    """A Global refund or refund-query answer about `rail_refund_no`."""
    refund = decode(body, GlobalRefund)
    check_same(refund.out_refund_no, rail_refund_no, "out_refund_no")
    refunded = refund.amount.refund if refund.amount else None
    accepted = RailResult(RailStatus.PROCESSING, rail_reference=refund.id, amount=refunded,
                          payer_amount=_refunded(refund.amount))
    status = refund.status
    match status:
        case None | RefundStatus.PROCESSING:  # a create answer without status: accepted
            return accepted
        case RefundStatus.SUCCESS:
            return dataclasses.replace(accepted, status=RailStatus.SUCCEEDED)
        case RefundStatus.CLOSED | RefundStatus.ABNORMAL:
            return dataclasses.replace(accepted, status=RailStatus.FAILED,
                                       failure_code=f"REFUND_{status.value}")
        case _:
            assert_never(status)
