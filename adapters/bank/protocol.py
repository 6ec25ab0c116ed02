"""The security layer of the bank rail, shared by the adapter and the simulator: the
credential bundle and the HMAC signatures of requests, answers and notifications.

Everything here is pure: no sockets, no clocks read implicitly (callers pass `now`),
so both sides sign and check exactly the same bytes. The bodies, their statuses and the
limits of their fields are in `wire`; the names the simulator and tests use stay
importable from here.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import string
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import final

from adapters.bank.wire import (
    MAX_AMOUNT,
    SUPPORTED_CURRENCIES,
    OrderStatus,
    RefundStatus,
    valid_amount,
    valid_currency,
    valid_order_no,
)
from adapters.bundles import create_exclusive

__all__ = [
    "H_MERCHANT",
    "H_NONCE",
    "H_SIGNATURE",
    "H_TIMESTAMP",
    "MAX_AMOUNT",
    "MAX_SKEW_SECONDS",
    "SUPPORTED_CURRENCIES",
    "BankCredentials",
    "BundleError",
    "OrderStatus",
    "RefundStatus",
    "get_header",
    "is_fresh",
    "load_bundle",
    "load_or_create_bundle",
    "new_nonce",
    "notification_string",
    "qr_signature",
    "request_string",
    "response_string",
    "sign",
    "sign_notification",
    "sign_request",
    "sign_response",
    "valid_amount",
    "valid_currency",
    "valid_nonce",
    "valid_order_no",
    "verify",
    "verify_notification_headers",
    "verify_response_headers",
]

H_MERCHANT = "Bank-Merchant-Id"
H_TIMESTAMP = "Bank-Timestamp"
H_NONCE = "Bank-Nonce"
H_SIGNATURE = "Bank-Signature"

MAX_SKEW_SECONDS = 300

MERCHANT_FILE = "merchant_id.txt"
KEY_FILE = "hmac_key.txt"

_NONCE_ALPHABET = string.ascii_letters + string.digits
_NONCE_RE = re.compile(r"[0-9A-Za-z]{32}")
_MERCHANT_RE = re.compile(r"BANK[0-9]{10}")
_KEY_RE = re.compile(r"[0-9a-f]{64}")


# --------------------------------------------------------------------------- credentials
class BundleError(Exception):
    """The credential bundle is missing or malformed (never carries key material)."""


@final
@dataclass(frozen=True, slots=True)
class BankCredentials:
    merchant_id: str
    hmac_key: bytes

    def __repr__(self) -> str:
        # The key must never reach a log line or a traceback.
        return f"BankCredentials(merchant_id={self.merchant_id!r}, hmac_key=<redacted>)"


def load_bundle(keys_dir: Path) -> BankCredentials:
    """Read an existing bundle; raises `BundleError` when absent or malformed."""
    try:
        merchant_id = (keys_dir / MERCHANT_FILE).read_text(encoding="ascii").strip()
        key_hex = (keys_dir / KEY_FILE).read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise BundleError(f"cannot read bank bundle in {keys_dir}: {type(exc).__name__}") from None
    if not _MERCHANT_RE.fullmatch(merchant_id):
        raise BundleError(f"{keys_dir / MERCHANT_FILE}: expected BANK + 10 digits")
    if not _KEY_RE.fullmatch(key_hex):
        raise BundleError(f"{keys_dir / KEY_FILE}: expected 64 lowercase hex characters")
    return BankCredentials(merchant_id=merchant_id, hmac_key=bytes.fromhex(key_hex))


def load_or_create_bundle(keys_dir: Path) -> BankCredentials:
    """Write a fresh bundle where files are absent (mode 0600), then load it."""
    keys_dir.mkdir(parents=True, exist_ok=True)
    merchant_id = "BANK" + "".join(secrets.choice(string.digits) for _ in range(10))
    create_exclusive(keys_dir / MERCHANT_FILE, merchant_id + "\n")
    create_exclusive(keys_dir / KEY_FILE, secrets.token_hex(32) + "\n")
    return load_bundle(keys_dir)


# --------------------------------------------------------------------------- signing
def request_string(
    method: str, path_with_query: str, timestamp: str, nonce: str, body: bytes
) -> bytes:
    head = f"{method.upper()}\n{path_with_query}\n{timestamp}\n{nonce}\n"
    return head.encode("utf-8") + body


def response_string(status: int, timestamp: str, nonce: str, body: bytes) -> bytes:
    return f"{status:03d}\n{timestamp}\n{nonce}\n".encode("ascii") + body


def notification_string(timestamp: str, nonce: str, body: bytes) -> bytes:
    return f"NOTIFY\n{timestamp}\n{nonce}\n".encode("ascii") + body


def sign(key: bytes, message: bytes) -> str:
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def verify(key: bytes, message: bytes, signature: str) -> bool:
    # compare_digest refuses non-ASCII str, and a non-ASCII signature is wrong anyway.
    if not signature.isascii():
        return False
    return hmac.compare_digest(sign(key, message), signature.lower())


def new_nonce() -> str:
    return "".join(secrets.choice(_NONCE_ALPHABET) for _ in range(32))


def valid_nonce(nonce: str) -> bool:
    return _NONCE_RE.fullmatch(nonce) is not None


def is_fresh(timestamp: str, now: float, max_skew: float = MAX_SKEW_SECONDS) -> bool:
    """Whether a `Bank-Timestamp` value is well formed and within the replay window."""
    if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
        return False
    return abs(now - int(timestamp)) <= max_skew


def get_header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive lookup that works for plain dicts and multidicts alike."""
    value = headers.get(name)
    if value is not None:
        return value
    lowered = name.lower()
    for key, candidate in headers.items():
        if key.lower() == lowered:
            return candidate
    return None


