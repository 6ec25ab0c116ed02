"""Secrets, key hashing and signatures. Nothing here ever prints a secret."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from typing import final


@final
class Secret:
    """A string that shows as `Secret('****')` in reprs, logs and tracebacks."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('****')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and hmac.compare_digest(self._value, other._value)

    def __hash__(self) -> int:
        return hash(self._value)


_POOL_BYTES = 3 * 1024
_pool = ""
_used = 0  # how much of `_pool` is spent: moving an offset copies nothing


def random_token(length: int) -> str:
    """A random string of [0-9A-Za-z], about 5.95 bits per character.

    Drawn from a pool refilled from the OS's CSPRNG a few kilobytes at a time: ids are
    minted on every request, and one system call per id is most of their cost.
    """
    global _pool, _used
    while len(_pool) - _used < length:
        # Base64 of whole 3-byte groups is uniform over 64 symbols; deleting "+" and "/"
        # leaves a uniform draw over the 62 letters and digits.
        _pool = _pool[_used:] + base64.b64encode(secrets.token_bytes(_POOL_BYTES)).translate(
            None, b"+/").decode()
        _used = 0
    token = _pool[_used:_used + length]
    _used += length
    return token


def _forget_pool() -> None:
    # A forked worker must not mint the ids its parent had drawn but not used.
    global _pool, _used
    _pool, _used = "", 0


os.register_at_fork(after_in_child=_forget_pool)


def new_api_key() -> str:
    return "sk_" + random_token(40)


def hash_api_key(api_key: str, pepper: bytes) -> str:
    """Keyed BLAKE2b: fast enough to run on every request, and not reversible to the key."""
    return hashlib.blake2b(api_key.encode(), key=pepper, digest_size=20).hexdigest()


def webhook_signature(secret: str, timestamp: int, body: bytes) -> str:
    """The `Payrouter-Signature` header value for one delivery."""
    return f"t={timestamp},v1={_mac_hex(secret, timestamp, body)}"


def verify_webhook_signature(
    secret: str, header: str, body: bytes, *, now: int, tolerance_s: int = 300
) -> bool:
    """What a merchant does on receipt; used by tests and documented for merchants."""
    parts = dict(item.split("=", 1) for item in header.split(",") if "=" in item)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > tolerance_s:
        return False
    return hmac.compare_digest(_mac_hex(secret, timestamp, body), parts.get("v1", ""))


def _mac_hex(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
