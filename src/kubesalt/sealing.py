"""Seal a secret for one recipient: how sa.key travels from the CA minion to control planes.

Every control-plane node needs the same service-account key pair (sa.key signs the
service-account tokens, sa.pub verifies them). x509_v2 signs certificates but cannot carry a
private key, and Salt's transports and job cache are not a place for one in clear text. So
the requesting node creates a throwaway X25519 key in memory and sends its public half; the
CA minion, after checking that the requester (its ID as the master vouches for it) has the
control-plane role, derives a key with its own throwaway X25519 key (HKDF-SHA256) and
encrypts sa.key with AES-256-GCM. Only the requester can open the result; nothing secret is
ever written outside the two nodes' PKI directories.
"""

from __future__ import annotations

import base64
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from kubesalt.errors import KubesaltError

INFO = b"kubesalt sealed secret v1"


class SealingError(KubesaltError):
    """A sealed secret or a recipient key is invalid."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(value: object, what: str) -> bytes:
    try:
        return base64.b64decode(str(value), validate=True)
    except ValueError:
        raise SealingError(f"{what} is not base64: {str(value)[:20]!r}...") from None


def _derive(shared: bytes, salt: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=INFO).derive(shared)


def new_recipient() -> tuple[X25519PrivateKey, str]:
    """A throwaway recipient key and its public half (base64), to send to the sealer."""
    key = X25519PrivateKey.generate()
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return key, _b64(raw)


def seal(secret: bytes, recipient: str) -> dict[str, str]:
    """Encrypt `secret` for the X25519 public key `recipient` (base64)."""
    raw = _unb64(recipient, "the recipient public key")
    try:
        public = X25519PublicKey.from_public_bytes(raw)
    except ValueError:
        raise SealingError(
            f"the recipient public key is {len(raw)} bytes; an X25519 public key has 32"
        ) from None
    ephemeral = X25519PrivateKey.generate()
    salt = os.urandom(16)
    nonce = os.urandom(12)
    key = _derive(ephemeral.exchange(public), salt)
    return {
        "ephemeral": _b64(
            ephemeral.public_key().public_bytes(
                serialization.Encoding.Raw, serialization.PublicFormat.Raw
            )
        ),
        "salt": _b64(salt),
        "nonce": _b64(nonce),
        "ciphertext": _b64(AESGCM(key).encrypt(nonce, secret, INFO)),
    }


def unseal(sealed: dict, recipient: X25519PrivateKey) -> bytes:
    """Open what `seal` produced for `recipient`'s public key."""
    if not isinstance(sealed, dict) or set(sealed) != {"ephemeral", "salt", "nonce", "ciphertext"}:
        raise SealingError(
            f"a sealed secret has keys ephemeral, salt, nonce, ciphertext; got {sealed!r:.80}"
        )
    try:
        ephemeral = X25519PublicKey.from_public_bytes(_unb64(sealed["ephemeral"], "ephemeral"))
    except ValueError:
        raise SealingError("the ephemeral key of the sealed secret is not X25519") from None
    key = _derive(recipient.exchange(ephemeral), _unb64(sealed["salt"], "salt"))
    try:
        return AESGCM(key).decrypt(
            _unb64(sealed["nonce"], "nonce"), _unb64(sealed["ciphertext"], "ciphertext"), INFO
        )
    except InvalidTag:
        raise SealingError(
            "the sealed secret does not open with this key: it was sealed for another "
            "recipient or altered on the way"
        ) from None
