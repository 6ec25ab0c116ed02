"""Wire protocol of the Alipay OpenAPI gateway, shared by the adapter and the simulator.

Everything here is pure: no sockets, and clocks are passed in, so both sides sign and
check exactly the same strings. RSA2 is SHA256withRSA, PKCS#1 v1.5, base64.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import enum
import fcntl
import json
import os
import re
import secrets
import string
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import TypeGuard, final
from urllib.parse import parse_qsl, urlencode

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

__all__ = [
    "ALIPAY_PUBLIC_KEY_FILE",
    "APP_ID_FILE",
    "APP_PRIVATE_KEY_FILE",
    "APP_PUBLIC_KEY_FILE",
    "CHARSET",
    "CHINA_TZ",
    "GATEWAY_PATH",
    "MAX_FEN",
    "SIGN_TYPE",
    "SIM_PRIVATE_KEY_FILE",
    "AlipayCredentials",
    "BundleError",
    "Code",
    "FormError",
    "Method",
    "SubCode",
    "TradeStatus",
    "decode_form",
    "fen_to_yuan",
    "format_time",
    "load_bundle",
    "load_or_create_bundle",
    "load_simulator_bundle",
    "merge_params",
    "new_buyer_id",
    "new_trade_no",
    "notification_content",
    "request_content",
    "response_key",
    "rsa2_sign",
    "rsa2_verify",
    "sandbox_seller_id",
    "sign_params",
    "signed_answer",
    "signed_section",
    "top_level_spans",
    "urlencode_params",
    "valid_fen",
    "valid_out_no",
    "verify_notification_params",
    "verify_request_params",
    "yuan_to_fen",
]

GATEWAY_PATH = "/gateway.do"
SIGN_TYPE = "RSA2"
CHARSET = "utf-8"
CHINA_TZ = timezone(timedelta(hours=8), "CST")  # the gateway's timestamps are Beijing time

APP_ID_FILE = "app_id.txt"
APP_PRIVATE_KEY_FILE = "app_private_key.pem"
APP_PUBLIC_KEY_FILE = "app_public_key.pem"
ALIPAY_PUBLIC_KEY_FILE = "alipay_public_key.pem"
SIM_PRIVATE_KEY_FILE = "alipay_private_key.pem"  # the simulator's half: never shipped to a merchant
_LOCK_FILE = ".bundle.lock"

MAX_FEN = 100_000_000 * 100  # 100 000 000.00 yuan, the gateway's ceiling for one amount

_APP_ID_RE = re.compile(r"[0-9]{16}")
_OUT_NO_RE = re.compile(r"[A-Za-z0-9_]{1,64}")
# `\d` would also match Arabic-Indic and other Unicode digits: spell the ASCII range.
_YUAN_RE = re.compile(r"([0-9]{1,12})\.([0-9]{2})")
_WS_RE = re.compile(r"[ \t\n\r]*")


class Method(enum.StrEnum):
    PRECREATE = "alipay.trade.precreate"
    PAY = "alipay.trade.pay"
    CREATE = "alipay.trade.create"
    APP_PAY = "alipay.trade.app.pay"
    WAP_PAY = "alipay.trade.wap.pay"
    PAGE_PAY = "alipay.trade.page.pay"
    QUERY = "alipay.trade.query"
    CLOSE = "alipay.trade.close"
    CANCEL = "alipay.trade.cancel"
    REFUND = "alipay.trade.refund"
    REFUND_QUERY = "alipay.trade.fastpay.refund.query"


class TradeStatus(enum.StrEnum):
    WAIT_BUYER_PAY = "WAIT_BUYER_PAY"
    TRADE_SUCCESS = "TRADE_SUCCESS"
    TRADE_FINISHED = "TRADE_FINISHED"
    TRADE_CLOSED = "TRADE_CLOSED"


class Code(enum.StrEnum):
    SUCCESS = "10000"
    IN_PROGRESS = "10003"
    UNKNOWN_ERROR = "20000"
    AUTH_TOKEN_PROBLEM = "20001"  # noqa: S105 - a result code, not a secret
    MISSING_PARAMETER = "40001"
    INVALID_PARAMETER = "40002"
    BUSINESS_FAILED = "40004"


class SubCode(enum.StrEnum):
    """The `sub_code`s of a 40004 answer that the fact sheet documents."""

    SYSTEM_ERROR = "ACQ.SYSTEM_ERROR"
    TRADE_HAS_SUCCESS = "ACQ.TRADE_HAS_SUCCESS"
    TRADE_HAS_CLOSE = "ACQ.TRADE_HAS_CLOSE"
    CONTEXT_INCONSISTENT = "ACQ.CONTEXT_INCONSISTENT"
    TRADE_NOT_EXIST = "ACQ.TRADE_NOT_EXIST"
    BUYER_BALANCE_NOT_ENOUGH = "ACQ.BUYER_BALANCE_NOT_ENOUGH"
    BUYER_BANKCARD_BALANCE_NOT_ENOUGH = "ACQ.BUYER_BANKCARD_BALANCE_NOT_ENOUGH"
    PAYMENT_AUTH_CODE_INVALID = "ACQ.PAYMENT_AUTH_CODE_INVALID"
    TRADE_BUYER_NOT_MATCH = "ACQ.TRADE_BUYER_NOT_MATCH"
    TOTAL_FEE_EXCEED = "ACQ.TOTAL_FEE_EXCEED"
    INVALID_PARAMETER = "ACQ.INVALID_PARAMETER"
    REFUND_AMT_NOT_EQUAL_TOTAL = "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL"
    SELLER_BALANCE_NOT_ENOUGH = "ACQ.SELLER_BALANCE_NOT_ENOUGH"
    TRADE_HAS_FINISHED = "ACQ.TRADE_HAS_FINISHED"
    TRADE_STATUS_ERROR = "ACQ.TRADE_STATUS_ERROR"


class FormError(Exception):
    """A form body or query string that is not a well-formed, unambiguous UTF-8 form."""


# --------------------------------------------------------------------------- credentials
class BundleError(Exception):
    """The credential bundle is missing or malformed (never carries key material)."""


@final
@dataclass(frozen=True, slots=True, eq=False, repr=False)
class AlipayCredentials:
    """One app's keys. `alipay_private_key` is only ever loaded for the simulator."""

    app_id: str
    app_private_key: rsa.RSAPrivateKey
    app_public_key: rsa.RSAPublicKey
    alipay_public_key: rsa.RSAPublicKey
    alipay_private_key: rsa.RSAPrivateKey | None = None

    def __repr__(self) -> str:
        # Key objects print harmlessly today; never rely on that for a secret.
        return f"AlipayCredentials(app_id={self.app_id!r}, keys=<redacted>)"


