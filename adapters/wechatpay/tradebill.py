"""WeChat Pay's trade bill (交易账单) file, `bill_type=ALL`: written by the simulator, read
by the adapter.

A CSV-like text: a header line, one line per payment (`交易状态` SUCCESS) or refund
(REFUND) whose every field starts with a backtick (so spreadsheets keep long numbers as
text), then a summary header and one summary line. Amounts are decimal strings in the
currency's major unit (yuan with 2 decimals for CNY); fees have 5 decimals.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Final, Literal, final

from adapters.currencies import format_major

__all__ = [
    "COLUMNS",
    "FEE_RATE",
    "SUMMARY_COLUMNS",
    "BillRow",
    "parse_table",
    "render",
]

COLUMNS: Final = (
    "交易时间", "公众账号ID", "商户号", "特约商户号", "设备号", "微信订单号", "商户订单号",
    "用户标识", "交易类型", "交易状态", "付款银行", "货币种类", "应结订单金额", "代金券金额",
    "微信退款单号", "商户退款单号", "退款金额", "充值券退款金额", "退款类型", "退款状态",
    "商品名称", "商户数据包", "手续费", "费率", "订单金额", "申请退款金额", "费率备注",
)
SUMMARY_COLUMNS: Final = ("总交易单数", "应结订单总金额", "退款总金额", "充值券退款总金额",
                          "手续费总金额", "订单总金额", "申请退款总金额")
FEE_RATE: Final = Decimal("0.006")  # the simulated merchant's rate: 0.60 %
_FEE_PLACES: Final = Decimal("0.00001")


@final
@dataclass(frozen=True, slots=True)
class BillRow:
    """One payment or refund line, as the simulator's ledger knows it."""

    kind: Literal["payment", "refund"]
    time: str  # "YYYY-MM-DD HH:MM:SS", Asia/Shanghai
    appid: str
    mchid: str
    sub_mchid: str
    transaction_id: str
    out_trade_no: str
    openid: str
    trade_type: str
    currency: str
    amount: int  # minor units: the order's amount, or the refund's
    description: str = ""
    attach: str = ""
    refund_id: str = ""
    out_refund_no: str = ""

    @property
    def order_no(self) -> str:
        """The order the line is about (what planted differences name)."""
        return self.out_trade_no

    def fee_fen(self) -> int:
        """The fee on this line, whole fen rounded half up; a refund gives its fee back."""
        fee = int((Decimal(self.amount) * FEE_RATE).quantize(Decimal(1), ROUND_HALF_UP))
        return fee if self.kind == "payment" else -fee


def _text(value: str) -> str:
    # A field can hold neither the backtick that opens the next one nor a line break.
    return value.replace("`", "'").replace("\r", " ").replace("\n", " ")


def _fee(fen: int) -> str:
    return f"{(Decimal(fen) / 100).quantize(_FEE_PLACES):f}"


def _fields(row: BillRow) -> list[str]:
    zero = format_major(0, row.currency)
    amount = format_major(row.amount, row.currency)
    payment = row.kind == "payment"
    return [
        row.time, row.appid, row.mchid, row.sub_mchid or "0", "", row.transaction_id,
        row.out_trade_no, row.openid, row.trade_type, "SUCCESS" if payment else "REFUND",
        "OTHERS", row.currency, amount if payment else zero, zero,
        "0" if payment else row.refund_id, "0" if payment else row.out_refund_no,
        zero if payment else amount, zero, "" if payment else "ORIGINAL",
        "" if payment else "SUCCESS", _text(row.description), _text(row.attach),
        _fee(row.fee_fen()), f"{FEE_RATE * 100:.2f}%", amount if payment else zero,
        zero if payment else amount, "",
    ]


def render(rows: Sequence[BillRow], currency: str = "CNY") -> bytes:
    """The bill file of `rows` (UTF-8, CRLF line ends). The summary's amounts are in
    `currency` and only add up lines of it."""
    lines = [",".join(COLUMNS)]
    lines += [",".join("`" + field for field in _fields(row)) for row in rows]
    same = [row for row in rows if row.currency == currency]
    paid = sum(row.amount for row in same if row.kind == "payment")
    refunded = sum(row.amount for row in same if row.kind == "refund")
    summary = [str(len(rows)), format_major(paid, currency), format_major(refunded, currency),
               format_major(0, currency), _fee(sum(row.fee_fen() for row in same)),
               format_major(paid, currency), format_major(refunded, currency)]
    lines += [",".join(SUMMARY_COLUMNS), ",".join("`" + field for field in summary)]
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


def parse_table(text: str) -> Iterable[dict[str, str]]:
    """Each detail line of a bill as {column: value}; raises ValueError when the text is
    not a trade bill. Fields are split on ",`" so a comma inside a field is kept."""
    lines = [line for line in text.lstrip("\ufeff").splitlines() if line.strip()]
    if not lines:
        raise ValueError("the bill is empty")
    header = lines[0].split(",")
    missing = {"交易状态", "微信订单号", "商户订单号", "货币种类"} - set(header)
    if missing:
        raise ValueError(f"the bill's header lacks {sorted(missing)}")
    for number, line in enumerate(lines[1:], start=2):
        if line.split(",", 1)[0] == SUMMARY_COLUMNS[0]:
            return  # the summary follows the details
        if not line.startswith("`"):
            raise ValueError(f"line {number} is not a bill line")
        fields = line[1:].split(",`")
        if len(fields) != len(header):
            raise ValueError(f"line {number} has {len(fields)} fields, not {len(header)}")
        yield dict(zip(header, fields, strict=True))
    raise ValueError("the bill has no summary: it is cut short")
