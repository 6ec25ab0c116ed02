"""Checks of WeChat Pay request bodies: 400 PARAM_ERROR for a missing or malformed field,
400 APPID_MCHID_NOT_MATCH when the body names another merchant or app."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from urllib.parse import urlsplit

from adapters.simkit.replies import Refused, error
from adapters.wechatpay import protocol

_DIGITS_RE = re.compile(r"[0-9]{1,32}")
_AUTH_CODE_RE = re.compile(r"[0-9A-Za-z]{1,128}")


def invalid(message: str) -> Refused:
    return Refused(error(400, "PARAM_ERROR", message))


def mismatch() -> Refused:
    return Refused(error(400, "APPID_MCHID_NOT_MATCH", "appid和mch_id不匹配"))


# --------------------------------------------------------------------------- identities
def identity(
    body: Mapping[str, object], partner: bool, *, appid: str, mchid: str
) -> dict[str, str]:
    """appid + mchid (or the partner quartet) of a body; they must be ours."""
    if not partner:
        body_appid, body_mchid = text(body, "appid", max_len=32), text(body, "mchid", max_len=32)
        if (body_appid, body_mchid) != (appid, mchid):
            raise mismatch()
        return {"appid": body_appid, "mchid": body_mchid}
    ident = {
        "sp_appid": text(body, "sp_appid", max_len=32),
        "sp_mchid": text(body, "sp_mchid", max_len=32),
        "sub_mchid": digits(body, "sub_mchid"),
    }
    if (ident["sp_appid"], ident["sp_mchid"]) != (appid, mchid):
        raise mismatch()
    if "sub_appid" in body:
        ident["sub_appid"] = text(body, "sub_appid", max_len=32)
    return ident


def mch_scope(fields: Mapping[str, object], partner: bool, *, mchid: str) -> str:
    """The sub_mchid a close/query acts for ("" when direct); the mchid must be ours."""
    if not partner:
        if text(fields, "mchid", max_len=32) != mchid:
            raise mismatch()
        return ""
    if text(fields, "sp_mchid", max_len=32) != mchid:
        raise mismatch()
    return digits(fields, "sub_mchid")


# --------------------------------------------------------------------------- fields
def text(body: Mapping[str, object], key: str, *, max_len: int, required: bool = True) -> str:
    value = body.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or not value or len(value) > max_len:
        raise invalid(f"{key} must be a string of 1-{max_len} characters")
    return value


def digits(body: Mapping[str, object], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not _DIGITS_RE.fullmatch(value):
        raise invalid(f"{key} must be 1-32 digits")
    return value


def obj(body: Mapping[str, object], key: str) -> Mapping[str, object]:
    value = body.get(key)
    if not isinstance(value, dict):
        raise invalid(f"{key} must be an object")
    return value


def out_trade_no(body: Mapping[str, object]) -> str:
    value = body.get("out_trade_no")
    if not protocol.valid_out_trade_no(value):
        raise invalid("out_trade_no must be 6-32 characters of [0-9A-Za-z_-]")
    return value


def _currency(amount: Mapping[str, object]) -> None:
    if amount.get("currency", "CNY") != "CNY":
        raise invalid("amount.currency must be CNY")


def amount_total(body: Mapping[str, object]) -> int:
    amount = obj(body, "amount")
    total = amount.get("total")
    if not protocol.valid_amount(total):
        raise invalid("amount.total must be a positive integer of fen")
    _currency(amount)
    return total


def refund_amounts(body: Mapping[str, object]) -> tuple[int, int]:
    amount = obj(body, "amount")
    refund, total = amount.get("refund"), amount.get("total")
    if not protocol.valid_amount(refund) or not protocol.valid_amount(total):
        raise invalid("amount.refund and amount.total must be positive integers of fen")
    _currency(amount)
    return refund, total


def time_expire(body: Mapping[str, object]) -> None:
    value = body.get("time_expire")
    if value is None:
        return
    try:
        parsed = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise invalid("time_expire must be an RFC 3339 time with an offset")


def notify_url(body: Mapping[str, object], *, required: bool) -> str | None:
    value = body.get("notify_url")
    if value is None and not required:
        return None
    if not isinstance(value, str) or len(value) > 256:
        raise invalid("notify_url must be an http(s) URL")
    parts = urlsplit(value)
    # Real WeChat wants https; http is accepted so local receivers work.
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query:
        raise invalid("notify_url must be an http(s) URL without a query string")
    return value


def payer(kind: str, body: Mapping[str, object], ident: Mapping[str, str]) -> dict[str, str]:
    """Scene-specific checks; returns the payer as a Transaction shows it."""
    if kind == "codepay":
        auth_code = obj(body, "payer").get("auth_code")
        if not isinstance(auth_code, str) or not _AUTH_CODE_RE.fullmatch(auth_code):
            raise invalid("payer.auth_code must be the scanned payment code")
        obj(obj(body, "scene_info"), "store_info")
        return {}
    if kind == "jsapi":
        return _jsapi_payer(obj(body, "payer"), ident)
    if kind == "h5":
        scene = obj(body, "scene_info")
        text(scene, "payer_client_ip", max_len=45)
        if obj(scene, "h5_info").get("type") not in ("iOS", "Android", "Wap"):
            raise invalid("scene_info.h5_info.type must be iOS, Android or Wap")
    return {}


def _jsapi_payer(payer: Mapping[str, object], ident: Mapping[str, str]) -> dict[str, str]:
    if "sub_mchid" not in ident:
        return {"openid": text(payer, "openid", max_len=128)}
    if "sub_openid" in payer:
        if "sub_appid" not in ident:
            raise invalid("payer.sub_openid needs sub_appid")
        return {"sub_openid": text(payer, "sub_openid", max_len=128)}
    return {"sp_openid": text(payer, "sp_openid", max_len=128)}
