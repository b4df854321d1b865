"""The MSP (tenant), its client companies, people, service categories and API keys."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from sqlalchemy import (
    JSON,
    CheckConstraint,
    ForeignKey,
    Index,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.core.clock import utcnow
from app.models.base import Base, CreatedAtMixin, IdMixin

Role = Literal["staff", "client"]


def address_complete(prefix: str) -> CheckConstraint:
    """A postal address is absent (every part NULL) or has at least its first line and country."""
    parts = ("line1", "line2", "city", "region", "postal_code", "country")
    absent = " AND ".join(f"{prefix}{part} IS NULL" for part in parts)
    present = f"{prefix}line1 IS NOT NULL AND {prefix}country IS NOT NULL"
    return CheckConstraint(f"({absent}) OR ({present})", name=f"{prefix}complete")


class Tenant(IdMixin, CreatedAtMixin, Base):
    __tablename__ = "tenants"
    __table_args__ = (address_complete("address_"),)

    # The name clients know the MSP by; `legal_name` (when it differs) is printed on invoices.
    name: Mapped[str] = mapped_column(String(200))
    legal_name: Mapped[str | None] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))
    phone: Mapped[str | None] = mapped_column(String(40))
    tax_id: Mapped[str | None] = mapped_column(String(64))
    address_line1: Mapped[str | None] = mapped_column(String(200))
    address_line2: Mapped[str | None] = mapped_column(String(200))
    address_city: Mapped[str | None] = mapped_column(String(100))
    address_region: Mapped[str | None] = mapped_column(String(100))
    address_postal_code: Mapped[str | None] = mapped_column(String(20))
    address_country: Mapped[str | None] = mapped_column(String(2))
    # How to pay other than online (bank details, remittance address), printed on invoices.
    payment_instructions: Mapped[str | None] = mapped_column(Text)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC", server_default="UTC")
    # Per-tenant sequences, advanced with a single UPDATE ... RETURNING so numbers never repeat.
    next_invoice_number: Mapped[int] = mapped_column(default=1, server_default=text("1"))
    next_ticket_number: Mapped[int] = mapped_column(default=1, server_default=text("1"))
    # Staff must sign in with a second factor (TOTP); those without one are told to enrol.
    staff_totp_required: Mapped[bool] = mapped_column(default=False, server_default=false())


class TenantLogo(Base):
    """The MSP's logo for its documents: kept in the database (small, bounded), so every
    replica has it without shared storage; apart from `tenants` so loading a tenant never
    loads the image."""

    __tablename__ = "tenant_logos"
    __table_args__ = (
        CheckConstraint("content_type IN ('image/png', 'image/jpeg')", name="content_type"),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    content_type: Mapped[str] = mapped_column(String(16))
    # Loaded only when asked for (`undefer`): reading the profile never pulls the image.
    data: Mapped[bytes] = mapped_column(LargeBinary, deferred=True, deferred_raiseload=True)
    size: Mapped[int]
    width: Mapped[int]
    height: Mapped[int]
    sha256: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Client(IdMixin, CreatedAtMixin, Base):
    __tablename__ = "clients"
    __table_args__ = (
        Index(None, "tenant_id", "created_at", "id"),
        address_complete("billing_address_"),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    billing_email: Mapped[str | None] = mapped_column(String(320))
    billing_address_line1: Mapped[str | None] = mapped_column(String(200))
    billing_address_line2: Mapped[str | None] = mapped_column(String(200))
    billing_address_city: Mapped[str | None] = mapped_column(String(100))
    billing_address_region: Mapped[str | None] = mapped_column(String(100))
    billing_address_postal_code: Mapped[str | None] = mapped_column(String(20))
    billing_address_country: Mapped[str | None] = mapped_column(String(2))
    gateway_customer_reference: Mapped[str | None] = mapped_column(String(200))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class User(IdMixin, CreatedAtMixin, Base):
    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint("role IN ('staff', 'client')", name="role"),
        # A client contact belongs to exactly one client; staff to none.
        CheckConstraint(
            "(role = 'client' AND client_id IS NOT NULL) OR (role = 'staff' AND client_id IS NULL)",
            name="role_client",
        ),
        Index(None, "tenant_id", "client_id", "created_at", "id"),
        # One account per person and tenant; the same email may have an account in another
        # tenant (sign-in finds them by email and password), which no one else can learn.
        UniqueConstraint("tenant_id", "email"),
        Index(None, "email"),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    # A contact's first company: the one a sign-in acts for. Every company the contact
    # belongs to (this one included) is a `Membership`.
    client_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("clients.id", ondelete="CASCADE")
    )
    # Stored lower-cased.
    email: Mapped[str] = mapped_column(String(320))
    full_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(255))
    must_change_password: Mapped[bool] = mapped_column(default=False)
    # Bumped on every password change: access tokens carry it, so older ones stop working.
    token_version: Mapped[int] = mapped_column(default=1, server_default=text("1"))
    is_active: Mapped[bool] = mapped_column(default=True)
    last_login_at: Mapped[datetime | None]


class Membership(IdMixin, CreatedAtMixin, Base):
    """A client contact belongs to a company: one person may be a contact of several
    companies of the same tenant, and acts for one of them at a time."""

    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("user_id", "client_id"), Index(None, "client_id"))

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    client_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"))


class ServiceCategory(IdMixin, CreatedAtMixin, Base):
    __tablename__ = "service_categories"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))


class ApiKey(IdMixin, CreatedAtMixin, Base):
    __tablename__ = "api_keys"
    __table_args__ = (Index(None, "tenant_id", "created_at", "id"),)

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    # The public part of the key, shown in listings and used to find the row.
    prefix: Mapped[str] = mapped_column(String(32), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(128))
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    # What the key may do (app/core/scopes.py); keys made before scopes have v1's powers.
    scopes: Mapped[list[str]] = mapped_column(JSON, default=list)
