"""The security layer of WeChat Pay API v3, shared by the adapter and the simulator:
request and answer signatures, notification encryption, client-side payment params.

Everything here is pure: no sockets and no implicit clock (callers pass `now`), so both
sides sign and check exactly the same bytes. RSA and AES-GCM come from `cryptography`.
The credential bundle is in `credentials`, the bodies and their vocabulary in `wire`;
their names the simulators and tests use stay importable from here.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
import string
from collections.abc import Mapping
from dataclasses import dataclass
from typing import final

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from adapters.wechatpay.credentials import (
    BundleError,
    WeChatPayCredentials,
    load_bundle,
    load_or_create_bundle,
)
from adapters.wechatpay.wire import (
    RefundStatus,
    TradeState,
    valid_amount,
    valid_out_refund_no,
    valid_out_trade_no,
)

__all__ = [
    "AUTH_SCHEME",
    "H_NONCE",
    "H_REQUEST_ID",
    "H_SERIAL",
    "H_SIGNATURE",
    "H_SIGNATURE_TYPE",
    "H_TIMESTAMP",
    "MAX_SKEW_SECONDS",
    "SIGNATURE_TYPE",
    "AuthorizationFields",
    "BundleError",
    "DecryptError",
    "RefundStatus",
    "TradeState",
    "WeChatPayCredentials",
    "app_params",
    "authorization_header",
    "decrypt_resource",
    "encrypt_resource",
    "get_header",
    "is_fresh",
    "jsapi_params",
    "load_bundle",
    "load_or_create_bundle",
    "new_nonce",
    "parse_authorization",
    "request_message",
    "response_message",
    "rsa_sign",
    "rsa_verify",
    "sign_request",
    "sign_response",
    "valid_amount",
    "valid_out_refund_no",
    "valid_out_trade_no",
    "verify_request",
    "verify_response",
]

AUTH_SCHEME = "WECHATPAY2-SHA256-RSA2048"
SIGNATURE_TYPE = "WECHATPAY2-SHA256-RSA2048"

H_TIMESTAMP = "Wechatpay-Timestamp"
H_NONCE = "Wechatpay-Nonce"
H_SIGNATURE = "Wechatpay-Signature"
H_SERIAL = "Wechatpay-Serial"
H_SIGNATURE_TYPE = "Wechatpay-Signature-Type"
H_REQUEST_ID = "Request-ID"

MAX_SKEW_SECONDS = 300

_ALNUM = string.ascii_letters + string.digits
_NONCE_RE = re.compile(r"[0-9A-Za-z]{1,64}")
_AUTH_PAIR_RE = re.compile(r'\s*([a-z_]+)="([^"]*)"\s*')


# --------------------------------------------------------------------------- RSA primitives
def rsa_sign(key: rsa.RSAPrivateKey, message: bytes) -> str:
    """SHA256withRSA (PKCS#1 v1.5), base64: the one signature scheme of API v3."""
    return base64.b64encode(key.sign(message, padding.PKCS1v15(), hashes.SHA256())).decode()


def rsa_verify(key: rsa.RSAPublicKey, message: bytes, signature: str) -> bool:
    try:
        raw = base64.b64decode(signature.encode("ascii"), validate=True)
        key.verify(raw, message, padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, ValueError, binascii.Error, UnicodeEncodeError):
        return False
    return True


def new_nonce(length: int = 32) -> str:
    return "".join(secrets.choice(_ALNUM) for _ in range(length))


def is_fresh(timestamp: str, now: float, max_skew: float = MAX_SKEW_SECONDS) -> bool:
    """Whether a unix-seconds header is well formed and inside the replay window."""
    if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
        return False
    return abs(now - int(timestamp)) < max_skew


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


# --------------------------------------------------------------------------- requests
def request_message(method: str, target: str, timestamp: str, nonce: str, body: bytes) -> bytes:
    """METHOD, request target (path + ?query as sent), timestamp, nonce, body: one per line."""
    head = f"{method.upper()}\n{target}\n{timestamp}\n{nonce}\n".encode()
    return head + body + b"\n"


@final
@dataclass(frozen=True, slots=True)
class AuthorizationFields:
    mchid: str
    nonce_str: str
    timestamp: str
    serial_no: str
    signature: str


def authorization_header(fields: AuthorizationFields) -> str:
    return (
        f'{AUTH_SCHEME} mchid="{fields.mchid}",nonce_str="{fields.nonce_str}",'
        f'timestamp="{fields.timestamp}",serial_no="{fields.serial_no}",'
        f'signature="{fields.signature}"'
    )


def parse_authorization(value: str) -> AuthorizationFields | None:
    """The five fields of an Authorization header (pairs in any order), or None."""
    scheme, _, rest = value.strip().partition(" ")
    if scheme != AUTH_SCHEME:
        return None
    pairs: dict[str, str] = {}
    for chunk in rest.split(","):
        match = _AUTH_PAIR_RE.fullmatch(chunk)
        if match is None or match.group(1) in pairs:
            return None
        pairs[match.group(1)] = match.group(2)
    try:
        return AuthorizationFields(
            mchid=pairs["mchid"],
            nonce_str=pairs["nonce_str"],
            timestamp=pairs["timestamp"],
            serial_no=pairs["serial_no"],
            signature=pairs["signature"],
        )
    except KeyError:
        return None


def sign_request(
    creds: WeChatPayCredentials,
    method: str,
    target: str,
    body: bytes,
    *,
    now: float,
    nonce: str | None = None,
) -> dict[str, str]:
    """Every header a merchant request carries, Authorization included."""
    ts = str(int(now))
    nonce = nonce or new_nonce()
    signature = rsa_sign(
        creds.merchant_private_key, request_message(method, target, ts, nonce, body)
    )
    fields = AuthorizationFields(creds.mchid, nonce, ts, creds.merchant_cert_serial, signature)
    headers = {
        "Authorization": authorization_header(fields),
        "Accept": "application/json",
        "User-Agent": "payrouter-wechatpay/0.1",
        # Tells WeChat which of its keys we hold, so it signs answers with that one.
        H_SERIAL: creds.platform_public_key_id,
    }
    if body:
        headers["Content-Type"] = "application/json"
    return headers


def verify_request(
    creds: WeChatPayCredentials,
    method: str,
    target: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: float,
) -> bool:
    """The simulator's check of a merchant request: identity, freshness and signature."""
    value = get_header(headers, "Authorization")
    fields = parse_authorization(value) if value else None
    if fields is None:
        return False
    if fields.mchid != creds.mchid or fields.serial_no.upper() != creds.merchant_cert_serial:
        return False
    if not _NONCE_RE.fullmatch(fields.nonce_str) or not is_fresh(fields.timestamp, now):
        return False
    message = request_message(method, target, fields.timestamp, fields.nonce_str, body)
    return rsa_verify(creds.merchant_public_key, message, fields.signature)


# --------------------------------------------------------------------------- answers/notifications
def response_message(timestamp: str, nonce: str, body: bytes) -> bytes:
    """Answers and notifications are signed over the same three lines."""
    return f"{timestamp}\n{nonce}\n".encode("ascii") + body + b"\n"


def sign_response(
    key: rsa.RSAPrivateKey,
    key_id: str,
    body: bytes,
    *,
    now: float,
    nonce: str | None = None,
    request_id: str | None = None,
) -> dict[str, str]:
    ts = str(int(now))
    nonce = nonce or new_nonce()
    return {
        H_TIMESTAMP: ts,
        H_NONCE: nonce,
        H_SIGNATURE: rsa_sign(key, response_message(ts, nonce, body)),
        H_SERIAL: key_id,
        H_SIGNATURE_TYPE: SIGNATURE_TYPE,
        H_REQUEST_ID: request_id or secrets.token_hex(16),
    }


def verify_response(
    key: rsa.RSAPublicKey,
    key_id: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: float,
) -> bool:
    """Check a platform signature (answer or notification): key id, type, window, RSA."""
    ts = get_header(headers, H_TIMESTAMP)
    nonce = get_header(headers, H_NONCE)
    signature = get_header(headers, H_SIGNATURE)
    if ts is None or nonce is None or signature is None:
        return False
    if get_header(headers, H_SERIAL) != key_id:
        return False
    if get_header(headers, H_SIGNATURE_TYPE) not in (None, SIGNATURE_TYPE):
        return False
    if not is_fresh(ts, now):
        return False
    return rsa_verify(key, response_message(ts, nonce, body), signature)


# --------------------------------------------------------------------------- AES-GCM resources
class DecryptError(Exception):
    """A notification resource that cannot be decrypted or authenticated."""


def encrypt_resource(
    apiv3_key: bytes,
    plaintext: bytes,
    *,
    associated_data: str,
    original_type: str,
    nonce: str | None = None,
) -> dict[str, str]:
    """An `encrypt-resource` object: AES-256-GCM, IV = nonce text, tag appended."""
    nonce = nonce or new_nonce(12)
    sealed = AESGCM(apiv3_key).encrypt(
        nonce.encode("ascii"), plaintext, associated_data.encode("utf-8")
    )
    return {
        "algorithm": "AEAD_AES_256_GCM",
        "ciphertext": base64.b64encode(sealed).decode("ascii"),
        "associated_data": associated_data,
        "nonce": nonce,
        "original_type": original_type,
    }


def decrypt_resource(apiv3_key: bytes, resource: Mapping[str, object]) -> bytes:
    """The plaintext of an `encrypt-resource`; raises `DecryptError` on any defect."""
    if resource.get("algorithm") != "AEAD_AES_256_GCM":
        raise DecryptError("unsupported resource algorithm")
    nonce, ciphertext = resource.get("nonce"), resource.get("ciphertext")
    aad = resource.get("associated_data") or ""
    if not isinstance(nonce, str) or not nonce or not isinstance(ciphertext, str):
        raise DecryptError("resource lacks nonce or ciphertext")
    if not isinstance(aad, str):
        raise DecryptError("associated_data is not a string")
    try:
        sealed = base64.b64decode(ciphertext.encode("ascii"), validate=True)
        return AESGCM(apiv3_key).decrypt(nonce.encode("utf-8"), sealed, aad.encode("utf-8"))
    except (InvalidTag, ValueError, binascii.Error, UnicodeEncodeError):
        raise DecryptError("resource does not decrypt with the APIv3 key") from None


# --------------------------------------------------------------------------- client-side params
def jsapi_params(
    key: rsa.RSAPrivateKey, appid: str, prepay_id: str, *, now: float, nonce: str | None = None
) -> dict[str, str]:
    """What JSAPI / mini program `requestPayment` needs, signed with the merchant key."""
    ts = str(int(now))
    nonce = nonce or new_nonce()
    package = f"prepay_id={prepay_id}"
    message = f"{appid}\n{ts}\n{nonce}\n{package}\n".encode()
    return {
        "appId": appid,
        "timeStamp": ts,
        "nonceStr": nonce,
        "package": package,
        "signType": "RSA",
        "paySign": rsa_sign(key, message),
    }


def app_params(
    key: rsa.RSAPrivateKey,
    appid: str,
    partner_id: str,
    prepay_id: str,
    *,
    now: float,
    nonce: str | None = None,
) -> dict[str, str]:
    """What the native app SDK (`PayReq`) needs, signed with the merchant key."""
    ts = str(int(now))
    nonce = nonce or new_nonce()
    message = f"{appid}\n{ts}\n{nonce}\n{prepay_id}\n".encode()
    return {
        "appid": appid,
        "partnerid": partner_id,
        "prepayid": prepay_id,
        "package": "Sign=WXPay",
        "noncestr": nonce,
        "timestamp": ts,
        "sign": rsa_sign(key, message),
    }
