"""Sign-in and account errors."""

from __future__ import annotations

from app.core.errors import Forbidden, NotFound, TooManyRequests, Unauthorized, Unprocessable


class InvalidCredentials(Unauthorized):
    type_slug = "invalid-credentials"
    title = "Invalid credentials"
    default_detail = "Incorrect email or password."
    persist_changes = True  # the failure must be counted for throttling


class InvalidRefreshToken(Unauthorized):
    type_slug = "invalid-refresh-token"
    title = "Invalid refresh token"
    default_detail = "The refresh token is invalid, expired or revoked: sign in again."


class RefreshTokenReused(InvalidRefreshToken):
    default_detail = (
        "This refresh token was already used. For your safety every session that came from "
        "the same sign-in has been ended: sign in again."
    )
    persist_changes = True  # the family's revocation is the point


class InvalidAccessToken(Unauthorized):
    type_slug = "invalid-token"
    title = "Invalid token"
    default_detail = "The access token is missing, invalid or expired."


class PasswordChangeRequired(Forbidden):
    type_slug = "password-change-required"
    title = "Password change required"
    default_detail = (
        "Your password is temporary: set a new one with POST /api/v1/me/password first."
    )


class StaffOnly(Forbidden):
    default_detail = "Only the MSP's staff may do this."


class ClientOnly(Forbidden):
    default_detail = "Only a client contact may do this."


class SignInThrottled(TooManyRequests):
    type_slug = "sign-in-throttled"
    title = "Too many sign-in attempts"


class NotAMember(NotFound):
    type_slug = "not-found"
    default_detail = "No such client among your companies."


class InvalidResetToken(Unprocessable):
    type_slug = "invalid-reset-token"
    title = "Invalid password reset token"
    default_detail = (
        "The password reset link is invalid, used or expired: ask for a new one with "
        "POST /api/v1/auth/password-reset."
    )

    def __init__(self) -> None:
        super().__init__(self.default_detail, loc=("body", "token"))


class PasswordResetThrottled(TooManyRequests):
    type_slug = "password-reset-throttled"
    title = "Too many password reset requests"
    default_detail = "Too many password reset requests for this email: wait before asking again."
