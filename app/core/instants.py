"""Instants in query strings are RFC 3339 date-times only.

Left to itself pydantic also reads a number as a Unix timestamp (`?since=0.5`), which the
document (`format: date-time`) does not promise and a client would not mean."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator

from app.core.schemas import in_date_range

RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?([Zz]|[+-]\d{2}:?\d{2})?",
    re.ASCII,
)


def _rfc3339(value: Any) -> Any:
    if isinstance(value, str) and not RFC3339.fullmatch(value):
        raise ValueError("must be an RFC 3339 date-time, e.g. 2026-03-02T15:00:00Z")
    return value


# Bounded to the same range as instants in bodies (app.core.schemas.in_date_range).
QueryInstant = Annotated[datetime, BeforeValidator(_rfc3339), AfterValidator(in_date_range)]
