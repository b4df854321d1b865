"""Webhook signing secrets: made, kept encrypted at rest, and used to sign (Standard Webhooks).

A secret is `whsec_` + base64 of 32 random bytes, shown once. Signing needs it again, so it is
stored encrypted (AES-256-GCM, bound to its endpoint's id), not hashed. The key comes from
`BILLING_SECRET_KEY`, or else from the JWT signing key (so it is set, and kept, in production
already): changing that key makes the stored secrets unreadable, and every endpoint then needs
`rotate-secret`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import uuid
from collections.abc import Iterable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from app.core.config import Settings

SECRET_PREFIX = "whsec_"  # noqa: S105 - the format's prefix, not a secret
SECRET_BYTES = 32
_FORMAT = "v1."


class SecretUnreadable(Exception):
    """The stored secret was encrypted with another key (BILLING_SECRET_KEY changed)."""


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


class SecretBox:
    """Encrypts endpoint secrets with the service's key."""

    def __init__(self, settings: Settings) -> None:
        master = (settings.secret_key or settings.signing_key).encode()
        key = HKDF(
            algorithm=hashes.SHA256(),
            length=32,
            salt=None,
            info=b"billing-portal webhook endpoint secrets v1",
        ).derive(master)
        self._aead = AESGCM(key)

    def seal(self, secret: str, endpoint_id: uuid.UUID) -> str:
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, secret.encode(), endpoint_id.bytes)
        return _FORMAT + base64.urlsafe_b64encode(nonce + sealed).decode()

    def open(self, stored: str, endpoint_id: uuid.UUID) -> str:
        if not stored.startswith(_FORMAT):
            raise SecretUnreadable("unknown format")
        raw = base64.urlsafe_b64decode(stored[len(_FORMAT) :])
        try:
            return self._aead.decrypt(raw[:12], raw[12:], endpoint_id.bytes).decode()
        except InvalidTag as exc:
            raise SecretUnreadable("encrypted with another key") from exc


def signature_header(secrets_: Iterable[str], msg_id: str, timestamp: int, body: bytes) -> str:
    """`webhook-signature`: `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">` for each
    secret (the current one, and the one it replaced while that still signs), space-separated."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return " ".join(
        "v1," + base64.b64encode(hmac.new(_key(s), signed, hashlib.sha256).digest()).decode()
        for s in secrets_
    )


def _key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))
