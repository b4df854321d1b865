"""The base of every request body."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class StrictBody(BaseModel):
    """Unknown fields are refused: nobody sets a role, tenant or client by adding a key."""

    model_config = ConfigDict(extra="forbid")


def not_null(schema: dict[str, Any]) -> None:
    """`json_schema_extra` for an optional field that refuses an explicit `null` (leaving it
    out keeps the value): the document then shows it as not nullable, as it behaves."""
    options = [o for o in schema.pop("anyOf", []) if o.get("type") != "null"]
    if len(options) == 1:
        schema.update(options[0])
    elif options:
        schema["anyOf"] = options
