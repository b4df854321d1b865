"""Whom a money action is for. A client user acts for their own client; staff act for any
client of their tenant by naming it with `client_id` (in the query for reads, in the body for
changes), with the same rules a client meets; the events name the staff member as the actor."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import Forbidden, NotFound, Unprocessable
from app.core.principal import ClientPrincipal, Principal
from app.tenancy.repository import ClientRepository


async def act_for_client(
    session: AsyncSession,
    principal: Principal,
    client_id: uuid.UUID | None,
    *,
    loc: Sequence[str],
) -> ClientPrincipal:
    """The caller acting for one client: a client user for their own (naming another is
    refused), staff for the client they name (required; unknown is 404 in a query, 422 in a
    body)."""
    if principal.is_client:
        assert isinstance(principal, ClientPrincipal), "client users act for their client"
        if client_id not in (None, principal.client_id):
            raise Unprocessable("client_id names another client: leave it out.", loc=loc)
        return principal
    if not principal.is_staff:
        raise Forbidden("This needs a person's access token, not an API key.")
    if client_id is None:
        raise Unprocessable("Staff name the client this is for with client_id.", loc=loc)
    if await ClientRepository(session, principal).get(client_id) is None:
        if loc[0] == "query":
            raise NotFound("No such client.")
        raise Unprocessable("No such client.", loc=loc)
    return ClientPrincipal.of(principal, client_id)