def load_bundle(keys_dir: Path) -> AlipayCredentials:
    """The merchant side of a bundle (what the adapter needs); raises `BundleError`.

    `app_public_key.pem` is optional here (a merchant may only keep the private half);
    when present it must match the private key, so a mixed-up bundle fails at start.
    """
    app_id = _read_text(keys_dir / APP_ID_FILE)
    if not _APP_ID_RE.fullmatch(app_id):
        raise BundleError(f"{keys_dir / APP_ID_FILE}: expected a 16-digit app id")
    private = _read_private(keys_dir / APP_PRIVATE_KEY_FILE)
    public_path = keys_dir / APP_PUBLIC_KEY_FILE
    public = _read_public(public_path) if public_path.exists() else private.public_key()
    _check_pair(private, public, public_path)
    return AlipayCredentials(
        app_id, private, public, _read_public(keys_dir / ALIPAY_PUBLIC_KEY_FILE)
    )


def load_simulator_bundle(keys_dir: Path) -> AlipayCredentials:
    """The whole bundle including the simulator's private key; raises `BundleError`."""
    creds = load_bundle(keys_dir)
    sim_private = _read_private(keys_dir / SIM_PRIVATE_KEY_FILE)
    _check_pair(sim_private, creds.alipay_public_key, keys_dir / ALIPAY_PUBLIC_KEY_FILE)
    return AlipayCredentials(
        creds.app_id,
        creds.app_private_key,
        creds.app_public_key,
        creds.alipay_public_key,
        sim_private,
    )


