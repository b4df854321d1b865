"""The base of every request body, and the bounded types that query parameters use.

Every body is held to the same rules, whatever its fields (docs/api/limits.md lists them):
- unknown fields are refused: nobody sets a role, tenant or client by adding a key;
- integers are strict: `true`, `"250"` and `250.0` are not the integer 250 (a payment of 1
  from `"amount": true` is a bug in the client, not a payment);
- text holds no control characters; tab, newline and carriage return only in long text
  (a field allowing LONG_TEXT characters or more: memos, descriptions, ticket text);
- every date and instant lies between EARLIEST and LATEST (year 1 or 9999 is a typo, and
  arithmetic on it overflows).
"""

from __future__ import annotations

import re
import types
from datetime import UTC, date, datetime, time
from typing import Annotated, Any, Union, get_args, get_origin

from annotated_types import MaxLen
from pydantic import (
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    ValidationInfo,
    field_validator,
)

EARLIEST = date(2000, 1, 1)
LATEST = date(2100, 12, 31)
_EARLIEST_INSTANT = datetime.combine(EARLIEST, time.min, UTC)
_LATEST_INSTANT = datetime.combine(LATEST, time.max, UTC)
LONG_TEXT = 1000
_ANY_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CONTROL_BUT_WHITESPACE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def in_date_range(value: Any) -> Any:
    """`value` itself when it is a date or instant inside the accepted range."""
    if isinstance(value, datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=UTC)
        if not _EARLIEST_INSTANT <= aware <= _LATEST_INSTANT:
            raise ValueError(f"must lie between {EARLIEST} and {LATEST}")
    elif isinstance(value, date) and not EARLIEST <= value <= LATEST:
        raise ValueError(f"must lie between {EARLIEST} and {LATEST}")
    return value


# RFC 5321's longest usable address; a password longer than anyone types (hashing it would
# only cost us time).
MAX_EMAIL_LENGTH = 254
MAX_PASSWORD_LENGTH = 1024
Email = Annotated[EmailStr, Field(max_length=MAX_EMAIL_LENGTH)]


def _wants(annotation: Any, kind: type) -> bool:
    """The field takes `kind` (`int`, `int | None`, `Annotated[int, ...]`) and nothing else, so
    anything but a real one is refused before pydantic coerces it (`true` or `"250"` for an
    integer, `0` or `"yes"` for a boolean)."""
    if annotation is kind:
        return True
    origin = get_origin(annotation)
    if origin is Annotated:
        return _wants(get_args(annotation)[0], kind)
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        return bool(args) and all(_wants(a, kind) for a in args)
    return False


class OneLine:
    """Marks a field that is long but never more than one line (a URL): `Annotated[str,
    OneLine()]`; tab and newline are refused in it as in short text."""


def _is_long_text(info: ValidationInfo, model: type[BaseModel]) -> bool:
    field = model.model_fields.get(info.field_name or "")
    if field is None or any(isinstance(m, OneLine) for m in field.metadata):
        return False
    lengths = [m.max_length for m in field.metadata if isinstance(m, MaxLen)]
    return bool(lengths) and min(lengths) >= LONG_TEXT


def _check_text(text: str, long_text: bool) -> None:
    pattern = _CONTROL_BUT_WHITESPACE if long_text else _ANY_CONTROL
    if pattern.search(text):
        allowed = "only tab and newline are" if long_text else "none is"
        raise ValueError(f"control characters are not accepted here ({allowed} allowed)")


class StrictBody(BaseModel):
    """The base of every request body: see the module's rules."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="before")
    @classmethod
    def _strict_integers(cls, value: Any, info: ValidationInfo) -> Any:
        field = cls.model_fields.get(info.field_name or "")
        if field is None or value is None:
            return value
        if _wants(field.annotation, int) and type(value) is not int:
            raise ValueError("must be an integer (not a boolean, string or decimal)")
        if _wants(field.annotation, bool) and type(value) is not bool:
            raise ValueError("must be true or false (not a number or string)")
        return value

    @field_validator("*", mode="after")
    @classmethod
    def _bounded_text_and_dates(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, str):
            _check_text(value, _is_long_text(info, cls))
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, str):
                    _check_text(item, long_text=False)
                else:
                    in_date_range(item)
        else:
            in_date_range(value)
        return value


def not_null(schema: dict[str, Any]) -> None:
    """`json_schema_extra` for an optional field that refuses an explicit `null` (leaving it
    out keeps the value): the document then shows it as not nullable, as it behaves."""
    options = [o for o in schema.pop("anyOf", []) if o.get("type") != "null"]
    if len(options) == 1:
        schema.update(options[0])
    elif options:
        schema["anyOf"] = options
