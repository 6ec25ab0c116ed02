"""Checks of the bank's request bodies: a bad field refuses the call with 400 INVALID_REQUEST."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

from adapters.bank import protocol
from adapters.simkit.replies import Refused, error


def invalid(message: str) -> Refused:
    return Refused(error(400, "INVALID_REQUEST", message))


def order_no(body: Mapping[str, object], key: str) -> str:
    value = body.get(key)
    if not protocol.valid_order_no(value):
        raise invalid(f"{key} must be 1-64 characters of [0-9A-Za-z_-]")
    return value


def money(body: Mapping[str, object]) -> tuple[int, str]:
    amount, currency = body.get("amount"), body.get("currency")
    if not protocol.valid_amount(amount):
        raise invalid("amount must be a positive integer of minor units")
    if not protocol.valid_currency(currency):
        raise invalid(f"currency must be one of {sorted(protocol.SUPPORTED_CURRENCIES)}")
    return amount, currency


def text(
    body: Mapping[str, object],
    key: str,
    *,
    required: bool = True,
    max_len: int = 128,
    pattern_alnum: bool = False,
) -> str:
    value = body.get(key, None if required else "")
    if not isinstance(value, str) or len(value) > max_len or (required and not value):
        raise invalid(f"{key} must be a string of at most {max_len} characters")
    if pattern_alnum and not (value.isascii() and value.isalnum()):
        raise invalid(f"{key} must be ASCII letters and digits")
    return value


def url(body: Mapping[str, object], key: str, *, required: bool) -> str | None:
    value = body.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or len(value) > 512:
        raise invalid(f"{key} must be an http(s) URL")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise invalid(f"{key} must be an http(s) URL")
    return value
