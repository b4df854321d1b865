"""Recording events in the caller's transaction: an event exists exactly when its change does."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.models.events import Event


def record_event(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    type: str,
    subject_type: str,
    subject_id: uuid.UUID,
    client_id: uuid.UUID | None = None,
    data: dict[str, Any] | None = None,
) -> Event:
    event = Event(
        tenant_id=tenant_id,
        client_id=client_id,
        type=type,
        subject_type=subject_type,
        subject_id=subject_id,
        data=data or {},
    )
    session.add(event)
    return event
