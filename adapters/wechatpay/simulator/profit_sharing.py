"""Profit sharing (分账) in the WeChat Pay simulator: split orders of paid orders, their
returns, and the one place a split is weighed against the merchant's cap.

A split is accepted PROCESSING, with every receiver PENDING, and finishes `SPLIT_DELAY`
(× time_scale) later: each receiver is paid (SUCCESS), except one whose account ends in
`2` (SANDBOX.md: a frozen account), which is CLOSED with ACCOUNT_ABNORMAL and gives its
share back. The splits of one order may not exceed what was paid × the merchant's max
ratio (`max_ratio`, in 1/10000; 3000 unless set). A return takes money back from a
merchant receiver at once (SUCCESS). Splits and returns are keyed by (sub_mchid or "",
out_order_no / out_return_no): the same number with the same parameters answers the same
object, other parameters are refused. Synchronous on purpose, like the ledger.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import final

from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa

from adapters.simkit.payees import PayeeOutcome, Payees, payee_outcome
from adapters.simkit.replies import Reply, error
from adapters.simkit.runtime import Schedule
from adapters.simkit.signed_api import SignedRuntime
from adapters.wechatpay.profit_sharing import (
    MAX_RECEIVERS,
    ORDERS_PATH,
    RETURNS_PATH,
    ReceiverResult,
    ReceiverType,
    SplitState,
)
from adapters.wechatpay.protocol import H_SERIAL, WeChatPayCredentials, get_header, valid_amount
from adapters.wechatpay.sensitive import SensitiveFieldError, decrypt_field
from adapters.wechatpay.simulator import checks
from adapters.wechatpay.simulator.ledger import Ledger
from adapters.wechatpay.simulator.profit_sharing_records import (
    ReceiverRecord,
    ReturnRecord,
    SplitRecord,
)
from adapters.wechatpay.simulator.records import CN, OrderRecord, now_text

SPLIT_DELAY = 1.0  # a split stays PROCESSING this long (× time_scale)
DEFAULT_MAX_RATIO = 3000  # 1/10000 of the paid amount: 30 %
MAX_SPLITS_PER_ORDER = 50
MAX_DESCRIPTION = 80
_NO_RE = re.compile(r"[0-9A-Za-z_\-|*@]{1,64}")  # out_order_no, out_return_no
_NOT_FOUND = error(404, "RESOURCE_NOT_EXISTS", "记录不存在")


@final
@dataclass(slots=True)
class _Shared:
    """What the splits of one paid order have taken of it."""

    amount: int = 0
    splits: int = 0
    finished: bool = False  # the rest was unfrozen: no more splits


@final
class ProfitSharing:
    """Split orders and returns of one (service-provider) merchant."""

    __slots__ = ("_appid", "_key", "_key_id", "_ledger", "_returns", "_schedule", "_shared",
                 "_splits", "max_ratio", "payees")

    def __init__(self, creds: WeChatPayCredentials, ledger: Ledger, schedule: Schedule,
                 payees: Payees, max_ratio: int = DEFAULT_MAX_RATIO) -> None:
        if creds.platform_private_key is None:
            raise ValueError("profit sharing needs the platform private key (to read names)")
        self._key: rsa.RSAPrivateKey = creds.platform_private_key
        self._key_id = creds.platform_public_key_id
        self._appid = creds.appid
        self._ledger = ledger
        self._schedule = schedule
        self.payees = payees  # the real names behind openids (`POST /sim/payees`)
        self.max_ratio = max_ratio
        self._splits: dict[tuple[str, str], SplitRecord] = {}
        self._returns: dict[tuple[str, str], ReturnRecord] = {}
        self._shared: dict[tuple[str, str], _Shared] = {}  # by the order's key

    # ----------------------------------------------------------------- splits
    def split(self, headers: Mapping[str, str], body: Mapping[str, object]) -> Reply:
        if checks.text(body, "appid", max_len=32) != self._appid:
            raise checks.mismatch()
        scope = _scope(body)
        transaction_id = checks.text(body, "transaction_id", max_len=32)
        no = _number(body, "out_order_no")
        finish = body.get("unfreeze_unsplit")
        if not isinstance(finish, bool):
            raise checks.invalid("unfreeze_unsplit must be true or false")
        receivers = self._receivers(headers, body)
        params = (transaction_id, finish, receivers)
        known = self._splits.get((scope, no))
        if known is not None:
            if known.params != params:
                return error(400, "INVALID_REQUEST", "商户分账单号已存在，且请求参数不一致")
            return Reply(200, known.to_json())
        order = self._ledger.by_transaction_id(scope, transaction_id)
        if order is None:
            return error(404, "RESOURCE_NOT_EXISTS", "微信订单号不存在")
        for _, account, _, _, name in receivers:
            if not self.payees.name_matches(account, name):
                return error(400, "INVALID_REQUEST", "分账接收方姓名校验不通过")
        return self._accept(scope, no, params, order, receivers, finish)

    def _accept(self, scope: str, no: str, params: tuple[object, ...], order: OrderRecord,
                receivers: tuple[tuple[ReceiverType, str, int, str, str | None], ...],
                finish: bool) -> Reply:
        """The one place a split is weighed against the order and the cap, and taken."""
        shared = self._shared.setdefault(order.key, _Shared())
        amount = sum(r[2] for r in receivers)
        cap = min(order.charged * self.max_ratio // 10000, order.charged - order.refund_reserved)
        if order.charges == 0:
            return error(400, "INVALID_REQUEST", "订单未支付，不能分账")
        if shared.finished:
            return error(400, "INVALID_REQUEST", "订单已分账完结，剩余资金已解冻")
        if shared.splits >= MAX_SPLITS_PER_ORDER:
            return error(400, "INVALID_REQUEST", "分账次数超过限制")
        if shared.amount + amount > cap:
            return error(400, "INVALID_REQUEST", "分账金额超出最大分账比例")
        shared.amount += amount
        shared.splits += 1
        shared.finished = finish
        now = now_text()
        split = SplitRecord((scope, no), params, order, self._id("30"), [
            ReceiverRecord(kind, account, share, description, self._id("36"), now)
            for kind, account, share, description, _ in receivers
        ])
        self._splits[split.key] = split
        self._schedule(SPLIT_DELAY, lambda: self._finish(split))
        return Reply(200, split.to_json())

    def _finish(self, split: SplitRecord) -> None:
        now = now_text()
        for receiver in split.receivers:
            receiver.finish_time = now
            if payee_outcome(receiver.account) is PayeeOutcome.FROZEN:
                receiver.result, receiver.fail_reason = ReceiverResult.CLOSED, "ACCOUNT_ABNORMAL"
                self._shared[split.order.key].amount -= receiver.amount  # not shared after all
            else:
                receiver.result = ReceiverResult.SUCCESS
        split.state = SplitState.FINISHED

    def query(self, no: str, params: Mapping[str, str]) -> Reply:
        split = self._splits.get((_scope(params), no))
        transaction_id = checks.text(params, "transaction_id", max_len=32)
        if split is None or split.order.transaction_id != transaction_id:
            return _NOT_FOUND
        return Reply(200, split.to_json())

    # ----------------------------------------------------------------- returns
    def return_(self, body: Mapping[str, object]) -> Reply:
        scope = _scope(body)
        no = _number(body, "out_return_no")
        return_mchid = checks.text(body, "return_mchid", max_len=32)
        amount = body.get("amount")
        if not valid_amount(amount):
            raise checks.invalid("amount must be a positive integer of fen")
        description = checks.text(body, "description", max_len=MAX_DESCRIPTION)
        split = self._split_of(scope, body)
        params = (split.key if split else None, return_mchid, amount, description)
        known = self._returns.get((scope, no))
        if known is not None:
            if known.params != params:
                return error(400, "INVALID_REQUEST", "商户回退单号已存在，且请求参数不一致")
            return Reply(200, known.to_json())
        if split is None:
            return _NOT_FOUND
        receiver = next((r for r in split.receivers if r.type is ReceiverType.MERCHANT_ID
                         and r.account == return_mchid
                         and r.result is ReceiverResult.SUCCESS), None)
        if receiver is None:
            return error(400, "INVALID_REQUEST", "回退方不是该分账单已成功分账的商户接收方")
        if receiver.returned + amount > receiver.amount:
            return error(400, "INVALID_REQUEST", "回退金额超过分账金额")
        receiver.returned += amount
        record = ReturnRecord((scope, no), params, split, self._id("90"), return_mchid,
                              amount, description, now_text())
        self._returns[record.key] = record
        return Reply(200, record.to_json())

    def _split_of(self, scope: str, body: Mapping[str, object]) -> SplitRecord | None:
        if "out_order_no" in body:
            return self._splits.get((scope, _number(body, "out_order_no")))
        order_id = checks.text(body, "order_id", max_len=64)
        return next((s for s in self._splits.values()
                     if s.key[0] == scope and s.order_id == order_id), None)

    def query_return(self, no: str, params: Mapping[str, str]) -> Reply:
        record = self._returns.get((_scope(params), no))
        if record is None or record.split.key[1] != params.get("out_order_no"):
            return _NOT_FOUND
        return Reply(200, record.to_json())

    def snapshot(self) -> dict[str, object]:
        """The `splits` of `GET /sim/ledger`, keyed like orders ("<sub_mchid>/<no>")."""
        return {(f"{sub}/{no}" if sub else no): split.ledger_row()
                for (sub, no), split in self._splits.items()}

    # ----------------------------------------------------------------- fields
    def _receivers(self, headers: Mapping[str, str], body: Mapping[str, object],
                   ) -> tuple[tuple[ReceiverType, str, int, str, str | None], ...]:
        raw = body.get("receivers")
        if not isinstance(raw, list) or not 0 < len(raw) <= MAX_RECEIVERS:
            raise checks.invalid(f"receivers must hold 1-{MAX_RECEIVERS} receivers")
        out = []
        for item in raw:
            if not isinstance(item, dict):
                raise checks.invalid("receivers holds objects")
            try:
                kind = ReceiverType(str(item.get("type")))
            except ValueError:
                raise checks.invalid("receivers[].type is not a receiver type") from None
            if kind is ReceiverType.PERSONAL_SUB_OPENID and "sub_appid" not in body:
                raise checks.invalid("PERSONAL_SUB_OPENID receivers need sub_appid")
            amount = item.get("amount")
            if not valid_amount(amount):
                raise checks.invalid("receivers[].amount must be a positive integer of fen")
            out.append((kind, checks.text(item, "account", max_len=64), amount,
                        checks.text(item, "description", max_len=MAX_DESCRIPTION),
                        self._name(headers, item)))
        return tuple(out)

    def _name(self, headers: Mapping[str, str], item: Mapping[str, object]) -> str | None:
        """A receiver's name, decrypted; it must be encrypted under the key the call names."""
        if item.get("name") is None:
            return None
        cipher = checks.text(item, "name", max_len=2048)
        if get_header(headers, H_SERIAL) != self._key_id:
            raise checks.invalid(f"{H_SERIAL} must name the WeChat Pay public key of name")
        try:
            return decrypt_field(self._key, cipher)
        except SensitiveFieldError:
            raise checks.invalid("name does not decrypt with the WeChat Pay key") from None

    def _id(self, prefix: str) -> str:
        return f"{prefix}{datetime.now(CN):%Y%m%d}{self._ledger.serial():018d}"


def _scope(fields: Mapping[str, object]) -> str:
    return checks.digits(fields, "sub_mchid") if "sub_mchid" in fields else ""


def _number(body: Mapping[str, object], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not _NO_RE.fullmatch(value):
        raise checks.invalid(f"{key} must be 1-64 characters of [0-9A-Za-z_-|*@]")
    return value


def routes(sim: SignedRuntime, splits: ProfitSharing) -> list[web.RouteDef]:
    """The signed `/v3/profitsharing/*` calls the simulator serves."""
    def no(request: web.Request) -> str:
        return request.match_info["no"]

    return [
        web.post(ORDERS_PATH, sim.api(lambda r, b: splits.split(r.headers, b), has_body=True)),
        web.get(f"{ORDERS_PATH}/{{no}}",
                sim.api(lambda r, _b: splits.query(no(r), r.query), has_body=False)),
        web.post(RETURNS_PATH, sim.api(lambda _r, b: splits.return_(b), has_body=True)),
        web.get(f"{RETURNS_PATH}/{{no}}",
                sim.api(lambda r, _b: splits.query_return(no(r), r.query), has_body=False)),
    ]
