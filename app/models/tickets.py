"""Service tickets: a client's request for help, its timeline of updates and, once closed,
its resolution (the client's service history)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.core.clock import utcnow
from app.models.base import Base, CreatedAtMixin, IdMixin
from app.models.tenancy import User

TICKET_STATUSES = ("open", "in_progress", "waiting_on_client", "closed")
TICKET_PRIORITIES = ("low", "normal", "high", "urgent")
TICKET_KINDS = ("support", "billing_dispute")


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _where(predicate: str) -> dict[str, Any]:
    """A partial index's predicate, on both databases."""
    return {"postgresql_where": text(predicate), "sqlite_where": text(predicate)}


class Ticket(IdMixin, CreatedAtMixin, Base):
    __tablename__ = "tickets"
    __table_args__ = (
        CheckConstraint(_one_of("status", TICKET_STATUSES), name="status"),
        CheckConstraint(_one_of("priority", TICKET_PRIORITIES), name="priority"),
        CheckConstraint(_one_of("kind", TICKET_KINDS), name="kind"),
        # A billing dispute is always about an invoice.
        CheckConstraint(
            "kind <> 'billing_dispute' OR invoice_id IS NOT NULL", name="dispute_invoice"
        ),
        Index("ix_tickets_invoice", "invoice_id"),
        # A closed ticket always carries its closing time and resolution; an open one neither.
        CheckConstraint(
            "(status = 'closed' AND closed_at IS NOT NULL AND resolution_notes IS NOT NULL)"
            " OR (status <> 'closed' AND closed_at IS NULL)",
            name="closed_fields",
        ),
        UniqueConstraint("tenant_id", "number"),
        # Explicit names: the convention names an index after its first column only.
        Index("ix_tickets_tenant_created", "tenant_id", "created_at", "id"),
        Index("ix_tickets_tenant_client_created", "tenant_id", "client_id", "created_at", "id"),
        # `?status=open|closed` in keyset order: "open" is three states, which no index on
        # status keeps in created_at order, so each half has partial indexes of its own. The
        # repository writes 'closed' as a literal: a bound value would not prove the predicate
        # in a prepared statement's generic plan.
        *(
            Index(f"ix_tickets_{half}_{name}", *columns, **_where(f"status {op} 'closed'"))
            for half, op in (("open", "<>"), ("closed", "="))
            for name, columns in (
                ("tenant", ("tenant_id", "created_at", "id")),
                ("client", ("tenant_id", "client_id", "created_at", "id")),
            )
        ),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    client_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"))
    # Per tenant, from tenants.next_ticket_number: what people quote on the phone.
    number: Mapped[int]
    subject: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text)
    priority: Mapped[str] = mapped_column(String(16), default="normal")
    kind: Mapped[str] = mapped_column(String(20), default="support", server_default="support")
    status: Mapped[str] = mapped_column(String(32), default="open")
    # Deliberately no foreign key: the invoices table belongs to another domain and lands in
    # its own migration; the service checks that the invoice is the client's own when the
    # Invoice model is there to ask.
    invoice_id: Mapped[uuid.UUID | None]
    opened_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    assignee_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    resolution_notes: Mapped[str | None] = mapped_column(Text)
    closed_at: Mapped[datetime | None]
    closed_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )

    opened_by: Mapped[User | None] = relationship(foreign_keys=[opened_by_id], lazy="raise")
    assignee: Mapped[User | None] = relationship(foreign_keys=[assignee_id], lazy="raise")
    closed_by: Mapped[User | None] = relationship(foreign_keys=[closed_by_id], lazy="raise")
    updates: Mapped[list[TicketUpdate]] = relationship(
        back_populates="ticket",
        lazy="raise",
        order_by=lambda: [TicketUpdate.created_at, TicketUpdate.id],
        passive_deletes=True,
    )


class TicketUpdate(IdMixin, CreatedAtMixin, Base):
    """One entry of a ticket's timeline, written by a client contact or a staff member."""

    __tablename__ = "ticket_updates"
    __table_args__ = (Index(None, "ticket_id", "created_at", "id"),)

    ticket_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    # SET NULL keeps the timeline when an account is removed; the API shows no author then.
    author_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    body: Mapped[str] = mapped_column(Text)

    ticket: Mapped[Ticket] = relationship(back_populates="updates", lazy="raise")
    author: Mapped[User | None] = relationship(lazy="raise")
