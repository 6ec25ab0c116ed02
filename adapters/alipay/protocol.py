"""The security layer of the Alipay OpenAPI gateway, shared by the adapter and the
simulator: RSA2 signatures over parameters and notifications, form encoding, and the
signed synchronous answer read from its exact bytes.

Everything here is pure: no sockets, and clocks are passed in, so both sides sign and
check exactly the same strings. RSA2 is SHA256withRSA, PKCS#1 v1.5, base64. The
credential bundle is in `credentials`, the vocabulary, values and shapes in `wire`; their
names the simulators and tests use stay importable from here.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable, Mapping
from urllib.parse import parse_qsl, urlencode

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from adapters.alipay.credentials import (
    AlipayCredentials,
    BundleError,
    load_bundle,
    load_or_create_bundle,
    sandbox_seller_id,
)
from adapters.alipay.wire import (
    MAX_FEN,
    Code,
    Method,
    SubCode,
    TradeStatus,
    fen_to_yuan,
    format_time,
    new_buyer_id,
    new_trade_no,
    valid_out_no,
    yuan_to_fen,
)

__all__ = [
    "CHARSET",
    "GATEWAY_PATH",
    "MAX_FEN",
    "SIGN_TYPE",
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
    "valid_out_no",
    "verify_notification_params",
    "verify_request_params",
    "yuan_to_fen",
]

GATEWAY_PATH = "/gateway.do"
SIGN_TYPE = "RSA2"
CHARSET = "utf-8"

_WS_RE = re.compile(r"[ \t\n\r]*")


class FormError(Exception):
    """A form body or query string that is not a well-formed, unambiguous UTF-8 form."""


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
