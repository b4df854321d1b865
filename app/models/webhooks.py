"""Webhook endpoints and their deliveries (Standard Webhooks).

A delivery is one event for one endpoint. Deliveries are made from the event log by the
deliverer's fan-out (app/webhooks/queue), numbered per endpoint in the order the events were
handed out (`sequence`), and sent one at a time per endpoint in that order, each under a lease.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
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

DELIVERY_STATUSES = ("pending", "succeeded", "failed")


class WebhookEndpoint(IdMixin, CreatedAtMixin, Base):
    __tablename__ = "webhook_endpoints"
    __table_args__ = (Index(None, "tenant_id", "created_at", "id"),)

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    url: Mapped[str] = mapped_column(String(2048))
    description: Mapped[str | None] = mapped_column(String(500))
    # None: every event type.
    event_types: Mapped[list[str] | None] = mapped_column(JSON)
    enabled: Mapped[bool] = mapped_column(default=True)
    disabled_reason: Mapped[str | None] = mapped_column(String(200))
    # The signing secret, encrypted at rest (app/webhooks/secrets.py); the one it replaced
    # still signs until previous_secret_expires_at.
    secret_encrypted: Mapped[str] = mapped_column(String(400))
    previous_secret_encrypted: Mapped[str | None] = mapped_column(String(400))
    previous_secret_expires_at: Mapped[datetime | None]
    # Since when every attempt has failed (None after a success): 5 days disables it.
    failing_since: Mapped[datetime | None]
    # The sequence number the next delivery to this endpoint gets.
    next_sequence: Mapped[int] = mapped_column(BigInteger, default=1)
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class WebhookDelivery(IdMixin, CreatedAtMixin, Base):
    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'succeeded', 'failed')", name="status"),
        CheckConstraint("attempt >= 0", name="attempt_not_negative"),
        # The order of sending, and the delivery log (newest first).
        UniqueConstraint("endpoint_id", "sequence"),
        UniqueConstraint("endpoint_id", "event_id"),
        # The deliverers' queue: what is due.
        Index(
            "ix_webhook_deliveries_due",
            "next_attempt_at",
            sqlite_where=text("status = 'pending'"),
            postgresql_where=text("status = 'pending'"),
        ),
        Index(None, "event_id"),
        # The delivery log filtered by status, and the claim's "no earlier delivery of this
        # endpoint still pending" (without it that check walks every delivered row).
        Index("ix_webhook_deliveries_endpoint_status", "endpoint_id", "status", "sequence"),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    endpoint_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("webhook_endpoints.id", ondelete="CASCADE")
    )
    event_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"))
    event_type: Mapped[str] = mapped_column(String(64))
    # Per endpoint, in the order the events were handed out: sent in this order.
    sequence: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(12), default="pending")
    # Attempts made so far (the one in flight included).
    attempt: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None]
    # Held by a deliverer until then; a deliverer that dies lets it lapse.
    lease_expires_at: Mapped[datetime | None]
    # The last attempt: the receiver's status (None: no answer), how long it took, and why
    # it failed when there was no answer (timeout, refused address ...).
    response_status: Mapped[int | None]
    duration_ms: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(String(300))
    last_attempt_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
