"""Bodies of the tenancy endpoints."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field, field_validator

from app.core.schemas import StrictBody

Name = Field(min_length=1, max_length=200)


def _strip(value: str) -> str:
    stripped = value.strip()
    if not stripped:
        raise ValueError("must not be blank")
    return stripped


class ClientCreate(StrictBody):
    name: str = Name
    billing_email: EmailStr | None = None

    _name = field_validator("name")(_strip)


class ClientUpdate(StrictBody):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    billing_email: EmailStr | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        return None if value is None else _strip(value)


class ClientOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    billing_email: str | None
    created_at: datetime
    updated_at: datetime


class UserInvite(StrictBody):
    email: EmailStr
    full_name: str = Name

    _full_name = field_validator("full_name")(_strip)


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    email: str
    full_name: str
    role: Literal["staff", "client"]
    client_id: uuid.UUID | None
    must_change_password: bool
    is_active: bool
    created_at: datetime
    last_login_at: datetime | None


class InvitedUser(UserOut):
    temporary_password: str = Field(
        description="Shown once, never again: pass it to the contact over a safe channel."
    )


class ServiceCategoryCreate(StrictBody):
    name: str = Field(min_length=1, max_length=100)

    _name = field_validator("name")(_strip)


class ServiceCategoryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    created_at: datetime


class ApiKeyCreate(StrictBody):
    name: str = Field(min_length=1, max_length=100)

    _name = field_validator("name")(_strip)


class ApiKeyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyOut):
    secret: str = Field(description="The whole key, shown once: store it now.")
