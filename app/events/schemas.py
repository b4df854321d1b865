"""The audit trail as the API shows it."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from app.models import Event


class EventActor(BaseModel):
    kind: Literal["user", "api_key", "system"] = Field(
        description="`user`: a person (staff or a client's contact); `api_key`: an integration; "
        "`system`: the service itself (the payment runner, reconciliation)."
    )
    id: uuid.UUID | None = Field(description="The user's or the key's id; null for the system.")


class EventSubject(BaseModel):
    type: str = Field(examples=["invoice"])
    id: uuid.UUID


class EventOut(BaseModel):
    id: uuid.UUID
    type: str = Field(examples=["invoice.paid"])
    created_at: datetime
    actor: EventActor
    request_id: str | None = Field(description="The `X-Request-Id` of the request that made it.")
    reason: str | None = Field(description="The request's `X-Audit-Reason`.")
    client_id: uuid.UUID | None
    subject: EventSubject = Field(description="The object the event is about.")
    data: dict[str, Any] = Field(
        description="The object after the change, as the API lists it (e.g. an invoice as "
        "`GET /invoices` shows it)."
    )
    details: dict[str, Any] | None = Field(
        description="What the change was beyond the object's new state, when there is more to "
        "say: fields' values before and after, its cause."
    )

    @classmethod
    def of(cls, event: Event) -> EventOut:
        return cls(
            id=event.id,
            type=event.type,
            created_at=event.created_at,
            actor=EventActor.model_validate({"kind": event.actor_kind, "id": event.actor_id}),
            request_id=event.request_id,
            reason=event.reason,
            client_id=event.client_id,
            subject=EventSubject(type=event.subject_type, id=event.subject_id),
            data=event.data,
            details=event.details,
        )
