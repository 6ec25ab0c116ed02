"""Payouts on WeChat Pay: a canonical `Payout` as a transfer bill (商家转账, the user-confirm
mode of `/v3/fund-app/mch-transfer/transfer-bills`), and what a bill's answer, query or
MCHTRANSFER.BILL.FINISHED notification proves.

A bill is money on its way until WeChat says SUCCESS; FAIL and CANCELLED are definitive
(nothing was paid), with WeChat's `fail_reason` as the failure code. Only the direct
merchant dialect is spoken: a partner rail refuses payouts before sending anything.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import NoReturn, assert_never, final

from cryptography.hazmat.primitives.asymmetric import rsa

from adapters.base import (
    Notification,
    NotificationKind,
    Payout,
    RailError,
    RailErrorCode,
    RailResult,
    RailStatus,
)
from adapters.wechatpay.sensitive import encrypt_field
from adapters.wechatpay.transformers import check_money, check_same, refuse
from adapters.wechatpay.wire import (
    MAX_OPENID,
    MAX_TRANSFER_REMARK,
    TRANSFER_NAME_REQUIRED_FROM,
    TRANSFER_SCENE_REPORT_TYPES,
    TransferBill,
    TransferBillRequest,
    TransferBillState,
    TransferSceneReportInfo,
    valid_out_bill_no,
)
from adapters.wire import decode

__all__ = [
    "BILLS_PATH",
    "BILL_FINISHED",
    "DEFAULT_SCENE",
    "TransferScene",
    "bill_answer",
    "bill_notification",
    "bill_path",
    "payout_request",
    "refuse_in_partner_mode",
    "transfer_scene",
]

BILLS_PATH = "/v3/fund-app/mch-transfer/transfer-bills"
BILL_FINISHED = "MCHTRANSFER.BILL.FINISHED"  # sent on SUCCESS, FAIL and CANCELLED
MAX_REPORT_TYPE = 15
CANCELLED_REASON = "MCH_CANCEL"  # a cancelled bill that names no reason: the merchant's
FAILED_REASON = "FAIL"  # a failed bill that names no reason


@final
@dataclass(frozen=True, slots=True)
class TransferScene:
    """The transfer scene the merchant was granted, and the labels its report must carry."""

    scene_id: str
    report_types: tuple[str, ...]


DEFAULT_SCENE = TransferScene("1000", TRANSFER_SCENE_REPORT_TYPES["1000"])


def transfer_scene(options: Mapping[str, object], rail: str) -> TransferScene:
    """The scene from the adapter options `transfer_scene_id` (default 1000) and, for a
    scene whose labels are not built in, `transfer_scene_report_types`."""
    raw_id = options.get("transfer_scene_id", DEFAULT_SCENE.scene_id)
    scene_id = str(raw_id) if type(raw_id) is int else raw_id
    if not isinstance(scene_id, str) or not scene_id.isdigit():
        raise ValueError(f"rail {rail!r}: option transfer_scene_id must be a scene number")
    types = options.get("transfer_scene_report_types")
    if types is None:
        known = TRANSFER_SCENE_REPORT_TYPES.get(scene_id)
        if known is None:
            raise ValueError(f"rail {rail!r}: transfer scene {scene_id} needs the option "
                             "transfer_scene_report_types (its report's info_type labels)")
        return TransferScene(scene_id, known)
    if not isinstance(types, list | tuple) or not types or not all(
        isinstance(t, str) and 0 < len(t) <= MAX_REPORT_TYPE for t in types
    ):
        raise ValueError(f"rail {rail!r}: option transfer_scene_report_types must be a list "
                         f"of labels of 1-{MAX_REPORT_TYPE} characters")
    return TransferScene(scene_id, tuple(str(t) for t in types))


# --------------------------------------------------------------------------- requests
def refuse_in_partner_mode() -> NoReturn:
    raise RailError(RailErrorCode.INVALID_REQUEST,
                    "payouts are not offered in partner (sub_mchid) mode: configure a "
                    "direct-merchant WeChat Pay rail for them", definitive=True)


def checked_bill_no(value: str) -> str:
    # The router derives the number: no API field is at fault.
    if not valid_out_bill_no(value):
        refuse("rail_payout_no must be 1-32 letters and digits", param=None)
    return value


def bill_path(rail_payout_no: str) -> str:
    # Letters and digits only, so the number needs no escaping in the path.
    return f"{BILLS_PATH}/out-bill-no/{checked_bill_no(rail_payout_no)}"


def payout_request(op: Payout, appid: str, scene: TransferScene,
                   platform_key: rsa.RSAPublicKey) -> TransferBillRequest:
    """The transfer bill of `op`; the payee's name is encrypted for WeChat's eyes only."""
    check_money(op.amount, op.currency)
    out_bill_no = checked_bill_no(op.rail_payout_no)
    if not op.payee or len(op.payee) > MAX_OPENID:
        refuse(f"payee must be the payee's openid (1-{MAX_OPENID} characters)", param="payee")
    name = op.name or None
    if name is None and op.amount >= TRANSFER_NAME_REQUIRED_FROM:
        refuse("a payout of 2,000 CNY or more must carry the payee's real name", param="name")
    remark = (op.remark or op.rail_payout_no)[:MAX_TRANSFER_REMARK]
    return TransferBillRequest(
        appid=appid,
        out_bill_no=out_bill_no,
        transfer_scene_id=scene.scene_id,
        openid=op.payee,
        transfer_amount=op.amount,
        transfer_remark=remark,
        transfer_scene_report_infos=[
            TransferSceneReportInfo(info_type=label, info_content=remark)
            for label in scene.report_types
        ],
        user_name=None if name is None else encrypt_field(platform_key, name),
        notify_url=op.notify_url or None,
    )


# --------------------------------------------------------------------------- answers
def bill_answer(body: bytes, rail_payout_no: str, mchid: str) -> RailResult:
    """A create, query or cancel answer about the bill `rail_payout_no`."""
    bill = decode(body, TransferBill)
    check_same(bill.out_bill_no, rail_payout_no, "out_bill_no")
    _check_merchant(bill, mchid, required=False)
    return bill_result(bill)


def bill_notification(plain: bytes, mchid: str) -> Notification:
    """A decrypted MCHTRANSFER.BILL.FINISHED resource, which must name our merchant."""
    bill = decode(plain, TransferBill)
    _check_merchant(bill, mchid, required=True)
    return Notification(NotificationKind.PAYOUT, bill.out_bill_no, bill_result(bill))


def _check_merchant(bill: TransferBill, mchid: str, *, required: bool) -> None:
    """A bill of another merchant must never settle one of ours (create answers name none)."""
    named = [value for value in (bill.mch_id, bill.mchid) if value is not None]
    if required and not named:
        check_same(None, mchid, "mchid")
    for value in named:
        check_same(value, mchid, "mchid")


def bill_result(bill: TransferBill) -> RailResult:
    ref, amount, state = bill.transfer_bill_no, bill.transfer_amount, bill.state
    match state:
        case (TransferBillState.ACCEPTED | TransferBillState.PROCESSING
              | TransferBillState.WAIT_USER_CONFIRM | TransferBillState.TRANSFERING
              | TransferBillState.CANCELING):
            # CANCELING: nothing is settled until WeChat says CANCELLED.
            return RailResult(RailStatus.PROCESSING, rail_reference=ref, amount=amount)
        case TransferBillState.SUCCESS:
            return RailResult(RailStatus.SUCCEEDED, rail_reference=ref, amount=amount)
        case TransferBillState.FAIL:
            return RailResult(RailStatus.FAILED, rail_reference=ref,
                              failure_code=bill.fail_reason or FAILED_REASON)
        case TransferBillState.CANCELLED:
            return RailResult(RailStatus.FAILED, rail_reference=ref,
                              failure_code=bill.fail_reason or CANCELLED_REASON)
        case _:
            assert_never(state)
