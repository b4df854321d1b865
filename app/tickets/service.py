"""The rules of a ticket's life: who may do what, and which status changes are allowed.

Staff move a ticket between `open`, `in_progress` and `waiting_on_client` (as the table
below allows) and close it with resolution notes; a client's update on a ticket that waits
on them puts it back `in_progress`; `closed` is final.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any, Literal, cast

from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.errors import ClientOnly
from app.core.clock import utcnow
from app.core.errors import Forbidden
from app.core.events import record_event
from app.core.hooks import Hooks
from app.core.pagination import PageParams
from app.core.principal import Principal
from app.models import Ticket, TicketUpdate
from app.tickets.errors import (
    AssigneeNotStaff,
    CloseThroughEndpoint,
    InvalidTicketTransition,
    InvoiceNotReferable,
    TicketClosed,
)
from app.tickets.repository import TicketFilters, TicketRepository
from app.tickets.schemas import TicketChange, TicketCreate, TicketOut, TicketStatus

Author = Literal["staff", "client"]

# Status changes staff may make with PATCH. `closed` is reached only through the close
# endpoint (it needs resolution notes), and a closed ticket is service history: nothing
# leaves it, so a new problem is a new ticket. Once work has started a ticket does not go
# back to `open`, which means "nobody has picked it up yet".
STAFF_TRANSITIONS: Mapping[TicketStatus, frozenset[TicketStatus]] = {
    "open": frozenset({"in_progress", "waiting_on_client"}),
    "in_progress": frozenset({"waiting_on_client"}),
    "waiting_on_client": frozenset({"in_progress"}),
    "closed": frozenset(),
}

# What adding an update does to the status, by who wrote it (not listed: unchanged).
# The client answering the question staff were waiting on puts the ticket back to work.
UPDATE_TRANSITIONS: Mapping[tuple[Author, TicketStatus], TicketStatus] = {
    ("client", "waiting_on_client"): "in_progress",
}

# The states the close endpoint accepts.
CLOSABLE: frozenset[TicketStatus] = frozenset({"open", "in_progress", "waiting_on_client"})


def status_after_change(current: TicketStatus, requested: TicketStatus) -> TicketStatus:
    """The status a staff PATCH leads to, or the error that refuses it."""
    if requested == "closed":
        raise CloseThroughEndpoint()
    if requested == current:
        return current
    allowed = STAFF_TRANSITIONS[current]
    if requested not in allowed:
        raise InvalidTicketTransition(current, requested, allowed)
    return requested


def status_after_update(current: TicketStatus, author: Author) -> TicketStatus:
    """The status a new update leaves the ticket in (closed tickets take none: see caller)."""
    return UPDATE_TRANSITIONS.get((author, current), current)


class TicketService:
    def __init__(
        self, session: AsyncSession, principal: Principal, hooks: Hooks | None = None
    ) -> None:
        self.session = session
        self.principal = principal
        self.tickets = TicketRepository(session, principal)
        # What a billing dispute does to the invoice's payments (holds them while it is open).
        self.hooks = hooks or Hooks()

    async def open(self, data: TicketCreate) -> Ticket:
        client_id = self.principal.client_id
        if client_id is None:  # the router's gate already says so; this keeps it true
            raise ClientOnly()
        if data.invoice_id is not None and not await self.tickets.invoice_is_clients(
            data.invoice_id, client_id
        ):
            raise InvoiceNotReferable()
        now = utcnow()
        ticket = Ticket(
            tenant_id=self.principal.tenant_id,
            client_id=client_id,
            number=await self.tickets.take_number(),
            subject=data.subject,
            description=data.description,
            priority=data.priority,
            status="open",
            invoice_id=data.invoice_id,
            kind=data.kind,
            opened_by_id=self.principal.user_id,
            created_at=now,
            updated_at=now,
        )
        self.tickets.add(ticket)
        await self.session.flush()
        self._record(ticket, "ticket.created")
        if ticket.kind == "billing_dispute" and ticket.invoice_id is not None:
            await self.hooks.run_dispute_opened(self.session, self.principal, ticket.invoice_id)
        return await self.tickets.detail(ticket.id)

    async def page(
        self, filters: TicketFilters, params: PageParams
    ) -> tuple[list[Ticket], str | None]:
        return await self.tickets.page(filters, params)

    async def detail(self, ticket_id: uuid.UUID) -> Ticket:
        return await self.tickets.detail(ticket_id)

    async def add_update(self, ticket_id: uuid.UUID, body: str) -> TicketUpdate:
        # The row lock (PostgreSQL; SQLite writers are serialised anyway) keeps an update
        # from landing on a ticket that is being closed at the same moment.
        ticket = await self.tickets.get_or_404(ticket_id, for_update=True)
        current = _status(ticket)
        if current == "closed":
            raise TicketClosed(ticket.number, "takes no more updates")
        author = await self.tickets.user(self._user_id())
        role: Author = "staff" if self.principal.is_staff else "client"
        now = utcnow()
        update = TicketUpdate(
            ticket_id=ticket.id,
            tenant_id=ticket.tenant_id,
            author_id=self._user_id(),
            body=body,
            created_at=now,
        )
        update.author = author
        self.session.add(update)
        changes: dict[str, Any] = {}
        new_status = status_after_update(current, role)
        if new_status != current:
            changes["status"] = {"from": current, "to": new_status}
            ticket.status = new_status
        ticket.updated_at = now
        await self.session.flush()
        self._record(
            ticket, "ticket.updated", update_id=str(update.id), author_role=role, changes=changes
        )
        return update

    async def change(self, ticket_id: uuid.UUID, data: TicketChange) -> Ticket:
        ticket = await self.tickets.get_or_404(ticket_id, for_update=True)
        if _status(ticket) == "closed":
            raise TicketClosed(ticket.number)
        given = data.model_fields_set
        changes: dict[str, Any] = {}
        if data.status is not None:
            new_status = status_after_change(_status(ticket), data.status)
            if new_status != ticket.status:
                changes["status"] = {"from": ticket.status, "to": new_status}
                ticket.status = new_status
        if "assignee_id" in given and data.assignee_id != ticket.assignee_id:
            if (
                data.assignee_id is not None
                and await self.tickets.active_staff(data.assignee_id) is None
            ):
                raise AssigneeNotStaff()
            changes["assignee_id"] = {
                "from": _str_or_none(ticket.assignee_id),
                "to": _str_or_none(data.assignee_id),
            }
            ticket.assignee_id = data.assignee_id
        if data.priority is not None and data.priority != ticket.priority:
            changes["priority"] = {"from": ticket.priority, "to": data.priority}
            ticket.priority = data.priority
        if changes:
            ticket.updated_at = utcnow()
            await self.session.flush()
            self._record(ticket, "ticket.updated", changes=changes)
        return await self.tickets.detail(ticket.id)

    async def close(self, ticket_id: uuid.UUID, resolution_notes: str) -> Ticket:
        ticket = await self.tickets.get_or_404(ticket_id, for_update=True)
        current = _status(ticket)
        if current not in CLOSABLE:
            raise TicketClosed(ticket.number, "cannot be closed again")
        now = utcnow()
        ticket.status = "closed"
        ticket.resolution_notes = resolution_notes
        ticket.closed_at = now
        ticket.closed_by_id = self._user_id()
        ticket.updated_at = now
        await self.session.flush()
        self._record(ticket, "ticket.closed", changes={"status": {"from": current, "to": "closed"}})
        if ticket.kind == "billing_dispute" and ticket.invoice_id is not None:
            await self.hooks.run_dispute_closed(self.session, self.principal, ticket.invoice_id)
        return await self.tickets.detail(ticket.id)

    def _user_id(self) -> uuid.UUID:
        user_id = self.principal.user_id
        if user_id is None:
            raise Forbidden("This needs a person's access token, not an API key.")
        return user_id

    def _record(self, ticket: Ticket, type_: str, **details: Any) -> None:
        """The ticket as the API lists it; `details`: what changed, from what to what."""
        record_event(
            self.session,
            tenant_id=ticket.tenant_id,
            type=type_,
            subject_type="ticket",
            subject_id=ticket.id,
            client_id=ticket.client_id,
            data=TicketOut.model_validate(ticket).model_dump(mode="json"),
            details=details or None,
        )


def _status(ticket: Ticket) -> TicketStatus:
    return cast(TicketStatus, ticket.status)


def _str_or_none(value: uuid.UUID | None) -> str | None:
    return None if value is None else str(value)
