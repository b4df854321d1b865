"""The sign-in form (OAuth2 password grant), with every field bounded: an address longer than
any email, or a password longer than anyone types, is refused with 422 before it is hashed,
looked up or counted by the throttle."""

from __future__ import annotations

from typing import Annotated

from fastapi import Form
from fastapi.security import OAuth2PasswordRequestForm

from app.core.schemas import MAX_EMAIL_LENGTH, MAX_PASSWORD_LENGTH


class SignInForm(OAuth2PasswordRequestForm):
    def __init__(
        self,
        *,
        grant_type: Annotated[str | None, Form(pattern="^password$", max_length=8)] = None,
        username: Annotated[
            str, Form(min_length=1, max_length=MAX_EMAIL_LENGTH, description="The email.")
        ],
        password: Annotated[
            str,
            Form(
                min_length=1,
                max_length=MAX_PASSWORD_LENGTH,
                json_schema_extra={"format": "password"},
            ),
        ],
        scope: Annotated[str, Form(max_length=1000)] = "",
        client_id: Annotated[str | None, Form(max_length=200)] = None,
        client_secret: Annotated[
            str | None, Form(max_length=200, json_schema_extra={"format": "password"})
        ] = None,
    ) -> None:
        super().__init__(
            grant_type=grant_type,
            username=username,
            password=password,
            scope=scope,
            client_id=client_id,
            client_secret=client_secret,
        )
