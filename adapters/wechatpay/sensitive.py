"""Sensitive fields of WeChat Pay v3 requests (a payee's real name): RSA-OAEP with SHA-1
and MGF1-SHA-1 under the WeChat Pay public key, base64, as API v3 encrypts every such field.

The merchant encrypts; only the holder of the platform private key (WeChat, or the
simulator) can read the field. The request then names the key in `Wechatpay-Serial`,
which `protocol.sign_request` sets on every call.
"""

from __future__ import annotations

import base64

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

__all__ = ["SensitiveFieldError", "decrypt_field", "encrypt_field"]


class SensitiveFieldError(Exception):
    """A field that does not decrypt with the platform private key."""


def _oaep() -> padding.OAEP:
    # SHA-1 is WeChat's choice, not ours: OAEP with it is still sound, and the only padding
    # WeChat decrypts.
    sha1 = hashes.SHA1()  # noqa: S303 (fixed by the protocol)
    return padding.OAEP(mgf=padding.MGF1(algorithm=sha1), algorithm=sha1, label=None)


def encrypt_field(key: rsa.RSAPublicKey, text: str) -> str:
    return base64.b64encode(key.encrypt(text.encode("utf-8"), _oaep())).decode("ascii")


def decrypt_field(key: rsa.RSAPrivateKey, ciphertext: str) -> str:
    try:
        sealed = base64.b64decode(ciphertext.encode("ascii"), validate=True)
        return key.decrypt(sealed, _oaep()).decode("utf-8")
    except ValueError:  # bad base64, a failed decryption and bad UTF-8 alike
        raise SensitiveFieldError("the field does not decrypt with the platform key") from None
