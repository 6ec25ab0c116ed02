"""Wire protocol of WeChat Pay API v3, shared by the adapter and the simulator.

Everything here is pure: no sockets and no implicit clock (callers pass `now`), so both
sides sign and check exactly the same bytes. RSA and AES-GCM come from `cryptography`.
"""

from __future__ import annotations

import base64
import binascii
import enum
import re
import secrets
import string
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeGuard, final

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from adapters.bundles import create_exclusive

__all__ = [
    "AUTH_SCHEME",
    "H_NONCE",
    "H_REQUEST_ID",
    "H_SERIAL",
    "H_SIGNATURE",
    "H_SIGNATURE_TYPE",
    "H_TIMESTAMP",
    "MAX_AMOUNT",
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
MAX_AMOUNT = 10**12  # fen; anything larger is a bug upstream, not a payment
MIN_RSA_BITS = 2048

MCHID_FILE = "mchid.txt"
APPID_FILE = "appid.txt"
APIV3_KEY_FILE = "apiv3_key.txt"
MERCHANT_KEY_FILE = "merchant_private_key.pem"
MERCHANT_SERIAL_FILE = "merchant_cert_serial.txt"
PLATFORM_PRIVATE_FILE = "platform_private_key.pem"
PLATFORM_PUBLIC_FILE = "platform_public_key.pem"
PLATFORM_KEY_ID_FILE = "platform_public_key_id.txt"

_ALNUM = string.ascii_letters + string.digits
_NONCE_RE = re.compile(r"[0-9A-Za-z]{1,64}")
# WeChat allows `|` and `*` too, but the SDK's HTTP client percent-encodes `|`, which then
# breaks the signature; the router never generates them, so they are refused here.
_OUT_TRADE_NO_RE = re.compile(r"[0-9A-Za-z_\-]{6,32}")
_OUT_REFUND_NO_RE = re.compile(r"[0-9A-Za-z_\-]{1,64}")
_MCHID_RE = re.compile(r"[0-9]{6,32}")
_APPID_RE = re.compile(r"[0-9A-Za-z_]{6,32}")
_APIV3_KEY_RE = re.compile(r"[\x21-\x7e]{32}")
_SERIAL_RE = re.compile(r"[0-9A-Fa-f]{8,64}")
_KEY_ID_RE = re.compile(r"PUB_KEY_ID_[0-9A-Za-z_]{1,64}")
_AUTH_PAIR_RE = re.compile(r'\s*([a-z_]+)="([^"]*)"\s*')


class TradeState(enum.StrEnum):
    NOTPAY = "NOTPAY"
    USERPAYING = "USERPAYING"
    SUCCESS = "SUCCESS"
    REFUND = "REFUND"
    PAYERROR = "PAYERROR"
    CLOSED = "CLOSED"
    REVOKED = "REVOKED"


class RefundStatus(enum.StrEnum):
    PROCESSING = "PROCESSING"
    SUCCESS = "SUCCESS"
    CLOSED = "CLOSED"
    ABNORMAL = "ABNORMAL"


# --------------------------------------------------------------------------- credentials
class BundleError(Exception):
    """The credential bundle is missing or malformed (never carries key material)."""


@final
@dataclass(frozen=True, slots=True)
class WeChatPayCredentials:
    """A merchant's WeChat Pay credentials, plus the platform's private key in the sandbox.

    `merchant_public_key` is derived from the private key: the simulator verifies
    requests with it, as WeChat does with the public half of the merchant's API cert.
    """

    mchid: str
    appid: str
    apiv3_key: bytes
    merchant_private_key: rsa.RSAPrivateKey
    merchant_cert_serial: str
    platform_public_key: rsa.RSAPublicKey
    platform_public_key_id: str
    platform_private_key: rsa.RSAPrivateKey | None = None  # simulator only

    @property
    def merchant_public_key(self) -> rsa.RSAPublicKey:
        return self.merchant_private_key.public_key()

    def __repr__(self) -> str:
        # Keys must never reach a log line or a traceback.
        return (
            f"WeChatPayCredentials(mchid={self.mchid!r}, appid={self.appid!r}, "
            f"merchant_cert_serial={self.merchant_cert_serial!r}, "
            f"platform_public_key_id={self.platform_public_key_id!r}, keys=<redacted>)"
        )


def load_bundle(keys_dir: Path) -> WeChatPayCredentials:
    """Read an existing bundle; raises `BundleError` when absent or malformed.

    `platform_private_key.pem` is optional: real merchants never have it.
    """
    mchid = _read_text(keys_dir, MCHID_FILE, _MCHID_RE, "6-32 digits")
    appid = _read_text(keys_dir, APPID_FILE, _APPID_RE, "an app id such as wx0123456789abcdef")
    apiv3_key = _read_text(keys_dir, APIV3_KEY_FILE, _APIV3_KEY_RE, "32 printable ASCII chars")
    serial = _read_text(keys_dir, MERCHANT_SERIAL_FILE, _SERIAL_RE, "a hex certificate serial")
    key_id = _read_text(keys_dir, PLATFORM_KEY_ID_FILE, _KEY_ID_RE, "PUB_KEY_ID_...")
    platform_private = None
    if (keys_dir / PLATFORM_PRIVATE_FILE).exists():
        platform_private = _read_private_key(keys_dir / PLATFORM_PRIVATE_FILE)
    return WeChatPayCredentials(
        mchid=mchid,
        appid=appid,
        apiv3_key=apiv3_key.encode("ascii"),
        merchant_private_key=_read_private_key(keys_dir / MERCHANT_KEY_FILE),
        merchant_cert_serial=serial.upper(),
        platform_public_key=_read_public_key(keys_dir / PLATFORM_PUBLIC_FILE),
        platform_public_key_id=key_id,
        platform_private_key=platform_private,
    )


def load_or_create_bundle(keys_dir: Path) -> WeChatPayCredentials:
    """Write a fresh sandbox bundle where files are absent (mode 0600), then load it."""
    keys_dir.mkdir(parents=True, exist_ok=True)
    mchid = "16" + "".join(secrets.choice(string.digits) for _ in range(8))
    create_exclusive(keys_dir / MCHID_FILE, mchid + "\n")
    create_exclusive(keys_dir / APPID_FILE, "wx" + secrets.token_hex(8) + "\n")
    apiv3_key = "".join(secrets.choice(_ALNUM) for _ in range(32))
    create_exclusive(keys_dir / APIV3_KEY_FILE, apiv3_key + "\n")
    create_exclusive(keys_dir / MERCHANT_SERIAL_FILE, secrets.token_hex(20).upper() + "\n")
    key_id = "PUB_KEY_ID_01" + "".join(secrets.choice(string.digits) for _ in range(30))
    create_exclusive(keys_dir / PLATFORM_KEY_ID_FILE, key_id + "\n")
    create_exclusive(keys_dir / MERCHANT_KEY_FILE, _new_private_pem())
    create_exclusive(keys_dir / PLATFORM_PRIVATE_FILE, _new_private_pem())
    # Derive the public half from the private file that won any creation race, so
    # the pair always matches even when two processes start together.
    if not (keys_dir / PLATFORM_PUBLIC_FILE).exists():
        platform = _read_private_key(keys_dir / PLATFORM_PRIVATE_FILE)
        public_pem = platform.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        create_exclusive(keys_dir / PLATFORM_PUBLIC_FILE, public_pem.decode("ascii"))
    return load_bundle(keys_dir)


def _new_private_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=MIN_RSA_BITS)
    # PKCS#8 ("BEGIN PRIVATE KEY") is what the merchant platform hands out and what SDKs load.
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return pem.decode("ascii")


