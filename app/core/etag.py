"""ETags from a row's version counter, and the If-Match check (412 on a stale one)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Header

from app.core.errors import PreconditionFailed

IfMatchHeader = Annotated[
    str | None,
    Header(
        alias="If-Match",
        max_length=200,
        description="The ETag from GET: refuse the change (412) if stale.",
    ),
]


def etag_for(version: int) -> str:
    return f'"v{version}"'


def check_if_match(if_match: str | None, version: int) -> None:
    """No header: last write wins (as the contract allows). A header: it must match."""
    if if_match is None:
        return
    candidates = {tag.strip().removeprefix("W/") for tag in if_match.split(",")}
    if "*" in candidates or etag_for(version) in candidates:
        return
    raise PreconditionFailed(
        "The resource changed since you read it (If-Match does not match its ETag): "
        "GET it again and reapply your change."
    )
