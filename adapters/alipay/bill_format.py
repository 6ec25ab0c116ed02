"""The layout of Alipay's trade bill (账单), shared by the adapter that reads it and the
simulator that writes it.

`alipay.data.dataservice.bill.downloadurl.query` (`bill_type` trade, `bill_date`
YYYY-MM-DD) answers `bill_download_url`, a link that expires 30 s after it is given. The
link serves, unsigned, a zip named `<account>_<yyyyMMdd>.csv.zip` whose entry names are
GBK without the zip's UTF-8 flag: `<account>_<yyyyMMdd>_业务明细.csv` (one line per
payment or refund) and `<account>_<yyyyMMdd>_业务明细(汇总).csv` (totals per store).
The account is the merchant's PID followed by `0156`.

The detail file is GBK CSV. Lines starting with `#` frame it (title, account, period,
totals); the first other line names the columns below; long numbers end with a tab so
spreadsheets keep them as text. A refund line (业务类型 退款) has negative amounts and the
refund's `out_request_no` in 退款批次号/请求号.

The domestic layout has no currency column: this project writes the priced currency of a
cross-border trade into 备注 as `trans_currency=JPY` (an assumption of ours: Alipay's
cross-border merchants reconcile with other files, which are not modelled).
"""

from __future__ import annotations

from datetime import date
from typing import Final

ENCODING: Final = "gbk"
BILL_TYPE: Final = "trade"
BILL_NOT_EXIST: Final = "isp.bill_not_exist"  # the sub_code of a day with no bill (yet)
LINK_SECONDS: Final = 30.0  # how long a download link stays valid

PAYMENT: Final = "交易"
REFUND: Final = "退款"
CURRENCY_NOTE: Final = "trans_currency="

TRADE_NO: Final = "支付宝交易号"
OUT_TRADE_NO: Final = "商户订单号"
TYPE: Final = "业务类型"
SUBJECT: Final = "商品名称"
CREATED: Final = "创建时间"
FINISHED: Final = "完成时间"
BUYER: Final = "对方账户"
ORDER_AMOUNT: Final = "订单金额（元）"
RECEIVED: Final = "商家实收（元）"
REQUEST_NO: Final = "退款批次号/请求号"
SERVICE_FEE: Final = "服务费（元）"
NOTE: Final = "备注"

# Every column of the detail file, in Alipay's order.
COLUMNS: Final = (
    TRADE_NO, OUT_TRADE_NO, TYPE, SUBJECT, CREATED, FINISHED, "门店编号", "门店名称",
    "操作员", "终端号", BUYER, ORDER_AMOUNT, RECEIVED, "支付宝红包（元）", "集分宝（元）",
    "支付宝优惠（元）", "商家优惠（元）", "券核销金额（元）", "券名称",
    "商家红包消费金额（元）", "卡消费金额（元）", REQUEST_NO, SERVICE_FEE, "分润（元）", NOTE,
)  # fmt: skip


def account(pid: str) -> str:
    """The account a bill names: the merchant's PID and `0156`."""
    return pid + "0156"


def archive_name(pid: str, day: date) -> str:
    return f"{account(pid)}_{day:%Y%m%d}.csv.zip"


def detail_suffix(day: date) -> str:
    """How the detail file's name ends (its account is not checked: an agent's differs)."""
    return f"_{day:%Y%m%d}_业务明细.csv"


def summary_name(pid: str, day: date) -> str:
    return f"{account(pid)}_{day:%Y%m%d}_业务明细(汇总).csv"
