"""The JSON bodies of WeChat Pay's Global API (`/v3/global/...`, overseas merchants) where
they differ from the domestic ones in `wire`: orders priced in a foreign currency with a
merchant category code, and answers that report what the payer paid in CNY and at which
rate.

The Global API names WeChat's order number `id` (not `transaction_id`) and reports a rate
as an integer: the foreign-to-CNY rate x 10^8.
"""

from __future__ import annotations

from typing import Final

from adapters.wechatpay.wire import MerchantApp, Payer, RefundStatus
from adapters.wire import NonEmptyStr, Shape

__all__ = [
    "GLOBAL_REFUNDS",
    "GLOBAL_TRANSACTIONS",
    "MICROPAY_PATH",
    "RATE_SCALE",
    "GlobalOrderAmount",
    "GlobalOrderRequest",
    "GlobalPaidAmount",
    "GlobalRefund",
    "GlobalRefundAmount",
    "GlobalRefundRequest",
    "GlobalRefundedAmount",
    "GlobalSceneInfo",
    "GlobalStoreInfo",
    "GlobalTransaction",
    "MwebPrepay",
    "WireExchangeRate",
]

GLOBAL_TRANSACTIONS: Final = "/v3/global/transactions"
MICROPAY_PATH: Final = "/v3/global/micropay/transactions"
GLOBAL_REFUNDS: Final = "/v3/global/refunds"
RATE_SCALE: Final = 8  # `exchange_rate.rate` is the rate x 10^8


class GlobalOrderAmount(Shape):
    total: int  # minor units of `currency` (yen for JPY, cents for HKD)
    currency: str


class GlobalStoreInfo(Shape, kw_only=True):
    name: str
    address: str
    id: str | None = None


class GlobalSceneInfo(Shape):
    payer_client_ip: str | None = None
    device_id: str | None = None
    store_info: GlobalStoreInfo | None = None


class GlobalOrderRequest(MerchantApp, kw_only=True):
    """The body of every Global API order: jsapi, native, app, mweb and micropay pay."""

    description: str
    out_trade_no: str
    trade_type: str  # JSAPI NATIVE APP MWEB MICROPAY
    merchant_category_code: str
    amount: GlobalOrderAmount
    notify_url: str | None = None  # never for micropay
    payer: Payer | None = None
    scene_info: GlobalSceneInfo | None = None


class MwebPrepay(Shape):
    """The mweb (H5) answer: `mweb_url` as documented; `h5_url` is read too."""

    mweb_url: str | None = None
    h5_url: str | None = None


class WireExchangeRate(Shape, kw_only=True):
    rate: int  # the rate x 10^8
    type: str | None = None  # SETTLEMENT_RATE, USERPAYMENT_RATE


class GlobalPaidAmount(Shape):
    """The `amount` of a Global transaction: the order's, and the payer's in CNY."""

    total: int | None = None
    currency: str | None = None
    payer_total: int | None = None
    payer_currency: str | None = None
    exchange_rate: WireExchangeRate | None = None


class GlobalTransaction(Shape, kw_only=True):
    """What a Global query, micropay answer or TRANSACTION.SUCCESS adds to a domestic
    Transaction (whose states and owner checks `transformers` reads)."""

    out_trade_no: NonEmptyStr
    id: str | None = None  # only once paid
    amount: GlobalPaidAmount | None = None


class GlobalRefundAmount(Shape):
    refund: int
    total: int
    currency: str


class GlobalRefundRequest(MerchantApp, kw_only=True):
    out_trade_no: str
    out_refund_no: str
    amount: GlobalRefundAmount
    reason: str | None = None
    notify_url: str | None = None


class GlobalRefundedAmount(Shape):
    refund: int | None = None
    currency: str | None = None
    payer_refund: int | None = None
    payer_currency: str | None = None
    exchange_rate: WireExchangeRate | None = None


class GlobalRefund(Shape, kw_only=True):
    """A Global refund answer or query; the create answer may leave `status` out (the
    refund is then only accepted)."""

    id: NonEmptyStr
    out_refund_no: NonEmptyStr
    status: RefundStatus | None = None
    amount: GlobalRefundedAmount | None = None
