"""TOTP secrets sealed at rest, recovery codes, and the short-lived `mfa_token`."""

from __future__ import annotations

import base64
import os
import secrets
import uuid
from datetime import timedelta
from typing import Literal

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from jose import JWTError, jwt

from app.core.clock import utcnow
from app.core.config import Settings
from app.core.security import JWT_ALGORITHM

MFA_TOKEN_SECONDS = 5 * 60
RECOVERY_CODE_COUNT = 10
_FORMAT = "v1."
MfaPurpose = Literal["verify", "enrol"]


class TotpSecretBox:
    """AES-256-GCM with a key derived from `BILLING_SECRET_KEY` (else the JWT key), bound
    to the user's id: a sealed secret copied to another row does not open."""

    def __init__(self, settings: Settings) -> None:
        master = (settings.secret_key or settings.signing_key).encode()
        key = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=b"billing-portal totp v1"
        ).derive(master)
        self._aead = AESGCM(key)

    def seal(self, secret: str, user_id: uuid.UUID) -> str:
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, secret.encode(), user_id.bytes)
        return _FORMAT + base64.urlsafe_b64encode(nonce + sealed).decode()

    def open(self, stored: str, user_id: uuid.UUID) -> str | None:
        """The secret, or None when it was sealed with another key."""
        if not stored.startswith(_FORMAT):
            return None
        raw = base64.urlsafe_b64decode(stored[len(_FORMAT) :])
        try:
            return self._aead.decrypt(raw[:12], raw[12:], user_id.bytes).decode()
        except InvalidTag:
            return None


def new_recovery_codes() -> list[str]:
    """Ten codes like `k7qm-2xfa-9trw` (60 bits each), easy to copy by hand."""
    alphabet = "abcdefghjkmnpqrstuvwxyz23456789"
    return [
        "-".join("".join(secrets.choice(alphabet) for _ in range(4)) for _ in range(3))
        for _ in range(RECOVERY_CODE_COUNT)
    ]


def normalise_recovery_code(code: str) -> str:
    return code.strip().lower().replace(" ", "")


def _audience(settings: Settings) -> str:
    # Its own audience: an mfa_token is never accepted where an access token is expected.
    return settings.jwt_audience + ":mfa"


def create_mfa_token(settings: Settings, user_id: uuid.UUID, purpose: MfaPurpose) -> str:
    now = utcnow()
    claims = {
        "sub": str(user_id),
        "typ": "mfa",
        "pur": purpose,
        "iss": settings.jwt_issuer,
        "aud": _audience(settings),
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(seconds=MFA_TOKEN_SECONDS)).timestamp()),
        "jti": uuid.uuid4().hex,
    }
    return str(jwt.encode(claims, settings.signing_key, algorithm=JWT_ALGORITHM))


def read_mfa_token(settings: Settings, token: str) -> tuple[uuid.UUID, MfaPurpose] | None:
    """(user id, purpose), or None for anything forged, expired or of another kind."""
    try:
        claims = jwt.decode(
            token,
            settings.signing_key,
            algorithms=[JWT_ALGORITHM],
            audience=_audience(settings),
            issuer=settings.jwt_issuer,
            options={"verify_exp": False},
        )
        if claims.get("typ") != "mfa" or int(claims["exp"]) <= utcnow().timestamp():
            return None
        purpose = claims["pur"]
        if purpose not in ("verify", "enrol"):
            return None
        return uuid.UUID(claims["sub"]), purpose
    except (JWTError, KeyError, ValueError, TypeError):
        return None
