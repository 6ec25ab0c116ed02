"""The JSON bodies of WeChat Pay API v3 as merchant and platform exchange them, with their
states and the limits of their fields.

Shapes only, no behaviour, so the adapter and the simulator read and write the same
thing. Requests carry every field the adapter sends; optional ones are left out of a body
when unset (WeChat treats null as a value). Answers and notifications list the fields
the adapter reads: required where it cannot do without them, and every other field of
the body is ignored. Field names are WeChat's own.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from typing import TypeGuard

import msgspec

from adapters.wire import NonEmptyStr, Shape

MAX_AMOUNT = 10**12  # fen; anything larger is a bug upstream, not a payment
TRANSFER_NAME_REQUIRED_FROM = 200_000  # fen: from 2,000 CNY a bill carries the payee's name
MAX_TRANSFER_REMARK = 32  # transfer_remark (shown to the payee), and each report line
MAX_OPENID = 64
# The fixed `info_type` labels of a transfer scene's report; 1000 is cash marketing (现金营销).
TRANSFER_SCENE_REPORT_TYPES: Mapping[str, tuple[str, ...]] = {"1000": ("活动名称", "奖励说明")}
# WeChat allows `|` and `*` too, but the SDK's HTTP client percent-encodes `|`, which then
# breaks the signature; the router never generates them, so they are refused here.
_OUT_TRADE_NO_RE = re.compile(r"[0-9A-Za-z_\-]{6,32}")
_OUT_REFUND_NO_RE = re.compile(r"[0-9A-Za-z_\-]{1,64}")
_OUT_BILL_NO_RE = re.compile(r"[0-9A-Za-z]{1,32}")  # transfer bills: letters and digits


class TradeState(enum.StrEnum):
    NOTPAY = "NOTPAY"
    USERPAYING = "USERPAYING"
    SUCCESS = "SUCCESS"
    REFUND = "REFUND"
    PAYERROR = "PAYERROR"
    CLOSED = "CLOSED"
    REVOKED = "REVOKED"


class RefundStatus(enum.StrEnum):
    PROCESSING = "PROCESSING"
    SUCCESS = "SUCCESS"
    CLOSED = "CLOSED"
    ABNORMAL = "ABNORMAL"


class TransferBillState(enum.StrEnum):
    """A transfer bill (商家转账) on its way to the payee's wallet."""

    ACCEPTED = "ACCEPTED"
    PROCESSING = "PROCESSING"
    WAIT_USER_CONFIRM = "WAIT_USER_CONFIRM"  # the payee must confirm in WeChat
    TRANSFERING = "TRANSFERING"  # WeChat's spelling
    SUCCESS = "SUCCESS"
    FAIL = "FAIL"
    CANCELING = "CANCELING"
    CANCELLED = "CANCELLED"


def valid_amount(value: object) -> TypeGuard[int]:
    """Positive integer fen (bool is an int in Python and is refused)."""
    return type(value) is int and 0 < value <= MAX_AMOUNT


