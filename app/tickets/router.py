"""Service tickets: clients open them and add information; staff work and close them."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, status

from app.auth.dependencies import ClientDep, PersonDep, StaffDep
from app.core.deps import HooksDep, PageDep, SessionDep
from app.core.errors import problem_responses
from app.core.pagination import Page
from app.tickets.repository import TicketFilters
from app.tickets.schemas import (
    StatusFilter,
    TicketChange,
    TicketClose,
    TicketCreate,
    TicketDetail,
    TicketOut,
    TicketPriority,
    TicketUpdateCreate,
    TicketUpdateOut,
)
from app.tickets.service import TicketService

router = APIRouter(tags=["tickets"])


@router.post(
    "/tickets",
    operation_id="createTicket",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(401, 403, 422),
)
async def create_ticket(
    body: TicketCreate, principal: ClientDep, session: SessionDep, hooks: HooksDep
) -> TicketDetail:
    """Open a ticket for your company; it starts `open` with the MSP's next number."""
    ticket = await TicketService(session, principal, hooks).open(body)
    return TicketDetail.model_validate(ticket)


@router.get("/tickets", operation_id="listTickets", responses=problem_responses(401, 403, 422))
async def list_tickets(
    principal: PersonDep,
    session: SessionDep,
    page: PageDep,
    status_: Annotated[
        StatusFilter | None,
        Query(
            alias="status",
            description="`open`: every state but closed; `closed`: the service history.",
        ),
    ] = None,
    client_id: Annotated[uuid.UUID | None, Query(description="Staff: one client's.")] = None,
    assignee_id: Annotated[uuid.UUID | None, Query(description="Assigned to this user.")] = None,
    priority: Annotated[TicketPriority | None, Query()] = None,
) -> Page[TicketOut]:
    """Tickets, newest first: a contact sees their company's, staff see every client's."""
    filters = TicketFilters(
        status=status_, client_id=client_id, assignee_id=assignee_id, priority=priority
    )
    items, cursor = await TicketService(session, principal).page(filters, page)
    return Page(items=[TicketOut.model_validate(t) for t in items], next_cursor=cursor)


@router.get(
    "/tickets/{ticket_id}",
    operation_id="getTicket",
    responses=problem_responses(401, 403, 404, 422),
)
async def get_ticket(
    ticket_id: uuid.UUID, principal: PersonDep, session: SessionDep
) -> TicketDetail:
    """One ticket with its description and timeline of updates, oldest first."""
    ticket = await TicketService(session, principal).detail(ticket_id)
    return TicketDetail.model_validate(ticket)


@router.post(
    "/tickets/{ticket_id}/updates",
    operation_id="addTicketUpdate",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def add_ticket_update(
    ticket_id: uuid.UUID, body: TicketUpdateCreate, principal: PersonDep, session: SessionDep
) -> TicketUpdateOut:
    """Add information to a ticket that is not closed (409 once it is)."""
    update = await TicketService(session, principal).add_update(ticket_id, body.body)
    return TicketUpdateOut.model_validate(update)


@router.patch(
    "/tickets/{ticket_id}",
    operation_id="updateTicket",
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def update_ticket(
    ticket_id: uuid.UUID, body: TicketChange, principal: StaffDep, session: SessionDep
) -> TicketDetail:
    """Change a ticket's status, assignee or priority (staff)."""
    ticket = await TicketService(session, principal).change(ticket_id, body)
    return TicketDetail.model_validate(ticket)


@router.post(
    "/tickets/{ticket_id}/close",
    operation_id="closeTicket",
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def close_ticket(
    ticket_id: uuid.UUID,
    body: TicketClose,
    principal: StaffDep,
    session: SessionDep,
    hooks: HooksDep,
) -> TicketDetail:
    """Close a ticket with its resolution notes; it joins the client's service history."""
    ticket = await TicketService(session, principal, hooks).close(ticket_id, body.resolution_notes)
    return TicketDetail.model_validate(ticket)
