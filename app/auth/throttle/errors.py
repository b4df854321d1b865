"""Answers of throttled guesses outside sign-in."""

from __future__ import annotations

from app.core.errors import TooManyRequests, Unprocessable


class AttemptsThrottled(TooManyRequests):
    type_slug = "too-many-attempts"
    title = "Too many attempts"

    def __init__(
        self,
        detail: str = "Too many wrong attempts. Wait before trying again.",
        *,
        retry_after: int,
    ) -> None:
        super().__init__(detail, retry_after=retry_after)


class PasswordAttemptsThrottled(AttemptsThrottled):
    def __init__(self, *, retry_after: int) -> None:
        super().__init__(
            "Too many wrong current passwords. Wait before trying again.", retry_after=retry_after
        )


class WrongCurrentPassword(Unprocessable):
    persist_changes = True  # the failed guess must stay counted

    def __init__(self) -> None:
        super().__init__("The current password is incorrect.", loc=("body", "current_password"))