def load_or_create_bundle(keys_dir: Path) -> AlipayCredentials:
    """Write what is missing of a sandbox bundle (mode 0600), then load all of it.

    Key pairs are written under an exclusive lock: two processes starting together
    (simulator and gateway) must never end up with halves of different pairs.
    """
    keys_dir.mkdir(parents=True, exist_ok=True)
    with _locked(keys_dir / _LOCK_FILE):
        if not (keys_dir / APP_ID_FILE).exists():
            app_id = "2021" + "".join(secrets.choice(string.digits) for _ in range(12))
            _write_atomic(keys_dir / APP_ID_FILE, app_id + "\n")
        _ensure_pair(keys_dir, APP_PRIVATE_KEY_FILE, APP_PUBLIC_KEY_FILE)
        if (keys_dir / ALIPAY_PUBLIC_KEY_FILE).exists() and not (
            keys_dir / SIM_PRIVATE_KEY_FILE
        ).exists():
            raise BundleError(
                f"{keys_dir}: alipay_public_key.pem without alipay_private_key.pem "
                "cannot be simulated (is this a real Alipay bundle?)"
            )
        _ensure_pair(keys_dir, SIM_PRIVATE_KEY_FILE, ALIPAY_PUBLIC_KEY_FILE)
    return load_simulator_bundle(keys_dir)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _ensure_pair(keys_dir: Path, private_name: str, public_name: str) -> None:
    if (keys_dir / private_name).exists():
        return
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    # Public half first: a crash in between leaves no private key, so the pair is redone.
    _write_atomic(keys_dir / public_name, public_pem.decode("ascii"))
    _write_atomic(keys_dir / private_name, private_pem.decode("ascii"))


