"""E-invoices (电子发票) in the WeChat Pay simulator: issued at once for a paid order of the
merchant's own (the WITH_WECHATPAY scene), reversed at once, each notified.

An application's id is the paid order's transaction id; each invoice in it is keyed by
the merchant's `fapiao_id`. Issuing is answered 202 (no body), and the invoice is ISSUED
with its tax computed per item (`fapiao_wire.tax_of`) and a 20-digit number; reversing
makes it REVERSED. FAPIAO.ISSUED / FAPIAO.REVERSED go to the callback URL set with
`/merchant/development-config`, or, when none is set, to the paid order's notify_url.
The same fapiao_id with the same request answers 202 again and issues nothing; with
another request it is refused. Faults apply as to every signed call. Synchronous on
purpose, like the ledger.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from datetime import datetime
from typing import Final, final

from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa

from adapters.simkit.replies import Reply, error
from adapters.simkit.signed_api import SignedRuntime
from adapters.wechatpay.fapiao_wire import (
    APPLICATIONS_PATH,
    SCENE_WITH_WECHATPAY,
    BuyerType,
    FapiaoStatus,
    tax_of,
)
from adapters.wechatpay.protocol import H_SERIAL, WeChatPayCredentials, get_header, valid_amount
from adapters.wechatpay.sensitive import SensitiveFieldError, decrypt_field
from adapters.wechatpay.simulator import checks
from adapters.wechatpay.simulator.crossborder_records import pricing
from adapters.wechatpay.simulator.fapiao_records import InvoiceRecord, InvoiceWish, ItemRecord
from adapters.wechatpay.simulator.ledger import Emit, Ledger
from adapters.wechatpay.simulator.records import CN, OrderRecord, now_text

__all__ = ["DEVELOPMENT_CONFIG", "Fapiao", "routes"]

DEVELOPMENT_CONFIG: Final = "/v3/new-tax-control-fapiao/merchant/development-config"
_FAPIAO_ID_RE = re.compile(r"[0-9A-Za-z_\-|*]{1,32}")
_TAX_CODE_RE = re.compile(r"[0-9]{19}")
_NOT_FOUND = error(404, "RESOURCE_NOT_EXISTS", "发票申请单不存在")


@final
class Fapiao:
    """The invoices of one merchant, keyed by fapiao_id."""

    __slots__ = ("_emit", "_invoices", "_key", "_key_id", "_ledger", "_mchid", "callback_url")

    def __init__(self, creds: WeChatPayCredentials, ledger: Ledger, emit: Emit) -> None:
        if creds.platform_private_key is None:
            raise ValueError("invoices need the platform private key (to read emails)")
        self._key: rsa.RSAPrivateKey = creds.platform_private_key
        self._key_id = creds.platform_public_key_id
        self._mchid = creds.mchid
        self._ledger = ledger
        self._emit = emit
        self._invoices: dict[str, InvoiceRecord] = {}
        self.callback_url: str | None = None

    # ----------------------------------------------------------------- issue
    def issue(self, headers: Mapping[str, str], body: Mapping[str, object]) -> Reply:
        scope = checks.digits(body, "sub_mchid") if "sub_mchid" in body else ""
        if checks.text(body, "scene", max_len=32) != SCENE_WITH_WECHATPAY:
            raise checks.invalid("scene must be WITH_WECHATPAY")
        apply_id = checks.text(body, "fapiao_apply_id", max_len=32)
        buyer = self._buyer(headers, checks.obj(body, "buyer_information"))
        wanted = _fapiao_list(body)
        params = (apply_id, scope, buyer, tuple(wanted))
        known = [self._invoices[i.fapiao_id] for i in wanted if i.fapiao_id in self._invoices]
        if known:
            if len(known) != len(wanted) or any(k.params != params for k in known):
                return error(400, "INVALID_REQUEST", "商户发票单号已存在，但请求参数与原单不一致")
            return Reply(202, None)  # the same request again: nothing new is issued
        order = self._ledger.by_transaction_id(scope, apply_id)
        if order is None:
            return error(404, "RESOURCE_NOT_EXISTS", "fapiao_apply_id对应的支付订单不存在")
        refusal = self._refusal(order, sum(i.total for i in wanted))
        if refusal is not None:
            return refusal
        for wish in wanted:
            invoice = InvoiceRecord(
                fapiao_id=wish.fapiao_id, apply_id=apply_id, scope=scope, order=order,
                params=params, buyer=buyer, items=wish.items, total=wish.total,
                blue_number=self._number(),
                blue_check_code=f"{secrets.randbelow(10**20):020d}", blue_time=now_text(),
            )  # fmt: skip
            self._invoices[invoice.fapiao_id] = invoice
        self._notify(order, apply_id, scope, "FAPIAO.ISSUED", "发票开具成功")
        return Reply(202, None)

    def _number(self) -> str:
        """A fully digital invoice's 20-digit number: the year, the province, a serial."""
        return f"{datetime.now(CN):%y}44{self._ledger.serial():016d}"

    def _refusal(self, order: OrderRecord, total: int) -> Reply | None:
        if order.charges == 0:
            return error(400, "INVALID_REQUEST", "订单未支付，不能开票")
        if pricing(order)[0] != "CNY":
            return error(400, "INVALID_REQUEST", "仅支持人民币订单开票")
        issued = sum(i.total for i in self._invoices.values()
                     if i.order is order and i.status is not FapiaoStatus.REVERSED)
        if issued + total > order.charged:
            return error(400, "INVALID_REQUEST", "开票金额超过订单支付金额")
        return None

    def _buyer(self, headers: Mapping[str, str],
               fields: Mapping[str, object]) -> tuple[str, str, str, str]:
        """(type, name, taxpayer_id, email), the email decrypted."""
        kind = checks.text(fields, "type", max_len=16)
        if kind not in BuyerType.__members__:
            raise checks.invalid("buyer_information.type must be INDIVIDUAL or ORGANIZATION")
        name = checks.text(fields, "name", max_len=100)
        tax_id = checks.text(fields, "taxpayer_id", max_len=20, required=False)
        if kind == BuyerType.ORGANIZATION and not tax_id:
            raise checks.invalid("an ORGANIZATION buyer needs taxpayer_id")
        email = ""
        if fields.get("email") is not None:
            cipher = checks.text(fields, "email", max_len=2048)
            if get_header(headers, H_SERIAL) != self._key_id:
                raise checks.invalid(f"{H_SERIAL} must name the WeChat Pay public key of email")
            try:
                email = decrypt_field(self._key, cipher)
            except SensitiveFieldError:
                raise checks.invalid("email does not decrypt with the WeChat Pay key") from None
        return kind, name, tax_id, email

    # ----------------------------------------------------------------- query, reverse
    def query(self, apply_id: str, params: Mapping[str, str]) -> Reply:
        scope = checks.digits(params, "sub_mchid") if "sub_mchid" in params else ""
        wanted = params.get("fapiao_id")
        found = [i for i in self._invoices.values() if i.apply_id == apply_id
                 and i.scope == scope and wanted in (None, i.fapiao_id)]
        if not found:
            return _NOT_FOUND
        return Reply(200, {"total_count": len(found),
                           "fapiao_information": [i.to_json() for i in found]})

    def reverse(self, apply_id: str, body: Mapping[str, object]) -> Reply:
        scope = checks.digits(body, "sub_mchid") if "sub_mchid" in body else ""
        checks.text(body, "reverse_reason", max_len=128)
        entries = body.get("fapiao_information")
        if not isinstance(entries, list) or not entries:
            raise checks.invalid("fapiao_information must be a non-empty array")
        targets: list[InvoiceRecord] = []
        for entry in entries:
            if not isinstance(entry, dict):
                raise checks.invalid("fapiao_information holds objects")
            invoice = self._invoices.get(checks.text(entry, "fapiao_id", max_len=32))
            if invoice is None or invoice.apply_id != apply_id or invoice.scope != scope:
                return _NOT_FOUND
            if checks.text(entry, "fapiao_number", max_len=32) != invoice.blue_number:
                raise checks.invalid("fapiao_number is not the number of that invoice")
            if entry.get("fapiao_code") not in (None, "", invoice.blue_code):
                raise checks.invalid("fapiao_code is not the code of that invoice")
            targets.append(invoice)
        fresh = [i for i in targets if i.status is FapiaoStatus.ISSUED]
        for invoice in fresh:
            invoice.status = FapiaoStatus.REVERSED
            invoice.red_number, invoice.red_time = self._number(), now_text()
        if fresh:
            self._notify(fresh[0].order, apply_id, scope, "FAPIAO.REVERSED", "发票冲红成功")
        return Reply(202, None)  # a reversed invoice reversed again: the same answer

    # ----------------------------------------------------------------- notifications, ledger
    def _notify(self, order: OrderRecord, apply_id: str, scope: str, event: str,
                summary: str) -> None:
        url = self.callback_url or order.notify_url
        if url is None:
            return
        plain: dict[str, object] = {
            "mchid": self._mchid, "fapiao_apply_id": apply_id,
            "fapiao_information": [i.notice() for i in self._invoices.values()
                                   if i.apply_id == apply_id and i.scope == scope],
        }
        if scope:
            plain["sub_mchid"] = scope
        self._emit(url, event, summary, "fapiao", plain)

    def set_config(self, body: Mapping[str, object]) -> Reply:
        self.callback_url = checks.notify_url({"notify_url": body.get("callback_url")},
                                              required=True)
        return Reply(200, {"callback_url": self.callback_url})

    def snapshot(self) -> dict[str, object]:
        return {no: invoice.ledger_row() for no, invoice in self._invoices.items()}


