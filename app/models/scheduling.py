"""AutoPay settings and scheduled payments (the runner's work queue)."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import (
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
from app.core.money import MAX_AMOUNT
from app.models.base import Base, CreatedAtMixin, IdMixin

SCHEDULED_STATUSES = ("scheduled", "processing", "on_hold", "succeeded", "failed", "canceled")


class AutopaySetting(IdMixin, CreatedAtMixin, Base):
    """A client's AutoPay: on or off, locked by the MSP or not, and its ordered rules."""

    __tablename__ = "autopay_settings"

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    client_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("clients.id", ondelete="CASCADE"), unique=True
    )
    enabled: Mapped[bool] = mapped_column(default=False)
    # Set by staff: the client may read the setting but not change it.
    locked: Mapped[bool] = mapped_column(default=False, server_default=text("false"))
    # Bumped on every change; the ETag clients send back in If-Match.
    version: Mapped[int] = mapped_column(default=1, server_default=text("1"))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


RUN_ON = ("days_before_due", "days_after_issue", "day_of_month")


class AutopayRule(IdMixin, CreatedAtMixin, Base):
    """One AutoPay rule: the first enabled rule that covers an invoice line's service category
    (and whose cap the invoice's total does not exceed) pays that line, with its method, on
    its run date."""

    __tablename__ = "autopay_rules"
    __table_args__ = (
        UniqueConstraint("setting_id", "position"),
        CheckConstraint(
            "run_on IN ('days_before_due', 'days_after_issue', 'day_of_month')", name="run_on"
        ),
        CheckConstraint(
            "(run_on = 'day_of_month' AND run_days BETWEEN 1 AND 31)"
            " OR (run_on <> 'day_of_month' AND run_days BETWEEN 0 AND 60)",
            name="run_days_range",
        ),
        CheckConstraint(
            "max_invoice_total IS NULL OR max_invoice_total > 0", name="max_invoice_total_positive"
        ),
        CheckConstraint(
            f"max_invoice_total IS NULL OR max_invoice_total <= {MAX_AMOUNT}",
            name="max_invoice_total_at_most_max",
        ),
        Index(None, "payment_method_id"),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    setting_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("autopay_settings.id", ondelete="CASCADE")
    )
    position: Mapped[int]
    enabled: Mapped[bool] = mapped_column(default=True)
    payment_method_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("payment_methods.id", ondelete="RESTRICT")
    )
    run_on: Mapped[str] = mapped_column(String(20), default="days_before_due")
    run_days: Mapped[int] = mapped_column(default=0)
    max_invoice_total: Mapped[int | None] = mapped_column(BigInteger)


class AutopayRuleCategory(Base):
    __tablename__ = "autopay_rule_categories"

    rule_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("autopay_rules.id", ondelete="CASCADE"), primary_key=True
    )
    service_category_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("service_categories.id", ondelete="CASCADE"), primary_key=True
    )


class ScheduledPayment(IdMixin, CreatedAtMixin, Base):
    __tablename__ = "scheduled_payments"
    __table_args__ = (
        CheckConstraint(
            "status IN ('scheduled', 'processing', 'on_hold', 'succeeded', 'failed', 'canceled')",
            name="status",
        ),
        CheckConstraint(
            "(status = 'on_hold') = (hold_reason IS NOT NULL)", name="held_for_a_reason"
        ),
        CheckConstraint("manual_attempts >= 0", name="manual_attempts_not_negative"),
        CheckConstraint("origin IN ('autopay', 'manual')", name="origin"),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint(f"amount <= {MAX_AMOUNT}", name="amount_at_most_max"),
        CheckConstraint("attempts >= 0", name="attempts_not_negative"),
        # The runner's queue: what is due, oldest first.
        Index("ix_scheduled_payments_due", "status", "next_attempt_at"),
        Index("ix_scheduled_payments_lease", "status", "lease_expires_at"),
        # The lists' keyset order on an index, as for invoices.
        Index("ix_scheduled_payments_listing", "tenant_id", "client_id", "created_at", "id"),
        Index("ix_scheduled_payments_tenant_created", "tenant_id", "created_at", "id"),
        Index(
            "ix_scheduled_payments_client_status",
            "tenant_id",
            "client_id",
            "status",
            "created_at",
            "id",
        ),
        Index("ix_scheduled_payments_tenant_status", "tenant_id", "status", "created_at", "id"),
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
    # Automatic attempts (the runner's; what the retry schedule counts) ...
    attempts: Mapped[int] = mapped_column(default=0)
    # ... and the client's or staff's "try now" ones, counted apart.
    manual_attempts: Mapped[int] = mapped_column(default=0, server_default=text("0"))
    # While a manual attempt is in flight: the status to return to if it is declined.
    resume_status: Mapped[str | None] = mapped_column(String(12))
    # Why it waits on hold ("disputed": an open billing dispute on the invoice).
    hold_reason: Mapped[str | None] = mapped_column(String(32))
    # The AutoPay rule that made it (None for a client's own, or once the rule is gone).
    rule_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("autopay_rules.id", ondelete="SET NULL")
    )
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
