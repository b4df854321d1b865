"""Bodies of the tenancy endpoints."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    field_validator,
    model_validator,
)

from app.core.address import Address, stored_address
from app.core.schemas import Email, StrictBody, not_null
from app.core.scopes import Scope

if TYPE_CHECKING:
    from app.models import Tenant, TenantLogo

Name = Field(min_length=1, max_length=200)


def _strip(value: str) -> str:
    stripped = value.strip()
    if not stripped:
        raise ValueError("must not be blank")
    return stripped


BILLING_ADDRESS = "billing_address_"


def _strip_optional(value: str | None) -> str | None:
    return None if value is None else _strip(value)


class ClientCreate(StrictBody):
    name: str = Name
    billing_email: Email | None = None
    billing_address: Address | None = Field(default=None, description="Printed on its invoices.")

    _name = field_validator("name")(_strip)


class ClientUpdate(StrictBody):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    billing_email: Email | None = None
    billing_address: Address | None = Field(
        default=None, description="Replaces the whole address; `null` removes it."
    )

    _name = field_validator("name")(_strip_optional)


class ClientOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    billing_email: str | None
    billing_address: Address | None = None
    created_at: datetime
    updated_at: datetime

    @model_validator(mode="before")
    @classmethod
    def _address_from_columns(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return data
        values = {
            name: getattr(data, name) for name in cls.model_fields if name != "billing_address"
        }
        return {**values, "billing_address": stored_address(data, BILLING_ADDRESS)}


class UserInvite(StrictBody):
    email: Email
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
    temporary_password: str | None = Field(
        description="Shown once, never again: pass it to the contact over a safe channel. "
        "Null when the person was already a contact of another of your clients: this client "
        "is added to their companies and their password stays as it is."
    )


class UserPasswordReset(UserOut):
    temporary_password: str = Field(
        description="Shown once, never again: pass it to the contact over a safe channel. "
        "They must change it at their next sign-in; every session they had has ended."
    )


class UserUpdate(StrictBody):
    full_name: str | None = Field(default=None, min_length=1, max_length=200)
    active: StrictBool | None = Field(
        default=None,
        description="false: sign-in is refused and every session ends at once; true: "
        "the contact may sign in again.",
    )

    _full_name = field_validator("full_name")(_strip_optional)


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
    scopes: list[Scope] | None = Field(
        default=None,
        min_length=1,
        description="What the key may do. Left out: `invoices:write`, `invoices:read` and "
        "`payments:read` (what every key could do before scopes).",
    )

    _name = field_validator("name")(_strip)

    @field_validator("scopes")
    @classmethod
    def _unique_scopes(cls, value: list[Scope] | None) -> list[Scope] | None:
        return None if value is None else sorted(set(value))


class ApiKeyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    prefix: str
    scopes: list[Scope]
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyOut):
    secret: str = Field(description="The whole key, shown once: store it now.")


# --- The MSP's own profile, printed on its invoices ---

TENANT_ADDRESS = "address_"
Phone = Field(
    default=None,
    min_length=3,
    max_length=40,
    pattern=r"^\+?[0-9][0-9 ().\-/]*$",
    examples=["+1 (555) 010-2030"],
)


class TenantUpdate(StrictBody):
    """Only the fields given change; `null` clears an optional one."""

    name: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="The name clients know you by (it may be changed, not removed).",
        json_schema_extra=not_null,
    )
    legal_name: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="The registered company name, printed on invoices when it differs from `name`.",
    )
    email: Email | None = Field(default=None, description="Billing contact, on invoices.")
    phone: str | None = Phone
    tax_id: str | None = Field(
        default=None, min_length=1, max_length=64, description="VAT, GST or EIN number."
    )
    address: Address | None = Field(
        default=None, description="Replaces the whole address; `null` removes it."
    )
    payment_instructions: str | None = Field(
        default=None,
        min_length=1,
        max_length=2000,
        description="How to pay other than online (bank transfer details, remittance address); "
        "printed under the invoice's payment link.",
    )

    staff_totp_required: bool | None = Field(
        default=None,
        description="Staff must sign in with TOTP; those without it are asked to enrol.",
    )

    _text = field_validator("legal_name", "tax_id", "payment_instructions")(_strip_optional)

    @field_validator("staff_totp_required")
    @classmethod
    def _switch(cls, value: bool | None) -> bool:
        if value is None:
            raise ValueError("must be true or false")
        return value

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str:
        # Runs only when `name` is given: it may change, not go away.
        if value is None:
            raise ValueError("may be changed but not removed")
        return _strip(value)


class TenantLogoOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    content_type: Literal["image/png", "image/jpeg"]
    width: int = Field(description="Pixels.")
    height: int = Field(description="Pixels.")
    size: int = Field(description="Bytes.")
    sha256: str
    updated_at: datetime


class TenantOut(BaseModel):
    id: uuid.UUID
    name: str
    legal_name: str | None
    email: str | None
    phone: str | None
    tax_id: str | None
    address: Address | None
    payment_instructions: str | None
    timezone: str = Field(description="Calendar dates (due dates, issue dates) are in this zone.")
    staff_totp_required: bool = Field(description="Staff must sign in with TOTP.")
    logo: TenantLogoOut | None = Field(
        description="Set with `PUT /tenant/logo`, fetched with `GET /tenant/logo`."
    )
    created_at: datetime

    @classmethod
    def of(cls, tenant: Tenant, logo: TenantLogo | None) -> TenantOut:
        kept = (name for name in cls.model_fields if name not in ("address", "logo"))
        values = {name: getattr(tenant, name) for name in kept}
        return cls(
            **values,
            address=stored_address(tenant, TENANT_ADDRESS),
            logo=TenantLogoOut.model_validate(logo) if logo is not None else None,
        )
