"""AutoPay settings and scheduled payments (the runner's work queue)."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.clock import utcnow
from app.models.base import Base, CreatedAtMixin, IdMixin

SCHEDULED_STATUSES = ("scheduled", "processing", "succeeded", "failed", "canceled")


class AutopaySetting(IdMixin, CreatedAtMixin, Base):
    __tablename__ = "autopay_settings"
    __table_args__ = (
        CheckConstraint("days_before_due >= 0 AND days_before_due <= 60", name="days_range"),
        CheckConstraint("NOT enabled OR payment_method_id IS NOT NULL", name="enabled_has_method"),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    client_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("clients.id", ondelete="CASCADE"), unique=True
    )
    enabled: Mapped[bool] = mapped_column(default=False)
    payment_method_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("payment_methods.id", ondelete="RESTRICT")
    )
    days_before_due: Mapped[int] = mapped_column(default=0)
    # Bumped on every change; the ETag clients send back in If-Match.
    version: Mapped[int] = mapped_column(default=1, server_default=text("1"))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class AutopayCategory(Base):
    __tablename__ = "autopay_categories"

    setting_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("autopay_settings.id", ondelete="CASCADE"), primary_key=True
    )
    service_category_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("service_categories.id", ondelete="CASCADE"), primary_key=True
    )


class ScheduledPayment(IdMixin, CreatedAtMixin, Base):
    __tablename__ = "scheduled_payments"
    __table_args__ = (
        CheckConstraint(
            "status IN ('scheduled', 'processing', 'succeeded', 'failed', 'canceled')",
            name="status",
        ),
        CheckConstraint("origin IN ('autopay', 'manual')", name="origin"),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("attempts >= 0", name="attempts_not_negative"),
        # The runner's queue: what is due, oldest first.
        Index("ix_scheduled_payments_due", "status", "next_attempt_at"),
        Index("ix_scheduled_payments_lease", "status", "lease_expires_at"),
        Index("ix_scheduled_payments_listing", "tenant_id", "client_id", "created_at", "id"),
        Index("ix_scheduled_payments_invoice", "invoice_id"),
        Index("ix_scheduled_payments_method", "payment_method_id"),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    client_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"))
    invoice_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("invoices.id", ondelete="CASCADE"))
    payment_method_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("payment_methods.id", ondelete="RESTRICT")
    )
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    scheduled_for: Mapped[date]
    status: Mapped[str] = mapped_column(String(12), default="scheduled")
    origin: Mapped[str] = mapped_column(String(8), default="manual")
    attempts: Mapped[int] = mapped_column(default=0)
    # When the runner may next take it: the scheduled day's start in the tenant's zone,
    # or the time of the next retry.
    next_attempt_at: Mapped[datetime]
    lease_expires_at: Mapped[datetime | None]
    failure_reason: Mapped[str | None] = mapped_column(String(500))
    failure_code: Mapped[str | None] = mapped_column(String(64))
    cancel_reason: Mapped[str | None] = mapped_column(String(200))
    last_payment_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("payments.id", ondelete="SET NULL")
    )
    version: Mapped[int] = mapped_column(default=1, server_default=text("1"))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
