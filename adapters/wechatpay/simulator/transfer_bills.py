"""Transfer bills (商家转账, user-confirm mode) of the WeChat Pay simulator: payouts to a
payee's balance, and the one place money goes out to a payee.

The payee's openid decides the outcome (`adapters.simkit.payees`): a frozen account's bill
ends FAIL (ACCOUNT_FROZEN), an `...9` payee is paid but the answer is withheld, anyone
else waits for the simulated payee to confirm (WAIT_USER_CONFIRM) and is paid a moment
later. A bill that carries another name than the one set with `POST /sim/payees` ends
FAIL (NAME_NOT_CORRECT). Every terminal state is notified (MCHTRANSFER.BILL.FINISHED).

Synchronous on purpose, like the ledger: no await between a check and its change, so
concurrent identical requests can never pay a bill twice.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import assert_never, final

from cryptography.hazmat.primitives.asymmetric import rsa

from adapters.simkit.payees import PayeeOutcome, Payees, payee_outcome, payouts_snapshot
from adapters.simkit.replies import Reply, error
from adapters.simkit.runtime import Schedule
from adapters.wechatpay.protocol import H_SERIAL, WeChatPayCredentials, get_header, valid_amount
from adapters.wechatpay.sensitive import SensitiveFieldError, decrypt_field
from adapters.wechatpay.simulator import checks
from adapters.wechatpay.simulator.ledger import Emit
from adapters.wechatpay.simulator.records import CN, BillRecord, now_text
from adapters.wechatpay.wire import (
    MAX_OPENID,
    MAX_TRANSFER_REMARK,
    TRANSFER_NAME_REQUIRED_FROM,
    TRANSFER_SCENE_REPORT_TYPES,
    TransferBillState,
    valid_out_bill_no,
)

CONFIRM_DELAY = 1.0  # the simulated payee confirms a waiting bill after this (× time_scale)
# The scenes the simulated merchant was granted (fact sheet); labels checked where known.
SCENES = frozenset({"1000", "1002", "1004", "1005", "1009", "1010", "1011", "1013"})
MAX_REPORT_TYPE = 15
_CANCELLABLE = frozenset({TransferBillState.ACCEPTED, TransferBillState.PROCESSING,
                          TransferBillState.WAIT_USER_CONFIRM})
_NOT_FOUND = error(404, "NOT_FOUND", "记录不存在")


@final
class TransferBills:
    """Transfer bills of one direct merchant, keyed by out_bill_no."""

    __slots__ = ("_appid", "_bills", "_emit", "_key", "_key_id", "_mchid", "_schedule",
                 "_serial", "payees")

    def __init__(self, creds: WeChatPayCredentials, schedule: Schedule, emit: Emit,
                 serial: Callable[[], int]) -> None:
        if creds.platform_private_key is None:
            raise ValueError("transfer bills need the platform private key (to read names)")
        self._key: rsa.RSAPrivateKey = creds.platform_private_key
        self._key_id = creds.platform_public_key_id
        self._mchid = creds.mchid
        self._appid = creds.appid
        self._schedule = schedule
        self._emit = emit
        self._serial = serial
        self._bills: dict[str, BillRecord] = {}
        self.payees = Payees()

    # ----------------------------------------------------------------- calls
    def create(self, headers: Mapping[str, str], body: Mapping[str, object]) -> Reply:
        if checks.text(body, "appid", max_len=32) != self._appid:
            raise checks.mismatch()
        no = body.get("out_bill_no")
        if not valid_out_bill_no(no):
            raise checks.invalid("out_bill_no must be 1-32 letters and digits")
        openid = checks.text(body, "openid", max_len=MAX_OPENID)
        amount = body.get("transfer_amount")
        if not valid_amount(amount):
            raise checks.invalid("transfer_amount must be a positive integer of fen")
        remark = checks.text(body, "transfer_remark", max_len=MAX_TRANSFER_REMARK)
        scene_id = checks.text(body, "transfer_scene_id", max_len=36)
        if scene_id not in SCENES:
            return error(400, "INVALID_REQUEST", "你尚未获取该转账场景")
        report = _report(body, scene_id)
        notify_url = checks.notify_url(body, required=False)
        perception = checks.text(body, "user_recv_perception", max_len=32, required=False)
        name = self._user_name(headers, body)
        if name is None and amount >= TRANSFER_NAME_REQUIRED_FROM:
            raise checks.invalid("转账金额>=2000元时，收款用户姓名必填")
        params = (scene_id, openid, amount, remark, report, notify_url, perception, name)
        known = self._bills.get(no)
        if known is not None:
            if known.params != params:
                return error(400, "INVALID_REQUEST", "商户单号已存在，但请求参数与原单不一致")
            return Reply(200, known.created())
        now = now_text()
        bill = BillRecord(
            no, params, self._mchid, self._appid, openid, amount, remark, notify_url,
            transfer_bill_no=f"1330{datetime.now(CN):%Y%m%d}{self._serial():022d}",
            package_info=base64.b64encode(secrets.token_bytes(48)).decode("ascii"),
            create_time=now, update_time=now,
        )  # fmt: skip
        self._bills[no] = bill
        return self._decide(bill, name)

    def query(self, no: str) -> Reply:
        bill = self._bills.get(no)
        return _NOT_FOUND if bill is None else Reply(200, bill.to_json())

    def query_by_bill_no(self, transfer_bill_no: str) -> Reply:
        for bill in self._bills.values():
            if bill.transfer_bill_no == transfer_bill_no:
                return Reply(200, bill.to_json())
        return _NOT_FOUND

    def cancel(self, no: str) -> Reply:
        """Only before the payee confirms; a cancelled bill answers the same again."""
        bill = self._bills.get(no)
        if bill is None:
            return _NOT_FOUND
        if bill.state in _CANCELLABLE:
            self._finish(bill, TransferBillState.CANCELLED, "MCH_CANCEL")
        elif bill.state is not TransferBillState.CANCELLED:
            return error(400, "INVALID_REQUEST", f"转账单状态为{bill.state.value}，不可撤销")
        return Reply(200, bill.cancelled())

    def snapshot(self) -> dict[str, object]:
        return payouts_snapshot({no: bill.ledger_row() for no, bill in self._bills.items()})

    # ----------------------------------------------------------------- outcomes
    def _decide(self, bill: BillRecord, name: str | None) -> Reply:
        if not self.payees.name_matches(bill.openid, name):
            self._finish(bill, TransferBillState.FAIL, "NAME_NOT_CORRECT")
            return Reply(200, bill.created())
        outcome = payee_outcome(bill.openid)
        match outcome:
            case PayeeOutcome.FROZEN:
                self._finish(bill, TransferBillState.FAIL, "ACCOUNT_FROZEN")
                return Reply(200, bill.created())
            case PayeeOutcome.ANSWER_LOST:
                self._pay(bill)
                return Reply(200, bill.created(), withhold=True)
            case PayeeOutcome.PAID:
                bill.state = TransferBillState.WAIT_USER_CONFIRM
                self._schedule(CONFIRM_DELAY, lambda: self._payee_confirms(bill))
                return Reply(200, bill.created())
            case _:
                assert_never(outcome)

    def _payee_confirms(self, bill: BillRecord) -> None:
        if bill.state is TransferBillState.WAIT_USER_CONFIRM:  # not cancelled meanwhile
            self._pay(bill)

    def _pay(self, bill: BillRecord) -> None:
        # The one place money goes to a payee: guarded so a bill is never paid twice.
        if bill.payouts:
            return
        bill.paid, bill.payouts = bill.amount, 1
        self._finish(bill, TransferBillState.SUCCESS, None)

    def _finish(self, bill: BillRecord, state: TransferBillState, reason: str | None) -> None:
        bill.state, bill.fail_reason, bill.update_time = state, reason, now_text()
        if bill.notify_url is not None:
            self._emit(bill.notify_url, "MCHTRANSFER.BILL.FINISHED", "商家转账单据终态通知",
                       "mch_payment", bill.notification())

    # ----------------------------------------------------------------- fields
    def _user_name(self, headers: Mapping[str, str], body: Mapping[str, object]) -> str | None:
        """The payee's name, decrypted; it must be encrypted under the key the call names."""
        if body.get("user_name") is None:
            return None
        cipher = checks.text(body, "user_name", max_len=2048)
        if get_header(headers, H_SERIAL) != self._key_id:
            raise checks.invalid(f"{H_SERIAL} must name the WeChat Pay public key of user_name")
        try:
            return decrypt_field(self._key, cipher)
        except SensitiveFieldError:
            raise checks.invalid("user_name does not decrypt with the WeChat Pay key") from None


def _report(body: Mapping[str, object], scene_id: str) -> tuple[tuple[str, str], ...]:
    """`transfer_scene_report_infos`: required; a scene's fixed labels, each once."""
    infos = body.get("transfer_scene_report_infos")
    if not isinstance(infos, list) or not infos:
        raise checks.invalid("transfer_scene_report_infos must be a non-empty array")
    report: list[tuple[str, str]] = []
    for info in infos:
        if not isinstance(info, dict):
            raise checks.invalid("transfer_scene_report_infos holds objects")
        report.append((checks.text(info, "info_type", max_len=MAX_REPORT_TYPE),
                       checks.text(info, "info_content", max_len=MAX_TRANSFER_REMARK)))
    labels = TRANSFER_SCENE_REPORT_TYPES.get(scene_id)
    if labels is not None and sorted(t for t, _ in report) != sorted(labels):
        raise checks.invalid(f"转账场景{scene_id}的报备信息须为：{'、'.join(labels)}")
    return tuple(report)
