"""Which wallet a payer is in: from what the payment says about the payer.

Used by routing rules (`match.wallet`) and, for codes any wallet can scan, by the
checkout pages. Payer codes are recognisable by their shape: WeChat Pay's are 18 digits
starting 10–15, Alipay's 16–24 digits starting 25–30 (face-pay codes start `fp`),
UnionPay's QR payment codes 19 digits starting 62.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from router.validation import WALLETS

# The adapter that serves each wallet's payers directly (UnionPay through a bank rail).
WALLET_RAILS: Final = {"wechat": "wechatpay", "alipay": "alipay", "unionpay": "bank"}


def wallet_of_payer(payer: Mapping[str, str]) -> str | None:
    explicit = payer.get("wallet")
    if explicit in WALLETS:
        return explicit
    if payer.get("openid") or payer.get("sub_openid") or payer.get("sp_openid"):
        return "wechat"
    if payer.get("buyer_id") or payer.get("buyer_open_id"):
        return "alipay"
    code = payer.get("auth_code", "")
    if code.startswith("fp"):
        return "alipay"
    if code.isdigit():
        head = int(code[:2]) if len(code) >= 2 else -1
        if len(code) == 18 and 10 <= head <= 15:
            return "wechat"
        if 16 <= len(code) <= 24 and 25 <= head <= 30:
            return "alipay"
        if len(code) == 19 and head == 62:
            return "unionpay"
    return None


def wallet_of_user_agent(user_agent: str) -> str:
    """The app a page was opened in, from its User-Agent."""
    if "MicroMessenger" in user_agent:
        return "wechat"
    if "AlipayClient" in user_agent:
        return "alipay"
    if "UnionPay" in user_agent or "CloudPay" in user_agent:
        return "unionpay"
    return "other"
