"""The WeChat Pay credential bundle: the files of a keys directory, read and checked, and
written fresh for the sandbox.

Never carries key material into a message: errors name the file, `repr` hides the keys.
"""

from __future__ import annotations

import re
import secrets
import string
from dataclasses import dataclass
from pathlib import Path
from typing import final

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from adapters.bundles import create_exclusive

__all__ = ["BundleError", "WeChatPayCredentials", "load_bundle", "load_or_create_bundle"]

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
_MCHID_RE = re.compile(r"[0-9]{6,32}")
_APPID_RE = re.compile(r"[0-9A-Za-z_]{6,32}")
_APIV3_KEY_RE = re.compile(r"[\x21-\x7e]{32}")
_SERIAL_RE = re.compile(r"[0-9A-Fa-f]{8,64}")
_KEY_ID_RE = re.compile(r"PUB_KEY_ID_[0-9A-Za-z_]{1,64}")


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
