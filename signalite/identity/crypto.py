"""The server key: AES-256-GCM for the secrets Signalite must keep and the tokens it hands out.

SigV4 verification needs each secret access key itself (the signature is an HMAC keyed by it),
so secrets cannot be hashed like passwords. They are kept sealed instead: every stored secret is
AES-GCM ciphertext under a key derived from the server key, bound (as associated data) to the id
of the record it belongs to, so a ciphertext copied into another record does not open. Session
tokens are sealed the same way under another derived key, which makes them self-contained: any
node holding the server key verifies a token another node minted, with no shared state.

Where the server key comes from (see docs/security.md, "Identity"): ``SIGNALITE_SERVER_KEY`` when
set, else it is derived from the root secret access key, which every node of a cluster already
shares. Both go through HKDF-SHA256 with a purpose label per use, so the keys for stored secrets,
tokens and the key check never coincide.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_SALT = b"signalite server key v1"
_NONCE = 12

SECRETS = "stored secrets"
TOKENS = "session tokens"
CHECK = "key check"


class Unsealed(Exception):
    """A sealed value that does not open under this key (tampered, or sealed under another key)."""


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class ServerKey:
    """One server key and the AES-GCM keys derived from it, one per purpose."""

    def __init__(self, material: bytes) -> None:
        if len(material) < 16:
            raise ValueError("a server key needs at least 16 bytes of material")
        self._aead = {purpose: AESGCM(self._derive(material, purpose)) for purpose in (SECRETS, TOKENS)}
        self._check = self._derive(material, CHECK)

    @classmethod
    def from_settings(cls, configured: str | None, root_secret: str) -> "ServerKey":
        """``SIGNALITE_SERVER_KEY`` if set (any text of 16+ characters; 32 random bytes in base64
        is what ``docs/security.md`` suggests), else derived from the root secret."""
        if configured:
            return cls(configured.encode("utf-8"))
        return cls(b"root secret:" + root_secret.encode("utf-8"))

    @staticmethod
    def _derive(material: bytes, purpose: str) -> bytes:
        return HKDF(algorithm=hashes.SHA256(), length=32, salt=_SALT,
                    info=b"signalite/" + purpose.encode()).derive(material)

    def seal(self, purpose: str, plaintext: bytes, bound_to: str) -> str:
        """``plaintext`` encrypted and authenticated, as URL-safe text; it opens only with the
        same ``purpose`` and ``bound_to``."""
        nonce = os.urandom(_NONCE)
        return _b64encode(nonce + self._aead[purpose].encrypt(nonce, plaintext, bound_to.encode("utf-8")))

    def open(self, purpose: str, sealed: str, bound_to: str) -> bytes:
        """What :meth:`seal` sealed, or :class:`Unsealed`."""
        try:
            raw = _b64decode(sealed)
        except (ValueError, TypeError):
            raise Unsealed("not sealed text") from None
        if len(raw) <= _NONCE + 16:
            raise Unsealed("too short")
        try:
            return self._aead[purpose].decrypt(raw[:_NONCE], raw[_NONCE:], bound_to.encode("utf-8"))
        except InvalidTag:
            raise Unsealed("does not open under this key") from None

    @property
    def fingerprint(self) -> str:
        """A value that identifies this key without revealing it: stored once, so that a node
        started with another key refuses to start instead of failing every signature."""
        return hmac.new(self._check, b"signalite key check", hashlib.sha256).hexdigest()[:32]
