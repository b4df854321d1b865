"""Keyset (cursor) pagination: `{"items": [...], "next_cursor": "..."}`, newest first.

The cursor is the sort key of the last row returned, opaque to clients: base64url JSON and an
HMAC of it under a key derived from the signing key, so a forged or edited cursor (a date in
year 1, a value of the wrong type aimed at the database) is refused with 422 before it reaches
a query. Rows are ordered by a tuple of columns, all descending, ending with the primary key so
the order is total and stable while rows are added.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets
import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Query, Request
from pydantic import BaseModel, Field
from sqlalchemy import Select, TypeDecorator, tuple_
from sqlalchemy.orm import InstrumentedAttribute

from app.core.errors import Unprocessable

T = TypeVar("T")
Row = TypeVar("Row")

DEFAULT_LIMIT = 50
_BAD_CURSOR = "The cursor is not valid: pass back `next_cursor` exactly as it was returned."
MAX_LIMIT = 200
# Signs cursors made outside a request (PageParams built in code): valid in this process only.
_PROCESS_KEY = secrets.token_bytes(32)
_MAC_BYTES = 16
_DIGITS = re.compile(r"[0-9]{1,9}")


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(
        description="Pass as `cursor` to get the next page; null on the last page."
    )

    @classmethod
    def model_parametrized_name(cls, params: tuple[Any, ...]) -> str:
        """`Page[InvoiceOut]` is `InvoicePage` in the OpenAPI document and generated code."""
        (item,) = params
        return str(getattr(item, "__name__", item)).removesuffix("Out") + "Page"


class PageParams(BaseModel):
    limit: int = DEFAULT_LIMIT
    cursor: str | None = None
    key: bytes = Field(default=_PROCESS_KEY, repr=False)


def cursor_key(signing_key: str) -> bytes:
    """The cursors' own key, derived so that a cursor's MAC reveals nothing of the JWT key."""
    return hmac.new(signing_key.encode(), b"billing-portal pagination cursor", "sha256").digest()


async def page_params(
    request: Request,
    limit: Annotated[
        int,
        Query(ge=1, le=MAX_LIMIT, description="How many items to return (1 to 200)."),
    ] = DEFAULT_LIMIT,
    cursor: Annotated[
        str | None, Query(max_length=512, description="`next_cursor` of the previous page.")
    ] = None,
) -> PageParams:
    # As strict as a body's integers: pydantic would read `1.0` as 1.
    written = request.query_params.get("limit")
    if written is not None and not _DIGITS.fullmatch(written):
        raise Unprocessable("limit: must be an integer written in digits.", loc=("query", "limit"))
    key = cursor_key(request.app.state.settings.signing_key)
    return PageParams(limit=limit, cursor=cursor, key=key)


def _encode_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"dt": value.astimezone(UTC).isoformat()}
    if isinstance(value, date):
        return {"d": value.isoformat()}
    if isinstance(value, uuid.UUID):
        return {"u": value.hex}
    if isinstance(value, int | str):
        return value
    raise TypeError(f"cannot put {type(value).__name__} in a cursor")


def _decode_value(raw: Any) -> Any:
    if isinstance(raw, dict) and len(raw) == 1:
        ((tag, text),) = raw.items()
        if tag == "dt":
            return datetime.fromisoformat(text)
        if tag == "d":
            return date.fromisoformat(text)
        if tag == "u":
            return uuid.UUID(hex=text)
    if isinstance(raw, int | str) and not isinstance(raw, bool):
        return raw
    raise ValueError("bad cursor value")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode((text + "=" * (-len(text) % 4)).encode())


def _mac(payload: bytes, key: bytes) -> bytes:
    return hmac.new(key, payload, hashlib.sha256).digest()[:_MAC_BYTES]


def encode_cursor(values: Sequence[Any], key: bytes = _PROCESS_KEY) -> str:
    payload = json.dumps([_encode_value(v) for v in values], separators=(",", ":")).encode()
    return f"{_b64(payload)}.{_b64(_mac(payload, key))}"


def decode_cursor(cursor: str, width: int, key: bytes = _PROCESS_KEY) -> list[Any]:
    try:
        encoded, _, mac = cursor.partition(".")
        payload = _unb64(encoded)
        if not hmac.compare_digest(_unb64(mac), _mac(payload, key)):
            raise ValueError("not a cursor of ours")
        raw = json.loads(payload)
        if not isinstance(raw, list) or len(raw) != width:
            raise ValueError("wrong width")
        return [_decode_value(v) for v in raw]
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError) as exc:
        raise Unprocessable(_BAD_CURSOR, loc=("query", "cursor")) from exc


def _fits(value: Any, column: InstrumentedAttribute[Any]) -> bool:
    """A decoded cursor value is of the type its column holds (a forged cursor is not)."""
    type_ = column.type
    if isinstance(type_, TypeDecorator):
        type_ = type_.impl_instance
    try:
        expected = type_.python_type
    except NotImplementedError:
        return True
    if expected is datetime:
        return isinstance(value, datetime) and value.tzinfo is not None
    if expected is date:
        return isinstance(value, date) and not isinstance(value, datetime)
    return isinstance(value, expected)


def keyset_statement(
    stmt: Select[Row], params: PageParams, order_by: Sequence[InstrumentedAttribute[Any]]
) -> Select[Row]:
    """`stmt` limited to the page after `params.cursor`, newest first, one row extra (to know
    whether another page follows)."""
    if params.cursor:
        after = decode_cursor(params.cursor, len(order_by), params.key)
        if not all(_fits(value, col) for value, col in zip(after, order_by, strict=True)):
            raise Unprocessable(_BAD_CURSOR, loc=("query", "cursor"))
        # Bind through the columns' own types (UTC datetimes, UUIDs), as the rows were stored.
        types = [col.type for col in order_by]
        stmt = stmt.where(tuple_(*order_by) < tuple_(*after, types=types))
    return stmt.order_by(*(col.desc() for col in order_by)).limit(params.limit + 1)


def page_of(
    rows: list[Row], params: PageParams, order_by: Sequence[InstrumentedAttribute[Any]]
) -> tuple[list[Row], str | None]:
    """The rows of one page and the cursor of the next (None on the last page)."""
    if len(rows) <= params.limit:
        return rows, None
    rows = rows[: params.limit]
    last = rows[-1]
    return rows, encode_cursor([getattr(last, col.key) for col in order_by], params.key)
