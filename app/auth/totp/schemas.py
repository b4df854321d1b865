"""Bodies of the TOTP endpoints."""

from __future__ import annotations

from pydantic import BaseModel, Field

from app.auth.schemas import TokenPair
from app.core.schemas import StrictBody


class TotpEnrolment(BaseModel):
    secret: str = Field(description="Base32; shown once: add it to an authenticator app.")
    otpauth_uri: str = Field(description="The same as an `otpauth://` URI, for a QR code.")


class TotpCode(StrictBody):
    code: str = Field(
        min_length=6, max_length=32, description="A 6-digit code, or a recovery code."
    )


class RecoveryCodes(BaseModel):
    recovery_codes: list[str] = Field(description="Ten single-use codes; shown once.")


class MfaTokenBody(StrictBody):
    mfa_token: str = Field(min_length=1, max_length=2000)


class MfaSignIn(StrictBody):
    mfa_token: str = Field(min_length=1, max_length=2000)
    code: str = Field(min_length=6, max_length=32, description="A TOTP or a recovery code.")


class EnrolledSignIn(TokenPair):
    recovery_codes: list[str] = Field(description="Ten single-use codes; shown once.")
