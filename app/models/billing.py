"""Money: payment methods, the platform-fee ledger, invoices, payments, refunds, and the
idempotency records that make retries safe.

Amounts are integer minor units. The invoice arithmetic is guarded by the database as
well as the code: whatever a bug or a race does, an invoice cannot be overpaid.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.core.clock import utcnow
from app.core.money import MAX_AMOUNT, MAX_QUANTITY
from app.models.base import Base, CreatedAtMixin, IdMixin

PAYMENT_METHOD_FEE_AMOUNT = 50
PAYMENT_METHOD_FEE_CURRENCY = "USD"


class PaymentMethod(IdMixin, CreatedAtMixin, Base):
    __tablename__ = "payment_methods"
    __table_args__ = (
        CheckConstraint("type IN ('card', 'ach')", name="type"),
        # One live method per card/account and client; a deleted one may come back.
        Index(
            "uq_payment_methods_live_fingerprint",
            "client_id",
            "fingerprint",
            unique=True,
            sqlite_where=text("deleted_at IS NULL"),
            postgresql_where=text("deleted_at IS NULL"),
        ),
        Index(None, "tenant_id", "client_id", "created_at", "id"),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    client_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(8))
    brand: Mapped[str] = mapped_column(String(32))
    last4: Mapped[str] = mapped_column(String(4))
    exp_month: Mapped[int | None]
    exp_year: Mapped[int | None]
    fingerprint: Mapped[str] = mapped_column(String(128))
    gateway_reference: Mapped[str] = mapped_column(String(200))
    nickname: Mapped[str | None] = mapped_column(String(100))
    is_default: Mapped[bool] = mapped_column(default=False)
    # Kept (not deleted) so payment history can still name the card it used.
    deleted_at: Mapped[datetime | None]


class PlatformFee(IdMixin, CreatedAtMixin, Base):
    __tablename__ = "platform_fees"
    __table_args__ = (
        # A card is new to a client once: re-adding it, even after deletion, costs nothing.
        UniqueConstraint("client_id", "fingerprint"),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint(f"amount <= {MAX_AMOUNT}", name="amount_at_most_max"),
        Index(None, "tenant_id", "created_at", "id"),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    client_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"))
    payment_method_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("payment_methods.id", ondelete="CASCADE")
    )
    fingerprint: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(32), default="payment_method_added")
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))


class Invoice(IdMixin, CreatedAtMixin, Base):
    __tablename__ = "invoices"
    __table_args__ = (
        UniqueConstraint("tenant_id", "number"),
        UniqueConstraint("tenant_id", "external_id"),
        CheckConstraint("status IN ('draft', 'open', 'paid', 'void')", name="status"),
        CheckConstraint("total >= 0", name="total_not_negative"),
        CheckConstraint(f"total <= {MAX_AMOUNT}", name="total_at_most_max"),
        CheckConstraint("tax_total >= 0 AND tax_total <= total", name="tax_within_total"),
        CheckConstraint("amount_paid >= 0 AND amount_reserved >= 0", name="amounts_not_negative"),
        CheckConstraint("amount_paid + amount_reserved <= total", name="never_overpaid"),
        CheckConstraint(
            "status NOT IN ('open', 'paid') OR (status = 'paid') = (amount_paid = total)",
            name="paid_iff_settled",
        ),
        CheckConstraint(
            "status IN ('open', 'paid') OR amount_paid = 0", name="unpaid_unless_issued"
        ),
        # Every list keeps its keyset order (created_at, id) on an index: a client's, the
        # whole tenant's (staff), and either filtered by status (`?overdue` is status open).
        Index(None, "tenant_id", "client_id", "created_at", "id"),
        Index("ix_invoices_tenant_created", "tenant_id", "created_at", "id"),
        Index("ix_invoices_client_status", "tenant_id", "client_id", "status", "created_at", "id"),
        Index("ix_invoices_tenant_status", "tenant_id", "status", "created_at", "id"),
        Index("ix_invoices_tenant_status_due", "tenant_id", "status", "due_date"),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    client_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"))
    number: Mapped[str | None] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(8), default="draft")
    currency: Mapped[str] = mapped_column(String(3))
    issued_on: Mapped[date | None]
    due_date: Mapped[date]
    memo: Mapped[str | None] = mapped_column(Text)
    external_id: Mapped[str | None] = mapped_column(String(200))
    # What is owed: the lines' amounts plus their tax (`tax_total`, given by the PSA).
    total: Mapped[int] = mapped_column(BigInteger, default=0)
    tax_total: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))
    amount_paid: Mapped[int] = mapped_column(BigInteger, default=0)
    # Held by payments in flight, so two at once can never add up to more than the total.
    amount_reserved: Mapped[int] = mapped_column(BigInteger, default=0)
    voided_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    @property
    def balance(self) -> int:
        return self.total - self.amount_paid

    @property
    def subtotal(self) -> int:
        return self.total - self.tax_total


class InvoiceLine(IdMixin, Base):
    __tablename__ = "invoice_lines"
    __table_args__ = (
        UniqueConstraint("invoice_id", "position"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("unit_amount >= 0", name="unit_amount_not_negative"),
        CheckConstraint("amount = quantity * unit_amount", name="amount_is_product"),
        CheckConstraint("tax_amount >= 0", name="tax_amount_not_negative"),
        CheckConstraint(f"quantity <= {MAX_QUANTITY}", name="quantity_at_most_max"),
        CheckConstraint(f"unit_amount <= {MAX_AMOUNT}", name="unit_amount_at_most_max"),
        CheckConstraint(f"amount <= {MAX_AMOUNT}", name="amount_at_most_max"),
        CheckConstraint(f"tax_amount <= {MAX_AMOUNT}", name="tax_amount_at_most_max"),
    )

    invoice_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("invoices.id", ondelete="CASCADE"))
    position: Mapped[int]
    description: Mapped[str] = mapped_column(String(500))
    service_category_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("service_categories.id", ondelete="RESTRICT")
    )
    quantity: Mapped[int] = mapped_column(BigInteger)
    unit_amount: Mapped[int] = mapped_column(BigInteger)
    # `amount` is before tax; the tax on the line is given by the PSA (there is no tax engine).
    amount: Mapped[int] = mapped_column(BigInteger)
    tax_amount: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))
    tax_label: Mapped[str | None] = mapped_column(String(100))


class Payment(IdMixin, CreatedAtMixin, Base):
    """One charge through the gateway. What it pays is in its allocations, one per invoice."""

    __tablename__ = "payments"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'succeeded', 'failed')", name="status"),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint(f"amount <= {MAX_AMOUNT}", name="amount_at_most_max"),
        CheckConstraint("amount_refunded >= 0 AND amount_refunded <= amount", name="refund_bounds"),
        CheckConstraint("origin IN ('pay_now', 'scheduled')", name="origin"),
        # The lists' keyset order on an index, as for invoices.
        Index(None, "tenant_id", "client_id", "created_at", "id"),
        Index("ix_payments_tenant_created", "tenant_id", "created_at", "id"),
        Index("ix_payments_client_status", "tenant_id", "client_id", "status", "created_at", "id"),
        Index("ix_payments_tenant_status", "tenant_id", "status", "created_at", "id"),
        Index(None, "status", "created_at"),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    client_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"))
    payment_method_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("payment_methods.id", ondelete="RESTRICT")
    )
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(10), default="pending")
    origin: Mapped[str] = mapped_column(String(10), default="pay_now")
    scheduled_payment_id: Mapped[uuid.UUID | None]
    # The caller's Idempotency-Key (scoped to the caller): a retry finds this payment
    # instead of making a second one.
    request_key: Mapped[str | None] = mapped_column(String(400), unique=True)
    # Sent to the gateway; derived from our id, so reconciliation replays the same charge.
    gateway_idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    gateway_charge_reference: Mapped[str | None] = mapped_column(String(200))
    failure_code: Mapped[str | None] = mapped_column(String(64))
    failure_message: Mapped[str | None] = mapped_column(String(500))
    amount_refunded: Mapped[int] = mapped_column(BigInteger, default=0)
    settled_at: Mapped[datetime | None]
    gateway_attempts: Mapped[int] = mapped_column(default=0)


ALLOCATION_STATUSES = ("held", "applied", "released")


class PaymentAllocation(IdMixin, CreatedAtMixin, Base):
    """What one payment pays on one invoice: the truth of where money went.

    `held` while the payment is pending (the amount is reserved on the invoice), `applied`
    once it succeeded (paid on the invoice), `released` when it failed (the hold let go).
    """

    __tablename__ = "payment_allocations"
    __table_args__ = (
        UniqueConstraint("payment_id", "invoice_id"),
        UniqueConstraint("payment_id", "position"),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint(f"amount <= {MAX_AMOUNT}", name="amount_at_most_max"),
        CheckConstraint("status IN ('held', 'applied', 'released')", name="status"),
        CheckConstraint("amount_refunded >= 0 AND amount_refunded <= amount", name="refund_bounds"),
        CheckConstraint("status = 'applied' OR amount_refunded = 0", name="refunded_if_applied"),
        Index(None, "invoice_id"),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    payment_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("payments.id", ondelete="CASCADE"))
    invoice_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("invoices.id", ondelete="RESTRICT"))
    # The order the payment pays its invoices in (oldest due first); 0 is the first.
    position: Mapped[int] = mapped_column(default=0)
    amount: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(10), default="held")
    amount_refunded: Mapped[int] = mapped_column(BigInteger, default=0)


class Refund(IdMixin, CreatedAtMixin, Base):
    __tablename__ = "refunds"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'succeeded', 'failed')", name="status"),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint(f"amount <= {MAX_AMOUNT}", name="amount_at_most_max"),
        Index(None, "payment_id"),
        Index(None, "status", "created_at"),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    payment_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("payments.id", ondelete="CASCADE"))
    amount: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(10), default="pending")
    request_key: Mapped[str | None] = mapped_column(String(400), unique=True)
    gateway_idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    gateway_reference: Mapped[str | None] = mapped_column(String(200))
    failure_code: Mapped[str | None] = mapped_column(String(64))
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    settled_at: Mapped[datetime | None]


class IdempotencyRecord(IdMixin, CreatedAtMixin, Base):
    __tablename__ = "idempotency_records"
    __table_args__ = (UniqueConstraint("actor", "key"), Index(None, "expires_at"))

    actor: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(255))
    request_fingerprint: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(12), default="in_flight")
    response_status: Mapped[int | None]
    response_body: Mapped[dict[str, Any] | list[Any] | None] = mapped_column(JSON)
    locked_until: Mapped[datetime]
    expires_at: Mapped[datetime]
