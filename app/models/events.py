"""The event log: one row per state change worth telling someone about
(`payment.succeeded`, `ticket.closed` ...), for the notifications and webhooks to come."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, CreatedAtMixin, IdMixin


class Event(IdMixin, CreatedAtMixin, Base):
    __tablename__ = "events"
    __table_args__ = (
        Index(None, "tenant_id", "created_at", "id"),
        Index(None, "subject_type", "subject_id"),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    client_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("clients.id", ondelete="CASCADE")
    )
    type: Mapped[str] = mapped_column(String(64))
    subject_type: Mapped[str] = mapped_column(String(32))
    subject_id: Mapped[uuid.UUID]
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
