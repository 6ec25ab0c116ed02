"""Fund authorisations (pre-authorisation) of the Alipay simulator.

- `alipay.fund.auth.order.freeze` (in person) follows the payer's code like `trade.pay`
  (SANDBOX.md): `2` declined (40004 `PAYER_BALANCE_NOT_ENOUGH`), `5` 10003 then authorised
  about 3 s later, `6` 10003 until `POST /sim/authorizations/{out_order_no}/confirm` (or
  `/decline`), `9` authorised but the answer withheld, anything else authorised at once.
  The payer is the Alipay user behind the code (`payer_of`).
- `alipay.fund.auth.order.app.freeze` exists once the wallet opens its order string
  (`/sim/present`, like app payments) and waits (`INIT`) for `/confirm` or `/decline`; the
  payer is `identity_params.alipay_user_id`, else one derived from the order.
- A freeze that asks for credit (`extra_param.creditExtInfo.minCreditScore`) holds nothing
  when the payer's score (SANDBOX.md: a user id ending in 3 scores 500, others 700) meets
  it: a credit authorisation. Otherwise the amount is frozen.
- `alipay.trade.pay` with `auth_no` captures: a paid trade (in `orders`, charged once) and
  less held; `COMPLETE` releases the rest. `alipay.fund.auth.order.unfreeze` releases.
  Unlike a plain `trade.pay` (`ACQ.TRADE_HAS_SUCCESS`), a capture repeated identically
  answers its paid trade again: every new object of the simulators is idempotent by its
  number.
- An authorisation settled after its call answered (confirm, decline, a `5` code) sends its
  `fund_auth_freeze` notification to the freeze's `notify_url`.

Every method is synchronous on purpose: money is frozen, captured or released at most once
per request number, checks and changes running without an await between them.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import final

from aiohttp import web

from adapters.alipay import protocol
from adapters.alipay.fund_auth_wire import (
    CAPTURE_PRODUCT,
    IN_PERSON_PRODUCT,
    ONLINE_PRODUCT,
    AuthCodeType,
    AuthOrderStatus,
    CaptureSubCode,
    ConfirmMode,
    FundAuthSubCode,
    FundOperationStatus,
    OperationType,
)
from adapters.alipay.fund_wire import valid_user_id
from adapters.alipay.protocol import Code, Method
from adapters.alipay.simulator import checks
from adapters.alipay.simulator import fund_auth_checks as fields
from adapters.alipay.simulator.answers import Answer, ok, paid_answer
from adapters.alipay.simulator.fund_auth_records import (
    AuthRecord,
    OperationRecord,
    credit_score,
    new_ids,
    payer_of,
)
from adapters.alipay.simulator.ledger import Emit, Ledger
from adapters.alipay.simulator.records import TradeRecord
from adapters.simkit.payer_code import run_payer_code
from adapters.simkit.replies import Reply, error
from adapters.simkit.runtime import Schedule

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@final
class FundAuths:
    """Authorisations of one app, keyed by `out_order_no`; synchronous on purpose."""

    __slots__ = ("_app_id", "_captures", "_emit", "_ids", "_ledger", "_records", "_schedule")

    def __init__(self, ledger: Ledger, schedule: Schedule, emit: Emit, app_id: str) -> None:
        self._ledger = ledger
        self._schedule = schedule
        self._emit = emit
        self._app_id = app_id
        self._records: dict[str, AuthRecord] = {}
        # out_trade_no -> (fingerprint, the paid trade) of every capture
        self._captures: dict[str, tuple[tuple[object, ...], TradeRecord]] = {}
        self._ids = itertools.count(1)

    def apply(self, method: Method, biz: Mapping[str, object],
              common: Mapping[str, str]) -> Answer:
        """One fund-auth gateway call (a capture is `trade.pay`: see `capture`)."""
        match method:
            case Method.AUTH_FREEZE:
                return self.freeze(biz, common)
            case Method.AUTH_APP_FREEZE:  # the wallet opening the order string
                return self.present(biz, common)
            case Method.AUTH_UNFREEZE:
                return self.unfreeze(biz)
            case Method.AUTH_QUERY:
                return self.query(biz)
            case _:
                raise fields.invalid(f"{method} is not a fund authorisation call")

    # ----------------------------------------------------------------- freezing
    def freeze(self, biz: Mapping[str, object], common: Mapping[str, str]) -> Answer:
        """The in-person freeze: the payer's code decides, as for `trade.pay`."""
        code = fields.text(biz, "auth_code", 64)
        if not (len(code) >= 10 and code.isascii() and code.isalnum()):
            raise fields.invalid("auth_code is invalid")
        kind = biz.get("auth_code_type", AuthCodeType.BAR_CODE.value)
        if kind not in {k.value for k in AuthCodeType}:
            raise fields.invalid("auth_code_type must be bar_code or security_code")
        record, known = self._open(biz, common, IN_PERSON_PRODUCT, (code, kind), payer_of(code))
        if known:
            return self._freeze_answer(record)
        return run_payer_code(code, record, self, self._schedule)

    def present(self, biz: Mapping[str, object], common: Mapping[str, str]) -> Answer:
        """The wallet opens an online freeze's order string: it waits for the payer."""
        identity = fields.json_field(biz, "identity_params").get("alipay_user_id")
        if identity is not None and not valid_user_id(identity):
            raise fields.invalid("identity_params.alipay_user_id is not an Alipay user id")
        no = biz.get("out_order_no")
        payer = identity or payer_of(str(no), last="0")
        record, _ = self._open(biz, common, ONLINE_PRODUCT, (identity,), payer)
        return ok(out_order_no=record.out_order_no, out_request_no=record.freeze.out_request_no,
                  status=record.freeze.status.value)

    def _open(self, biz: Mapping[str, object], common: Mapping[str, str], product: str,
              extra: tuple[object, ...], payer: str) -> tuple[AuthRecord, bool]:
        """The authorisation `biz` names: new (INIT), or the one an identical call made."""
        no, request_no = biz.get("out_order_no"), biz.get("out_request_no")
        if not protocol.valid_out_no(no) or not protocol.valid_out_no(request_no):
            raise fields.invalid("out_order_no and out_request_no must be 1-64 of [A-Za-z0-9_]")
        if biz.get("product_code") != product:
            raise fields.invalid(f"product_code must be {product}")
        amount, title = fields.fen(biz, "amount"), fields.text(biz, "order_title")
        min_score = fields.min_score(biz)
        fingerprint = (product, request_no, amount, title, min_score, *extra)
        record = self._records.get(no)
        if record is not None:
            if record.fingerprint != fingerprint:
                raise fields.refused(FundAuthSubCode.PAYMENT_INFO_INCONSISTENCY,
                                     "out_order_no was used with other parameters")
            return record, True
        now = time.time()
        auth_no, operation_id = new_ids(now, next(self._ids))
        record = AuthRecord(no, auth_no, product, fingerprint, amount, title, payer, min_score,
                            common.get("notify_url") or None, now)
        record.operations[request_no] = OperationRecord(
            request_no, operation_id, OperationType.FREEZE, amount, fingerprint, now,
            FundOperationStatus.INIT)
        self._records[no] = record
        return record, False

    def _freeze_answer(self, record: AuthRecord) -> Answer:
        """How the freeze call answers for `record` as it stands."""
        match record.freeze.status:
            case FundOperationStatus.SUCCESS:
                return ok(**record.operation_view(record.freeze))
            case FundOperationStatus.INIT:
                return Answer({"code": Code.IN_PROGRESS.value, "msg": "order in process",
                               "auth_no": record.auth_no, "out_order_no": record.out_order_no,
                               "status": FundOperationStatus.INIT.value})
            case FundOperationStatus.CLOSED:
                return fields.declined()

    def _authorize(self, record: AuthRecord) -> None:
        # The one place an authorisation takes hold: guarded so it happens once.
        if record.status is not AuthOrderStatus.INIT:
            return
        needed = record.min_score
        record.credit = needed is not None and credit_score(record.payer) >= needed
        record.frozen = 0 if record.credit else record.amount
        record.rest = record.amount
        record.status = AuthOrderStatus.AUTHORIZED
        record.freeze.status, record.freeze.at = FundOperationStatus.SUCCESS, time.time()

    def _close(self, record: AuthRecord) -> None:
        record.status = AuthOrderStatus.CLOSED
        record.freeze.status, record.freeze.at = FundOperationStatus.CLOSED, time.time()

    def _notify(self, record: AuthRecord) -> None:
        if record.notify_url is not None:
            self._emit(record.notify_url, record.notification_fields(self._app_id))

    # --------------------------------------------------- the payer's code (`run_payer_code`)
    def pay_by_code(self, record: AuthRecord, *, withhold: bool) -> Answer:
        self._authorize(record)
        return Answer(self._freeze_answer(record).payload, withhold=withhold)

    def decline_code(self, record: AuthRecord) -> Answer:
        self._close(record)
        return fields.declined()

    def await_payer(self, record: AuthRecord) -> Answer:
        return self._freeze_answer(record)

    def payer_confirmed(self, record: AuthRecord) -> None:
        if record.status is AuthOrderStatus.INIT:
            self._authorize(record)
            self._notify(record)

    # ----------------------------------------------------------------- after the freeze
    def query(self, biz: Mapping[str, object]) -> Answer:
        record = self._find(biz)
        request_no = biz.get("out_request_no")
        op = record.operations.get(request_no) if isinstance(request_no, str) else None
        if op is None and isinstance(biz.get("operation_id"), str):
            op = next((o for o in record.operations.values()
                       if o.operation_id == biz["operation_id"]), None)
        if op is None:
            raise fields.refused(FundAuthSubCode.AUTH_OPERATION_NOT_EXIST, "no such fund operation")
        return ok(**record.detail_view(op))

    def unfreeze(self, biz: Mapping[str, object]) -> Answer:
        record = self._find(biz)
        request_no, amount = biz.get("out_request_no"), fields.fen(biz, "amount")
        if not protocol.valid_out_no(request_no):
            raise fields.invalid("out_request_no must be 1-64 of [A-Za-z0-9_]")
        remark = fields.text(biz, "remark", 100)
        fingerprint = (OperationType.UNFREEZE, amount, remark)
        known = record.operations.get(request_no)
        if known is not None:
            if known.fingerprint != fingerprint:
                raise fields.refused(FundAuthSubCode.PAYMENT_INFO_INCONSISTENCY,
                                     "out_request_no was used with other parameters")
            return ok(**record.operation_view(known))  # released once: nothing moves again
        if record.status is not AuthOrderStatus.AUTHORIZED or amount > record.rest:
            raise fields.refused(FundAuthSubCode.REQUEST_AMOUNT_EXCEED,
                                 f"{record.rest} fen is held, not {amount}")
        op = OperationRecord(request_no, new_ids(time.time(), next(self._ids))[1],
                             OperationType.UNFREEZE, amount, fingerprint, time.time())
        record.operations[request_no] = op
        self._release(record, amount)
        return ok(**record.operation_view(op))

    def capture(self, biz: Mapping[str, object]) -> Answer:
        """`alipay.trade.pay` naming an `auth_no`: the hold becomes a paid trade."""
        no, amount, subject = checks.order_fields(biz)
        auth_no = biz.get("auth_no")
        mode = biz.get("auth_confirm_mode", ConfirmMode.NOT_COMPLETE.value)
        if not isinstance(auth_no, str) or mode not in {m.value for m in ConfirmMode}:
            raise fields.refused(CaptureSubCode.INVALID_PARAMETER,
                                 "auth_no and auth_confirm_mode COMPLETE or NOT_COMPLETE needed")
        product = biz.get("product_code")
        fingerprint = (auth_no, amount, subject, product, mode)
        if no in self._captures:  # the same capture answers the same (see README)
            known, paid = self._captures[no]
            if known != fingerprint:
                raise fields.refused(CaptureSubCode.CONTEXT_INCONSISTENT,
                                     "out_trade_no was used with other parameters")
            return ok(**paid_answer(paid))
        record = next((r for r in self._records.values() if r.auth_no == auth_no), None)
        if record is None:
            raise fields.refused(CaptureSubCode.AUTH_NO_ERROR, "no such authorisation")
        if product not in (CAPTURE_PRODUCT, record.product):
            raise fields.refused(CaptureSubCode.PRE_AUTH_PROD_CODE_INCONSISTENT,
                                 "product_code does not match the authorisation's")
        refusal = {
            AuthOrderStatus.INIT: CaptureSubCode.AUTH_ORDER_NOT_PAID,
            AuthOrderStatus.FINISH: CaptureSubCode.AUTH_ORDER_HAS_FINISHED,
            AuthOrderStatus.CLOSED: CaptureSubCode.AUTH_ORDER_HAS_CLOSED,
        }.get(record.status)
        if refusal is not None:
            raise fields.refused(refusal, f"the authorisation is {record.status.value}")
        if amount > record.rest:
            raise fields.refused(CaptureSubCode.AUTH_AMOUNT_NOT_ENOUGH,
                                 f"{record.rest} fen is held, not {amount}")
        # Refused here (number in use by another trade) before anything changes.
        trade = self._ledger.captured(no, fingerprint, amount, subject, record.payer)
        self._captures[no] = (fingerprint, trade)
        now = time.time()
        record.operations[no] = OperationRecord(no, new_ids(now, next(self._ids))[1],
                                                OperationType.PAY, amount, fingerprint, now)
        record.captured += amount
        record.rest -= amount
        if mode == ConfirmMode.COMPLETE.value:
            self._release(record, record.rest)
        if record.rest == 0:
            record.status = AuthOrderStatus.FINISH
        return ok(**paid_answer(trade))

    def _release(self, record: AuthRecord, amount: int) -> None:
        record.rest -= amount
        record.released += amount  # on credit no money moves back: only the hold ends
        if record.rest == 0:
            record.status = (AuthOrderStatus.FINISH if record.captured
                             else AuthOrderStatus.CLOSED)

    def _find(self, biz: Mapping[str, object]) -> AuthRecord:
        no, auth_no = biz.get("out_order_no"), biz.get("auth_no")
        record = self._records.get(no) if isinstance(no, str) else None
        if record is None and isinstance(auth_no, str):
            record = next((r for r in self._records.values() if r.auth_no == auth_no), None)
        if record is None:
            raise fields.refused(FundAuthSubCode.AUTH_ORDER_NOT_EXIST, "no such authorisation")
        return record

    # ----------------------------------------------------------------- the simulated payer
    def _waiting(self, no: str) -> AuthRecord | Reply:
        record = self._records.get(no)
        if record is None:
            return error(404, "AUTH_ORDER_NOT_EXIST", "no such authorisation (present it first)")
        if record.status is not AuthOrderStatus.INIT:
            return error(409, "AUTH_ORDER_NOT_WAITING", f"authorisation is {record.status}")
        return record

    def confirm(self, no: str) -> Reply:
        record = self._waiting(no)
        if isinstance(record, Reply):
            return record
        self.payer_confirmed(record)
        return Reply(200, record.ledger_row())

    def decline(self, no: str) -> Reply:
        record = self._waiting(no)
        if isinstance(record, Reply):
            return record
        self._close(record)
        self._notify(record)
        return Reply(200, record.ledger_row())

    def routes(self) -> list[web.RouteDef]:
        def handler(action: Callable[[str], Reply]) -> Handler:
            async def handle(request: web.Request) -> web.Response:
                reply = action(request.match_info["no"])
                return web.json_response(dict(reply.payload or {}), status=reply.status)

            return handle

        return [
            web.post("/sim/authorizations/{no}/confirm", handler(self.confirm)),
            web.post("/sim/authorizations/{no}/decline", handler(self.decline)),
        ]

    def snapshot(self) -> dict[str, object]:
        return {no: record.ledger_row() for no, record in self._records.items()}