def _fapiao_list(body: Mapping[str, object]) -> list[InvoiceWish]:
    """The invoices a request asks for; each one's items must add up to its total."""
    entries = body.get("fapiao_information")
    if not isinstance(entries, list) or not entries:
        raise checks.invalid("fapiao_information must be a non-empty array")
    wanted: list[InvoiceWish] = []
    for entry in entries:
        if not isinstance(entry, dict):
            raise checks.invalid("fapiao_information holds objects")
        fapiao_id = checks.text(entry, "fapiao_id", max_len=32)
        if not _FAPIAO_ID_RE.fullmatch(fapiao_id):
            raise checks.invalid("fapiao_id must be 1-32 letters, digits or _-|*")
        total = entry.get("total_amount")
        if not valid_amount(total):
            raise checks.invalid("total_amount must be a positive integer of fen")
        items = tuple(_item(raw) for raw in _list(entry, "items"))
        if sum(item.total for item in items) != total:
            raise checks.invalid("发票行金额之和与总价税合计不一致")
        wanted.append(InvoiceWish(fapiao_id, total, items))
    if len({w.fapiao_id for w in wanted}) != len(wanted):
        raise checks.invalid("fapiao_id repeats within the request")
    return wanted


def _list(entry: Mapping[str, object], key: str) -> list[Mapping[str, object]]:
    value = entry.get(key)
    if not isinstance(value, list) or not value or not all(isinstance(v, dict) for v in value):
        raise checks.invalid(f"{key} must be a non-empty array of objects")
    return value