def sign_request(
    creds: BankCredentials,
    method: str,
    path_with_query: str,
    body: bytes,
    *,
    now: float,
    nonce: str | None = None,
) -> dict[str, str]:
    """The four authentication headers of a merchant request."""
    ts = str(int(now))
    nonce = nonce or new_nonce()
    signature = sign(creds.hmac_key, request_string(method, path_with_query, ts, nonce, body))
    return {H_MERCHANT: creds.merchant_id, H_TIMESTAMP: ts, H_NONCE: nonce, H_SIGNATURE: signature}


def sign_response(
    key: bytes, status: int, body: bytes, *, now: float, nonce: str | None = None
) -> dict[str, str]:
    ts = str(int(now))
    nonce = nonce or new_nonce()
    return {
        H_TIMESTAMP: ts,
        H_NONCE: nonce,
        H_SIGNATURE: sign(key, response_string(status, ts, nonce, body)),
    }


def sign_notification(
    key: bytes, body: bytes, *, now: float, nonce: str | None = None
) -> dict[str, str]:
    ts = str(int(now))
    nonce = nonce or new_nonce()
    return {
        H_TIMESTAMP: ts,
        H_NONCE: nonce,
        H_SIGNATURE: sign(key, notification_string(ts, nonce, body)),
    }


def _signed_parts(headers: Mapping[str, str], now: float) -> tuple[str, str, str] | None:
    ts = get_header(headers, H_TIMESTAMP)
    nonce = get_header(headers, H_NONCE)
    signature = get_header(headers, H_SIGNATURE)
    if ts is None or nonce is None or signature is None:
        return None
    if not valid_nonce(nonce) or not is_fresh(ts, now):
        return None
    return ts, nonce, signature


def verify_response_headers(
    key: bytes, status: int, headers: Mapping[str, str], body: bytes, *, now: float
) -> bool:
    parts = _signed_parts(headers, now)
    if parts is None:
        return False
    ts, nonce, signature = parts
    return verify(key, response_string(status, ts, nonce, body), signature)


def verify_notification_headers(
    key: bytes, headers: Mapping[str, str], body: bytes, *, now: float
) -> bool:
    parts = _signed_parts(headers, now)
    if parts is None:
        return False
    ts, nonce, signature = parts
    return verify(key, notification_string(ts, nonce, body), signature)


def qr_signature(key: bytes, order_no: str) -> str:
    """Short tag binding a QR payload to its order, so forged codes are spotted."""
    return sign(key, b"QR\n" + order_no.encode("utf-8"))[:16]