def _write_atomic(path: Path, content: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(content)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise BundleError(f"cannot read {path}: {type(exc).__name__}") from None


def _der_or_pem(path: Path) -> tuple[bytes, bool]:
    """The key bytes and whether they are PEM. Alipay's key tool also emits bare base64."""
    text = _read_text(path)
    if text.startswith("-----BEGIN"):
        return text.encode("ascii"), True
    try:
        return base64.b64decode("".join(text.split()), validate=True), False
    except (binascii.Error, ValueError):
        raise BundleError(f"{path}: neither PEM nor base64 DER") from None


def _read_private(path: Path) -> rsa.RSAPrivateKey:
    data, is_pem = _der_or_pem(path)
    try:
        loader = (
            serialization.load_pem_private_key if is_pem else serialization.load_der_private_key
        )
        key = loader(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        # The parser's message may quote key material: say only which file is wrong.
        raise BundleError(f"{path}: not an unencrypted private key") from None
    if not isinstance(key, rsa.RSAPrivateKey) or key.key_size < 2048:
        raise BundleError(f"{path}: expected an RSA key of at least 2048 bits")
    return key


def _read_public(path: Path) -> rsa.RSAPublicKey:
    data, is_pem = _der_or_pem(path)
    try:
        loader = serialization.load_pem_public_key if is_pem else serialization.load_der_public_key
        key = loader(data)
    except (ValueError, UnsupportedAlgorithm):
        raise BundleError(f"{path}: not a public key") from None
    if not isinstance(key, rsa.RSAPublicKey) or key.key_size < 2048:
        raise BundleError(f"{path}: expected an RSA key of at least 2048 bits")
    return key


def _check_pair(private: rsa.RSAPrivateKey, public: rsa.RSAPublicKey, public_path: Path) -> None:
    if private.public_key().public_numbers() != public.public_numbers():
        raise BundleError(f"{public_path}: does not match its private key")


def sandbox_seller_id(app_id: str) -> str:
    """The seller (merchant PID) the simulator reports for an app: `2088` + 12 digits."""
    return "2088" + app_id[-12:].rjust(12, "0")


# --------------------------------------------------------------------------- signing
def rsa2_sign(key: rsa.RSAPrivateKey, message: str) -> str:
    signature = key.sign(message.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256())
    return base64.b64encode(signature).decode("ascii")


def rsa2_verify(key: rsa.RSAPublicKey, message: str, signature: str) -> bool:
    try:
        raw = base64.b64decode(signature.encode("ascii"), validate=True)
        key.verify(raw, message.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, binascii.Error, ValueError, UnicodeEncodeError):
        return False
    return True


def _content(params: Mapping[str, str], excluded: frozenset[str]) -> str:
    items = sorted((k, v) for k, v in params.items() if k not in excluded and v != "")
    return "&".join(f"{k}={v}" for k, v in items)


_REQUEST_EXCLUDED = frozenset({"sign"})
_NOTIFY_EXCLUDED = frozenset({"sign", "sign_type"})


def request_content(params: Mapping[str, str]) -> str:
    """What a request's `sign` covers: every non-empty param but `sign`, sorted, `k=v&…`.

    `sorted` on str compares code points, which for the ASCII keys used is ASCII order.
    """
    return _content(params, _REQUEST_EXCLUDED)


def notification_content(params: Mapping[str, str]) -> str:
    """What a notification's `sign` covers: as for requests, without `sign_type` too."""
    return _content(params, _NOTIFY_EXCLUDED)


def sign_params(key: rsa.RSAPrivateKey, params: Mapping[str, str]) -> dict[str, str]:
    """`params` plus their request signature."""
    return {**params, "sign": rsa2_sign(key, request_content(params))}


def verify_request_params(key: rsa.RSAPublicKey, params: Mapping[str, str]) -> bool:
    signature = params.get("sign")
    return bool(signature) and rsa2_verify(key, request_content(params), signature or "")


def verify_notification_params(key: rsa.RSAPublicKey, params: Mapping[str, str]) -> bool:
    signature = params.get("sign")
    return bool(signature) and rsa2_verify(key, notification_content(params), signature or "")


def urlencode_params(params: Mapping[str, str]) -> str:
    """Transport encoding (`quote_plus`: space is `+`), keys in the order given."""
    return urlencode(list(params.items()), encoding="utf-8")


def decode_form(raw: str | bytes) -> dict[str, str]:
    """A form or query string as a dict; raises `FormError` on bad UTF-8 or repeated keys.

    Repeated keys are refused rather than resolved: which copy was signed is ambiguous.
    """
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        pairs = parse_qsl(text, keep_blank_values=True, encoding="utf-8", errors="strict")
    except (UnicodeDecodeError, ValueError):
        raise FormError("not a UTF-8 form") from None
    return merge_params([pairs])


def merge_params(sources: Iterable[Iterable[tuple[str, str]]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pairs in sources:
        for key, value in pairs:
            if key in out:
                raise FormError(f"parameter {key!r} appears more than once")
            out[key] = value
    return out


# --------------------------------------------------------------------------- synchronous answers
def response_key(method: str) -> str:
    return method.replace(".", "_") + "_response"


def signed_answer(key_name: str, payload: Mapping[str, object], key: rsa.RSAPrivateKey) -> bytes:
    """`{"<key_name>":{…},"sign":"…"}`: the object first, signed over its exact bytes."""
    content = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    signature = rsa2_sign(key, content)
    return f'{{"{key_name}":{content},"sign":"{signature}"}}'.encode()


def top_level_spans(text: str) -> dict[str, tuple[int, int]]:
    """Where each top-level member's value sits in a JSON object text, as `[start, end)`.

    Uses the real JSON scanner for every value, so braces inside strings cannot shift
    the spans; raises `ValueError` on anything but one object with distinct keys.
    """
    decoder = json.JSONDecoder()
    idx = _skip_ws(text, 0)
    if text[idx : idx + 1] != "{":
        raise ValueError("not a JSON object")
    idx = _skip_ws(text, idx + 1)
    spans: dict[str, tuple[int, int]] = {}
    if text[idx : idx + 1] == "}":
        return _after_object(text, idx + 1, spans)
    while True:
        if text[idx : idx + 1] != '"':
            raise ValueError("expected a member name")
        name, idx = decoder.raw_decode(text, idx)
        idx = _skip_ws(text, idx)
        if text[idx : idx + 1] != ":":
            raise ValueError("expected ':'")
        start = _skip_ws(text, idx + 1)
        _, end = decoder.raw_decode(text, start)
        if name in spans:
            raise ValueError("duplicate member")
        spans[name] = (start, end)
        idx = _skip_ws(text, end)
        if text[idx : idx + 1] == ",":
            idx = _skip_ws(text, idx + 1)
            continue
        if text[idx : idx + 1] == "}":
            return _after_object(text, idx + 1, spans)
        raise ValueError("expected ',' or '}'")


def _skip_ws(text: str, idx: int) -> int:
    match = _WS_RE.match(text, idx)
    return match.end() if match else idx


def _after_object(
    text: str, idx: int, spans: dict[str, tuple[int, int]]
) -> dict[str, tuple[int, int]]:
    if _skip_ws(text, idx) != len(text):
        raise ValueError("text after the object")
    return spans


def signed_section(text: str, names: Iterable[str]) -> tuple[str, str, str] | None:
    """(member name, exact raw text of its object, `sign`) of a synchronous answer.

    The first of `names` present is taken. None when the text is not such an answer or
    carries no string `sign`; the caller then treats the answer as unverifiable.
    """
    try:
        spans = top_level_spans(text)
    except (ValueError, RecursionError):  # absurd nesting is as unverifiable as garbage
        return None
    sign_span = spans.get("sign")
    if sign_span is None:
        return None
    signature = json.loads(text[sign_span[0] : sign_span[1]])
    if not isinstance(signature, str):
        return None
    for name in names:
        span = spans.get(name)
        if span is not None and text[span[0]] == "{":
            return name, text[span[0] : span[1]], signature
    return None


# --------------------------------------------------------------------------- money
def valid_fen(value: object) -> TypeGuard[int]:
    """A chargeable amount: 0.01–100000000.00 yuan (bool is an int and is refused)."""
    return type(value) is int and 0 < value <= MAX_FEN


def fen_to_yuan(fen: int) -> str:
    """`1000` → `"10.00"` exactly; integers only, no float ever involved."""
    if type(fen) is not int or fen < 0:
        raise ValueError("an amount in fen must be a non-negative integer")
    return f"{fen // 100}.{fen % 100:02d}"


def yuan_to_fen(text: str) -> int:
    """`"10.00"` → `1000`; anything but digits, a dot and exactly two decimals is refused."""
    match = _YUAN_RE.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError("an amount must look like 10.00")
    return int(match.group(1)) * 100 + int(match.group(2))


# --------------------------------------------------------------------------- ids and times
def valid_out_no(value: object) -> TypeGuard[str]:
    """`out_trade_no` / `out_request_no`: 1–64 characters of `[A-Za-z0-9_]`."""
    return isinstance(value, str) and _OUT_NO_RE.fullmatch(value) is not None


def format_time(now: float) -> str:
    """`yyyy-MM-dd HH:mm:ss` in Beijing time, as the gateway writes and expects it."""
    return datetime.fromtimestamp(now, CHINA_TZ).strftime("%Y-%m-%d %H:%M:%S")


def new_trade_no(now: float, serial: int) -> str:
    """A 28-digit `trade_no` in Alipay's shape: date, a product tag, then a serial."""
    day = datetime.fromtimestamp(now, UTC).astimezone(CHINA_TZ).strftime("%Y%m%d")
    return f"{day}22001{serial % 10**15:015d}"


def new_buyer_id() -> str:
    return "2088" + "".join(secrets.choice(string.digits) for _ in range(12))
