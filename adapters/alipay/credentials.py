"""The Alipay credential bundle: an app's keys in a keys directory, read and checked, and
written fresh for the sandbox (with the simulator's own key pair).

Never carries key material into a message: errors name the file, `repr` hides the keys.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import fcntl
import os
import re
import secrets
import string
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import final

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

__all__ = [
    "AlipayCredentials",
    "BundleError",
    "load_bundle",
    "load_or_create_bundle",
    "load_simulator_bundle",
    "sandbox_seller_id",
]

APP_ID_FILE = "app_id.txt"
APP_PRIVATE_KEY_FILE = "app_private_key.pem"
APP_PUBLIC_KEY_FILE = "app_public_key.pem"
ALIPAY_PUBLIC_KEY_FILE = "alipay_public_key.pem"
SIM_PRIVATE_KEY_FILE = "alipay_private_key.pem"  # the simulator's half: never shipped to a merchant
_LOCK_FILE = ".bundle.lock"

_APP_ID_RE = re.compile(r"[0-9]{16}")


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
