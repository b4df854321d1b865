"""Bodies of the ticket endpoints.

Text is stored exactly as given (never trimmed, never turned into HTML) and returned as
JSON strings; it only has to be non-blank and free of NUL characters, which PostgreSQL
cannot store.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AliasChoices, BaseModel, ConfigDict, Field, model_validator

from app.core.schemas import StrictBody, not_null

TicketStatus = Literal["open", "in_progress", "waiting_on_client", "closed"]
TicketPriority = Literal["low", "normal", "high", "urgent"]
StatusFilter = Literal["open", "closed"]
TicketKind = Literal["support", "billing_dispute"]

SUBJECT_MAX = 200
BODY_MAX = 20_000


def _meaningful(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


Subject = Annotated[str, Field(min_length=1, max_length=SUBJECT_MAX), AfterValidator(_meaningful)]
Body = Annotated[str, Field(min_length=1, max_length=BODY_MAX), AfterValidator(_meaningful)]


class TicketCreate(StrictBody):
    subject: Subject
    description: Body
    priority: TicketPriority = "normal"
    invoice_id: uuid.UUID | None = Field(
        default=None, description="The client's invoice this ticket is about, if any."
    )
    kind: TicketKind = Field(
        default="support",
        description="`billing_dispute` (needs `invoice_id`): the invoice's AutoPay and scheduled "
        "payments wait on hold until the ticket is closed.",
    )

    @model_validator(mode="after")
    def _dispute_names_an_invoice(self) -> TicketCreate:
        if self.kind == "billing_dispute" and self.invoice_id is None:
            raise ValueError("a billing dispute is about an invoice: give invoice_id")
        return self


class TicketUpdateCreate(StrictBody):
    body: Body


class TicketChange(StrictBody):
    """Staff's changes; fields left out stay as they are."""

    status: TicketStatus | None = Field(
        default=None,
        description="`closed` is refused here: use the close endpoint.",
        json_schema_extra=not_null,
    )
    assignee_id: uuid.UUID | None = Field(
        default=None,
        validation_alias=AliasChoices("assignee_id", "assignee"),
        description="A staff member's user id, or null to unassign (`assignee` is accepted too).",
    )
    priority: TicketPriority | None = Field(default=None, json_schema_extra=not_null)

    @model_validator(mode="before")
    @classmethod
    def _one_name_for_the_assignee(cls, data: Any) -> Any:
        if isinstance(data, dict) and "assignee" in data and "assignee_id" in data:
            raise ValueError("give `assignee_id` or its alias `assignee`, not both")
        return data

    @model_validator(mode="after")
    def _no_null_status_or_priority(self) -> TicketChange:
        for name in ("status", "priority"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"`{name}` cannot be null; leave it out to keep it")
        return self


class TicketClose(StrictBody):
    resolution_notes: Body


class TicketPerson(BaseModel):
    """Who wrote, opened, holds or closed a ticket."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    # Read from a User's `full_name`.
    name: str = Field(validation_alias=AliasChoices("name", "full_name"))
    role: Literal["staff", "client"]


class TicketUpdateOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    ticket_id: uuid.UUID
    author: TicketPerson | None = Field(description="Null when the author's account is gone.")
    body: str
    created_at: datetime


class TicketOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    number: int = Field(description="Sequential per MSP: the number people quote.")
    subject: str
    status: TicketStatus
    priority: TicketPriority
    kind: TicketKind
    client_id: uuid.UUID
    invoice_id: uuid.UUID | None
    assignee_id: uuid.UUID | None
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None = Field(description="Set once the ticket is closed.")
    resolution_notes: str | None = Field(description="Set once the ticket is closed.")


class TicketDetail(TicketOut):
    description: str
    opened_by: TicketPerson | None
    assignee: TicketPerson | None
    closed_by: TicketPerson | None = Field(description="Set once the ticket is closed.")
    updates: list[TicketUpdateOut] = Field(description="The timeline, oldest first.")