def valid_out_trade_no(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and _OUT_TRADE_NO_RE.fullmatch(value) is not None


def valid_out_refund_no(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and _OUT_REFUND_NO_RE.fullmatch(value) is not None


def valid_out_bill_no(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and _OUT_BILL_NO_RE.fullmatch(value) is not None


# --------------------------------------------------------------------------- who
class Merchant(Shape):
    """Whose order it is: `mchid`, or a service provider (`sp_mchid`) for a sub-merchant."""

    mchid: str | None = None
    sp_mchid: str | None = None
    sub_mchid: str | None = None


class MerchantApp(Shape):
    """A merchant and the app its payer pays in (`sub_appid`: the sub-merchant's own)."""

    appid: str | None = None
    mchid: str | None = None
    sp_appid: str | None = None
    sp_mchid: str | None = None
    sub_mchid: str | None = None
    sub_appid: str | None = None


class Payer(Shape):
    """`openid` (direct), `sp_openid`/`sub_openid` (partner), or a payer code."""

    openid: str | None = None
    sp_openid: str | None = None
    sub_openid: str | None = None
    auth_code: str | None = None


# --------------------------------------------------------------------------- orders
class OrderAmount(Shape):
    total: int
    currency: str


class StoreInfo(Shape):
    out_id: str


class H5Info(Shape):
    type: str  # iOS | Android | Wap


class SceneInfo(Shape):
    payer_client_ip: str | None = None  # h5
    h5_info: H5Info | None = None
    store_info: StoreInfo | None = None  # codepay (required there)
    device_id: str | None = None


class OrderRequest(MerchantApp, kw_only=True):
    """The body of every order call: native, jsapi, app, h5 and codepay."""

    description: str
    out_trade_no: str
    amount: OrderAmount
    notify_url: str | None = None  # never for codepay: WeChat does not notify those
    payer: Payer | None = None
    scene_info: SceneInfo | None = None


class NativePrepay(Shape):
    code_url: NonEmptyStr


class H5Prepay(Shape):
    h5_url: NonEmptyStr


class Prepay(Shape):
    """The jsapi and app answer: the client pays with params signed over `prepay_id`."""

    prepay_id: NonEmptyStr


class TransactionAmount(Shape):
    total: int | None = None


class Transaction(MerchantApp, kw_only=True):
    """An order's state: query and codepay answers, TRANSACTION.* notifications."""

    out_trade_no: NonEmptyStr
    trade_state: TradeState
    transaction_id: str | None = None  # only once paid
    trade_type: str | None = None  # JSAPI NATIVE APP MICROPAY MWEB FACEPAY
    trade_state_desc: str | None = None
    amount: TransactionAmount | None = None


class ReverseAnswer(Shape, kw_only=True):
    """`reverse` echoes the ids; an answer with a `trade_state` is a whole Transaction."""

    out_trade_no: NonEmptyStr
    # Unset when absent; a null state is no state, so it is refused.
    trade_state: TradeState | msgspec.UnsetType = msgspec.UNSET


# --------------------------------------------------------------------------- refunds
class RefundAmount(Shape):
    refund: int
    total: int
    currency: str


class RefundRequest(Shape, kw_only=True):
    out_trade_no: str
    out_refund_no: str
    amount: RefundAmount
    sub_mchid: str | None = None  # partner mode
    reason: str | None = None
    notify_url: str | None = None


class RefundedAmount(Shape):
    """The `amount` of a refund answer or notification, of which `refund` is this refund's."""

    refund: int | None = None


class RefundAnswer(Shape, kw_only=True):
    """The answer of a refund and of a refund query."""

    refund_id: NonEmptyStr
    out_refund_no: NonEmptyStr
    status: RefundStatus
    amount: RefundedAmount | None = None


class RefundNotice(Merchant, kw_only=True):
    """The decrypted resource of a REFUND.* notification."""

    out_trade_no: NonEmptyStr
    refund_id: NonEmptyStr
    out_refund_no: NonEmptyStr
    refund_status: RefundStatus
    amount: RefundedAmount | None = None


# --------------------------------------------------------------------------- transfer bills
class TransferSceneReportInfo(Shape):
    """One line of what the transfer is for; each scene has its own fixed `info_type`s."""

    info_type: str
    info_content: str


class TransferBillRequest(Shape, kw_only=True):
    """The body of a transfer bill (a payout to a payee's WeChat balance)."""

    appid: str
    out_bill_no: str
    transfer_scene_id: str
    openid: str
    transfer_amount: int
    transfer_remark: str
    transfer_scene_report_infos: list[TransferSceneReportInfo]
    user_name: str | None = None  # RSA-OAEP ciphertext (base64) under WeChat's public key
    notify_url: str | None = None
    user_recv_perception: str | None = None


class TransferBill(Shape, kw_only=True):
    """A transfer bill as WeChat shows it: the create, query and cancel answers and the
    decrypted MCHTRANSFER.BILL.FINISHED resource. The merchant is `mch_id` in the
    documented query answer and either spelling in notifications, so both are read."""

    out_bill_no: NonEmptyStr
    transfer_bill_no: NonEmptyStr
    state: TransferBillState
    mch_id: str | None = None
    mchid: str | None = None
    transfer_amount: int | None = None
    fail_reason: str | None = None


# --------------------------------------------------------------------------- errors, notifications
class ErrorAnswer(Shape):
    """A non-2xx answer (and a 202 USERPAYING); also a refused notification's reply."""

    code: str | None = None
    message: str | None = None


class EncryptedResource(Shape, kw_only=True):
    algorithm: str  # AEAD_AES_256_GCM
    ciphertext: str  # base64, tag appended
    nonce: str
    associated_data: str | None = None


class NotificationEnvelope(Shape, kw_only=True):
    event_type: NonEmptyStr  # TRANSACTION.SUCCESS, REFUND.*, MCHTRANSFER.BILL.FINISHED
    resource_type: str  # encrypt-resource
    resource: EncryptedResource
