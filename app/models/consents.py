"""What a client agreed to: the versioned texts an MSP sets, and the append-only records of
each acceptance (who, for which client, which version and its SHA-256, when, from where)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.core.clock import utcnow
from app.models.base import Base, CreatedAtMixin, IdMixin

CONSENT_KINDS = ("ach_debit", "autopay")


class ConsentText(IdMixin, CreatedAtMixin, Base):
    __tablename__ = "consent_texts"
    __table_args__ = (
        UniqueConstraint("tenant_id", "kind", "version"),
        CheckConstraint("kind IN ('ach_debit', 'autopay')", name="kind"),
        CheckConstraint("version >= 2", name="version_after_the_default"),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    # Version 1 is the built-in text every tenant starts with; staff's texts are 2, 3 ...
    version: Mapped[int]
    text: Mapped[str] = mapped_column(Text)
    text_sha256: Mapped[str] = mapped_column(String(64))
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )


class ConsentRecord(IdMixin, Base):
    """Written once, never changed: there is no update or delete of these anywhere."""

    __tablename__ = "consent_records"
    __table_args__ = (
        CheckConstraint("kind IN ('ach_debit', 'autopay')", name="kind"),
        Index(None, "tenant_id", "client_id", "accepted_at", "id"),
        Index("ix_consent_records_tenant_accepted", "tenant_id", "accepted_at", "id"),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    client_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"))
    # Who accepted: the client's contact, or a staff member acting for the client.
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(16))
    text_version: Mapped[int]
    text_sha256: Mapped[str] = mapped_column(String(64))
    accepted_at: Mapped[datetime] = mapped_column(default=utcnow)
    ip_address: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(500))
