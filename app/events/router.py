"""The audit trail: every change, who made it, in which request and why."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from app.auth.dependencies import StaffOrKey
from app.core.deps import PageDep, SessionDep
from app.core.errors import Unprocessable, problem_responses
from app.core.events import EVENT_TYPES
from app.core.instants import QueryInstant
from app.core.pagination import Page
from app.core.principal import Principal
from app.events.repository import EventRepository
from app.events.schemas import EventOut

router = APIRouter(tags=["events"])
EventReader = Annotated[Principal, StaffOrKey("events:read")]


@router.get("/events", operation_id="listEvents", responses=problem_responses(401, 403, 422))
async def list_events(
    principal: EventReader,
    session: SessionDep,
    page: PageDep,
    type_: Annotated[
        str | None, Query(alias="type", max_length=64, description="One event type.")
    ] = None,
    client_id: Annotated[uuid.UUID | None, Query(description="One client's events.")] = None,
    since: Annotated[
        QueryInstant | None, Query(description="Only events at or after this instant (RFC 3339).")
    ] = None,
) -> Page[EventOut]:
    """The audit trail, newest first: each change with its actor, request id and reason."""
    if type_ is not None and type_ not in EVENT_TYPES:
        raise Unprocessable(f"{type_!r} is not an event type.", loc=("query", "type"))
    if since is not None and since.tzinfo is None:
        raise Unprocessable("since needs a time zone (e.g. Z).", loc=("query", "since"))
    items, cursor = await EventRepository(session, principal).page(
        page, type_=type_, client_id=client_id, since=since
    )
    return Page(items=[EventOut.of(e) for e in items], next_cursor=cursor)


@router.get(
    "/events/{event_id}", operation_id="getEvent", responses=problem_responses(401, 403, 404, 422)
)
async def get_event(principal: EventReader, event_id: uuid.UUID, session: SessionDep) -> EventOut:
    """One event."""
    return EventOut.of(await EventRepository(session, principal).get_or_404(event_id))
