"""Client companies named in the path, loaded for the caller or answered with 404.

Routes declare their role gate (StaffDep, StaffOrKey(...)) before these, so a caller without
the role hears 403 before anything is looked up."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends

from app.auth.dependencies import PrincipalDep
from app.core.deps import SessionDep
from app.models import Client
from app.tenancy.repository import ClientRepository


async def client_from_path(
    client_id: uuid.UUID, principal: PrincipalDep, session: SessionDep
) -> Client:
    return await ClientRepository(session, principal).get_or_404(client_id)


ClientPathDep = Annotated[Client, Depends(client_from_path)]
