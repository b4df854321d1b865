"""The event log, which is also the audit trail: one row per change worth telling someone about
(`payment.succeeded`, `ticket.closed` ...), written in the transaction of the change itself (an
outbox), with who made it, in which request and why. Webhook deliveries fan out from it."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, CreatedAtMixin, IdMixin


class Event(IdMixin, CreatedAtMixin, Base):
    __tablename__ = "events"
    __table_args__ = (
        # GET /events, newest first: the whole log, one type, one client.
        Index(None, "tenant_id", "created_at", "id"),
        Index("ix_events_tenant_type", "tenant_id", "type", "created_at", "id"),
        Index("ix_events_tenant_client", "tenant_id", "client_id", "created_at", "id"),
        Index(None, "subject_type", "subject_id"),
        # The webhook fan-out's queue: events not yet handed to the endpoints.
        Index(
            "ix_events_undispatched",
            "created_at",
            "id",
            sqlite_where=text("dispatched_at IS NULL"),
            postgresql_where=text("dispatched_at IS NULL"),
        ),
        # The email fan-out's queue (app/notifications): events not yet turned into messages.
        Index(
            "ix_events_unemailed",
            "created_at",
            "id",
            sqlite_where=text("emailed_at IS NULL"),
            postgresql_where=text("emailed_at IS NULL"),
        ),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    client_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("clients.id", ondelete="CASCADE")
    )
    type: Mapped[str] = mapped_column(String(64))
    subject_type: Mapped[str] = mapped_column(String(32))
    subject_id: Mapped[uuid.UUID]
    # The object after the change, as the API shows it.
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # What the change was beyond the object's new state (fields before and after, its cause).
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # Who: "user" (staff or a client's contact), "api_key" or "system" (no id).
    actor_kind: Mapped[str] = mapped_column(String(16), default="system", server_default="system")
    actor_id: Mapped[uuid.UUID | None]
    request_id: Mapped[str | None] = mapped_column(String(128))
    # The caller's X-Audit-Reason.
    reason: Mapped[str | None] = mapped_column(String(500))
    # When the webhook fan-out made its deliveries (NULL: not yet).
    dispatched_at: Mapped[datetime | None]
    # When the email fan-out made its messages (NULL: not yet).
    emailed_at: Mapped[datetime | None]
