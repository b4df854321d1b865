"""Request and response bodies of sign-in and the account."""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from app.core.schemas import StrictBody


class TokenPair(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the OAuth2 token type
    expires_in: int = Field(description="Seconds until the access token expires.")
    refresh_token: str
    must_change_password: bool


class RefreshRequest(StrictBody):
    refresh_token: str = Field(min_length=1, max_length=200)


class LogoutRequest(StrictBody):
    refresh_token: str = Field(min_length=1, max_length=200)


class ChangePasswordRequest(StrictBody):
    current_password: str = Field(min_length=1, max_length=1024)
    new_password: str = Field(min_length=1, max_length=1024)


class CompanyRef(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str


class Me(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    email: str
    full_name: str
    role: Literal["staff", "client"]
    client_id: uuid.UUID | None = Field(
        description="The company a client contact acts for now (null for staff)."
    )
    tenant_id: uuid.UUID
    must_change_password: bool
    clients: list[CompanyRef] = Field(
        default_factory=list,
        description="Every company the contact belongs to (empty for staff); "
        "POST /auth/switch-client changes which one is active.",
    )


class SwitchClientRequest(StrictBody):
    client_id: uuid.UUID


class PasswordResetRequest(StrictBody):
    email: str = Field(min_length=1, max_length=254)


class PasswordResetConfirm(StrictBody):
    token: str = Field(min_length=1, max_length=200)
    new_password: str = Field(min_length=1, max_length=1024)