def _read_text(keys_dir: Path, name: str, pattern: re.Pattern[str], expected: str) -> str:
    try:
        value = (keys_dir / name).read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise BundleError(f"cannot read {keys_dir / name}: {type(exc).__name__}") from None
    if not pattern.fullmatch(value):
        raise BundleError(f"{keys_dir / name}: expected {expected}")
    return value


def _read_private_key(path: Path) -> rsa.RSAPrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise BundleError(f"cannot load private key {path}: {type(exc).__name__}") from None
    if not isinstance(key, rsa.RSAPrivateKey) or key.key_size < MIN_RSA_BITS:
        raise BundleError(f"{path}: expected an RSA private key of at least {MIN_RSA_BITS} bits")
    return key


def _read_public_key(path: Path) -> rsa.RSAPublicKey:
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except (OSError, ValueError, TypeError) as exc:
        raise BundleError(f"cannot load public key {path}: {type(exc).__name__}") from None
    if not isinstance(key, rsa.RSAPublicKey) or key.key_size < MIN_RSA_BITS:
        raise BundleError(f"{path}: expected an RSA public key of at least {MIN_RSA_BITS} bits")
    return key


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


# --------------------------------------------------------------------------- field checks
def valid_amount(value: object) -> TypeGuard[int]:
    """Positive integer fen (bool is an int in Python and is refused)."""
    return type(value) is int and 0 < value <= MAX_AMOUNT


def valid_out_trade_no(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and _OUT_TRADE_NO_RE.fullmatch(value) is not None


def valid_out_refund_no(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and _OUT_REFUND_NO_RE.fullmatch(value) is not None
