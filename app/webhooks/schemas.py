"""Bodies of the webhook endpoints API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.core.events import EVENT_TYPES
from app.core.schemas import OneLine, StrictBody
from app.webhooks.targets import MAX_URL_LENGTH

DeliveryStatus = Literal["pending", "succeeded", "failed"]

URL_DESCRIPTION = (
    "An `https://` URL on a public address; it receives each event as a signed `POST` "
    "(Standard Webhooks)."
)
EVENT_TYPES_DESCRIPTION = (
    "The event types to send (e.g. `invoice.paid`); left out or null: every type."
)


def _known_types(value: list[str] | None) -> list[str] | None:
    if value is None:
        return None
    unknown = [t for t in value if t not in EVENT_TYPES]
    if unknown:
        raise ValueError(f"unknown event type {unknown[0]!r}")
    return sorted(set(value))


# The longest event type is far shorter; the bound keeps an unknown one from being huge.
EventTypeName = Annotated[str, Field(max_length=64)]


class WebhookEndpointCreate(StrictBody):
    url: Annotated[str, OneLine()] = Field(
        min_length=1, max_length=MAX_URL_LENGTH, description=URL_DESCRIPTION
    )
    event_types: list[EventTypeName] | None = Field(
        default=None, min_length=1, max_length=100, description=EVENT_TYPES_DESCRIPTION
    )
    description: str | None = Field(default=None, max_length=500)

    _types = field_validator("event_types")(_known_types)


class WebhookEndpointUpdate(StrictBody):
    """Only the fields given change."""

    url: Annotated[str | None, OneLine()] = Field(
        default=None, min_length=1, max_length=MAX_URL_LENGTH, description=URL_DESCRIPTION
    )
    event_types: list[EventTypeName] | None = Field(
        default=None, min_length=1, max_length=100, description=EVENT_TYPES_DESCRIPTION
    )
    description: str | None = Field(default=None, max_length=500)
    enabled: bool | None = Field(
        default=None,
        description="false stops sending (deliveries wait); true sends again, also after the "
        "endpoint was disabled for failing.",
    )

    _types = field_validator("event_types")(_known_types)


class WebhookEndpointOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    url: str
    event_types: list[str] | None = Field(description="null: every event type.")
    description: str | None
    enabled: bool
    disabled_reason: str | None = Field(description="Why the service turned it off, if it did.")
    failing_since: datetime | None = Field(
        description="Every attempt since then failed; after 5 days the endpoint is disabled."
    )
    previous_secret_expires_at: datetime | None = Field(
        description="After `rotate-secret`: until then the old secret signs too."
    )
    created_at: datetime
    updated_at: datetime


class WebhookEndpointSecret(WebhookEndpointOut):
    secret: str = Field(
        description="`whsec_` + base64: the signing secret, shown only in this response."
    )


class WebhookDeliveryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    event_id: uuid.UUID
    event_type: str
    attempt: int = Field(description="Attempts made so far.")
    status: DeliveryStatus
    response_status: int | None = Field(description="The receiver's answer to the last attempt.")
    duration_ms: int | None = Field(description="How long the last attempt took.")
    error: str | None = Field(
        validation_alias="last_error",
        description="Why the last attempt got no answer (timed out, refused address ...).",
    )
    created_at: datetime
    last_attempt_at: datetime | None
    next_attempt_at: datetime | None = Field(description="When it is tried next, while pending.")
