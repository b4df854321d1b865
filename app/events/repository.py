"""The tenant's event log, newest first, each filter backed by an index of its own."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Select

from app.core.errors import NotFound
from app.core.pagination import PageParams
from app.core.repository import Repository, paginate
from app.models import Event

LISTING_ORDER = (Event.created_at, Event.id)


class EventNotFound(NotFound):
    default_detail = "No such event."


class EventRepository(Repository[Event]):
    model = Event
    not_found = EventNotFound

    async def page(
        self,
        params: PageParams,
        *,
        type_: str | None = None,
        client_id: uuid.UUID | None = None,
        since: datetime | None = None,
    ) -> tuple[list[Event], str | None]:
        stmt = self.listing(type_=type_, client_id=client_id, since=since)
        return await paginate(self.session, stmt, params, list(LISTING_ORDER))

    def listing(
        self,
        *,
        type_: str | None = None,
        client_id: uuid.UUID | None = None,
        since: datetime | None = None,
    ) -> Select[Event]:
        """The events asked for; (tenant_id, type or client_id, created_at, id): each filter
        walks an index of its own, newest first."""
        stmt = self.readable()
        if type_ is not None:
            stmt = stmt.where(Event.type == type_)
        if client_id is not None:
            stmt = stmt.where(Event.client_id == client_id)
        if since is not None:
            stmt = stmt.where(Event.created_at >= since)
        return stmt
