"""The base of every request body."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class StrictBody(BaseModel):
    """Unknown fields are refused: nobody sets a role, tenant or client by adding a key."""

    model_config = ConfigDict(extra="forbid")
