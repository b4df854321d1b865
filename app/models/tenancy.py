"""The MSP (tenant), its client companies, people, service categories and API keys."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.core.clock import utcnow
from app.models.base import Base, CreatedAtMixin, IdMixin

Role = Literal["staff", "client"]


class Tenant(IdMixin, CreatedAtMixin, Base):
    __tablename__ = "tenants"

    name: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC", server_default="UTC")
    # Per-tenant sequences, advanced with a single UPDATE ... RETURNING so numbers never repeat.
    next_invoice_number: Mapped[int] = mapped_column(default=1, server_default=text("1"))
    next_ticket_number: Mapped[int] = mapped_column(default=1, server_default=text("1"))


class Client(IdMixin, CreatedAtMixin, Base):
    __tablename__ = "clients"
    __table_args__ = (Index(None, "tenant_id", "created_at", "id"),)

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    billing_email: Mapped[str | None] = mapped_column(String(320))
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
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    client_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("clients.id", ondelete="CASCADE")
    )
    # Stored lower-cased: sign-in is by email alone, so it is unique across tenants.
    email: Mapped[str] = mapped_column(String(320), unique=True)
    full_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(255))
    must_change_password: Mapped[bool] = mapped_column(default=False)
    # Bumped on every password change: access tokens carry it, so older ones stop working.
    token_version: Mapped[int] = mapped_column(default=1, server_default=text("1"))
    is_active: Mapped[bool] = mapped_column(default=True)
    last_login_at: Mapped[datetime | None]


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
