"""Answers of the TOTP second factor."""

from __future__ import annotations

from app.core.errors import Conflict, Forbidden, Unauthorized, Unprocessable


class MfaRequired(Unauthorized):
    type_slug = "mfa-required"
    title = "Second factor required"
    default_detail = (
        "The password is right; now send a code from your authenticator app (or a recovery "
        "code) with this mfa_token to POST /api/v1/auth/token/mfa within 5 minutes."
    )

    def __init__(self, mfa_token: str) -> None:
        super().__init__()
        self.extra = {"mfa_token": mfa_token}
        self.headers["Cache-Control"] = "no-store"  # it carries a token


class MfaEnrolmentRequired(Forbidden):
    type_slug = "mfa-enrolment-required"
    title = "Second factor enrolment required"
    default_detail = (
        "Your organisation requires staff to sign in with an authenticator app. Within 5 "
        "minutes, get a secret with POST /api/v1/auth/token/mfa/enrol {mfa_token}, add it to "
        "the app, then send its code to POST /api/v1/auth/token/mfa/enrol/confirm."
    )

    def __init__(self, mfa_token: str) -> None:
        super().__init__(headers={"Cache-Control": "no-store"}, extra={"mfa_token": mfa_token})


class InvalidMfaToken(Unauthorized):
    type_slug = "invalid-mfa-token"
    title = "Invalid mfa_token"
    default_detail = "The mfa_token is invalid or expired: sign in with your password again."


class WrongCode(Unauthorized):
    type_slug = "invalid-totp-code"
    title = "Invalid code"
    default_detail = "The code is wrong, expired or already used."
    persist_changes = True  # the failed guess stays counted


class WrongCodeOnAccount(Unprocessable):
    """A wrong code on /me/totp: the caller is signed in, so it is a bad value, not a 401."""

    persist_changes = True

    def __init__(self) -> None:
        super().__init__("The code is wrong, expired or already used.", loc=("body", "code"))


class TotpAlreadyOn(Conflict):
    type_slug = "totp-already-enabled"
    title = "TOTP already enabled"
    default_detail = "TOTP is already on for this account: turn it off first to enrol again."


class TotpNotEnrolled(Conflict):
    type_slug = "totp-not-enrolled"
    title = "No TOTP enrolment"
    default_detail = "Nothing to confirm or turn off: start with POST /api/v1/me/totp."


class TotpRequiredForStaff(Conflict):
    type_slug = "totp-required"
    title = "TOTP required"
    default_detail = "Your organisation requires TOTP for staff: it cannot be turned off."
