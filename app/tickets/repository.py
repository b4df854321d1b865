"""Ticket queries, always within what the caller may read (tenant, and client for a contact)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Exists, Select, String, exists, literal_column, select, update
from sqlalchemy.orm import InstrumentedAttribute, selectinload

import app.models
from app.core.pagination import PageParams
from app.core.repository import Repository, paginate
from app.models import Tenant, Ticket, TicketUpdate, User
from app.tickets.errors import TicketNotFound


@dataclass(frozen=True, slots=True)
class TicketFilters:
    status: str | None = None  # "open" (every state but closed) or "closed"
    client_id: uuid.UUID | None = None
    assignee_id: uuid.UUID | None = None
    priority: str | None = None


class TicketRepository(Repository[Ticket]):
    model = Ticket
    not_found = TicketNotFound

    async def page(
        self, filters: TicketFilters, params: PageParams
    ) -> tuple[list[Ticket], str | None]:
        stmt = self.readable()
        # A literal, not a bound value: it must match the partial indexes' predicates even in
        # a prepared statement's generic plan (app/models/tickets.py).
        closed = literal_column("'closed'", String())
        if filters.status == "closed":
            stmt = stmt.where(Ticket.status == closed)
        elif filters.status == "open":
            stmt = stmt.where(Ticket.status != closed)
        if filters.client_id is not None:
            stmt = stmt.where(Ticket.client_id == filters.client_id)
        if filters.assignee_id is not None:
            stmt = stmt.where(Ticket.assignee_id == filters.assignee_id)
        if filters.priority is not None:
            stmt = stmt.where(Ticket.priority == filters.priority)
        return await paginate(self.session, stmt, params, [Ticket.created_at, Ticket.id])

    async def detail(self, ticket_id: uuid.UUID) -> Ticket:
        """The ticket with its people and timeline loaded (fresh, after any change)."""
        stmt: Select[Ticket] = (
            self.readable()
            .where(Ticket.id == ticket_id)
            .options(
                selectinload(Ticket.opened_by),
                selectinload(Ticket.assignee),
                selectinload(Ticket.closed_by),
                selectinload(Ticket.updates).selectinload(TicketUpdate.author),
            )
            .execution_options(populate_existing=True)
        )
        ticket = (await self.session.execute(stmt)).scalar_one_or_none()
        if ticket is None:
            raise TicketNotFound()
        return ticket

    async def take_number(self) -> int:
        """The tenant's next ticket number, in one statement so two tickets never share one."""
        stmt = (
            update(Tenant)
            .where(Tenant.id == self.principal.tenant_id)
            .values(next_ticket_number=Tenant.next_ticket_number + 1)
            .returning(Tenant.next_ticket_number - 1)
            .execution_options(synchronize_session=False)
        )
        return int((await self.session.execute(stmt)).scalar_one())

    async def user(self, user_id: uuid.UUID) -> User | None:
        user = await self.session.get(User, user_id)
        if user is None or user.tenant_id != self.principal.tenant_id:
            return None
        return user

    async def active_staff(self, user_id: uuid.UUID) -> User | None:
        stmt = select(User).where(
            User.id == user_id,
            User.tenant_id == self.principal.tenant_id,
            User.role == "staff",
            User.is_active.is_(True),
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def invoice_is_clients(self, invoice_id: uuid.UUID, client_id: uuid.UUID) -> bool:
        """Whether the invoice is one the client can see.

        The invoices domain is built alongside this one, so the model is looked up at run
        time; without it the reference cannot be checked and is kept as given.
        """
        invoice: Any = getattr(app.models, "Invoice", None)
        if invoice is None:
            return True
        stmt = select(invoice.id).where(
            invoice.id == invoice_id,
            invoice.tenant_id == self.principal.tenant_id,
            invoice.client_id == client_id,
        )
        if hasattr(invoice, "status"):
            # Clients never see drafts, so they cannot point at one either.
            stmt = stmt.where(invoice.status != "draft")
        return (await self.session.execute(stmt)).first() is not None

    @staticmethod
    def dispute_open(
        tenant_id: uuid.UUID,
        invoice_id: ColumnElement[uuid.UUID] | InstrumentedAttribute[uuid.UUID],
    ) -> Exists:
        """A condition for other domains' queries: the invoice `invoice_id` names has a
        billing dispute still open (lets the runner learn it with the row it reads)."""
        return exists().where(
            Ticket.tenant_id == tenant_id,
            Ticket.kind == "billing_dispute",
            Ticket.status != "closed",
            Ticket.invoice_id == invoice_id,
        )

    async def open_disputes(self, invoice_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
        """Which of these invoices have a billing dispute still open."""
        if not invoice_ids:
            return set()
        stmt = select(Ticket.invoice_id).where(
            Ticket.tenant_id == self.principal.tenant_id,
            Ticket.kind == "billing_dispute",
            Ticket.status != "closed",
            Ticket.invoice_id.in_(invoice_ids),
        )
        return {i for i in (await self.session.execute(stmt)).scalars() if i is not None}
