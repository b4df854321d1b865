"""Bodies of the consent endpoints, and the consent a request carries."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from app.core.schemas import StrictBody

ConsentKind = Literal["ach_debit", "autopay"]


class ConsentIn(StrictBody):
    """What the client agreed to, sent with the request that needs it."""

    accepted: Literal[True] = Field(description="Must be true: the client accepted the text.")
    text_version: int = Field(
        ge=1, le=1_000_000, description="The version of GET /consent-texts/{kind} that was shown."
    )


class ConsentTextOut(BaseModel):
    kind: ConsentKind
    version: int
    text: str


class ConsentTextIn(StrictBody):
    text: str = Field(min_length=20, max_length=20_000)


class ConsentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    kind: ConsentKind
    user_id: uuid.UUID | None
    client_id: uuid.UUID
    text_version: int
    text_sha256: str = Field(description="SHA-256 of the text accepted, in hex.")
    accepted_at: datetime
    ip_address: str | None
    user_agent: str | None