def _item(raw: Mapping[str, object]) -> ItemRecord:
    tax_code = checks.text(raw, "tax_code", max_len=19)
    if not _TAX_CODE_RE.fullmatch(tax_code):
        raise checks.invalid("tax_code must be the 19-digit tax classification code")
    name = checks.text(raw, "goods_name", max_len=64, required=False)
    quantity, total, rate = raw.get("quantity"), raw.get("total_amount"), raw.get("tax_rate")
    if type(quantity) is not int or quantity <= 0:
        raise checks.invalid("quantity must be a positive integer")
    if not valid_amount(total):
        raise checks.invalid("items.total_amount must be a positive integer of fen")
    if type(rate) is not int or not 0 <= rate <= 10_000:
        raise checks.invalid("tax_rate must be an integer of 1/10000, 0-10000")
    return ItemRecord(tax_code, name, quantity, total, rate, tax_of(total, rate))


def routes(sim: SignedRuntime, fapiao: Fapiao) -> list[web.RouteDef]:
    """The signed `/v3/new-tax-control-fapiao/*` calls the simulator serves."""
    def apply_id(request: web.Request) -> str:
        return request.match_info["apply_id"]

    by_id = f"{APPLICATIONS_PATH}/{{apply_id}}"
    return [
        web.post(APPLICATIONS_PATH,
                 sim.api(lambda r, b: fapiao.issue(r.headers, b), has_body=True)),
        web.get(by_id, sim.api(lambda r, _b: fapiao.query(apply_id(r), r.query),
                               has_body=False)),
        web.post(f"{by_id}/reverse",
                 sim.api(lambda r, b: fapiao.reverse(apply_id(r), b), has_body=True)),
        web.post(DEVELOPMENT_CONFIG, sim.api(lambda _r, b: fapiao.set_config(b), has_body=True)),
        web.get(DEVELOPMENT_CONFIG, sim.api(
            lambda _r, _b: Reply(200, {"callback_url": fapiao.callback_url or ""}),
            has_body=False)),
    ]
