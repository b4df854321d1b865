"""Who is acting, in which request, and why: what every event records.

A request gets its own `AuditContext` (`AuditContextMiddleware`); resolving the caller fills in
the actor (`app/auth/dependencies.py`) and the `X-Audit-Reason` header the reason. Everything
recorded while the request runs reads it from here, so no domain passes any of it along. Outside
a request (the runner, the command line) the actor is the system.
"""

from __future__ import annotations

import uuid
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Annotated, Literal

from fastapi import Header
from starlette.types import ASGIApp, Receive, Scope, Send

from app.core.errors import Unprocessable
from app.core.logging import request_id_var
from app.core.principal import Principal

ActorKind = Literal["user", "api_key", "system"]
MAX_REASON_LENGTH = 500


@dataclass(frozen=True, slots=True)
class Actor:
    kind: ActorKind
    id: uuid.UUID | None = None


SYSTEM = Actor("system")


@dataclass(slots=True)
class AuditContext:
    actor: Actor = field(default=SYSTEM)
    reason: str | None = None

    @property
    def request_id(self) -> str | None:
        return request_id_var.get()


_context: ContextVar[AuditContext | None] = ContextVar("audit_context", default=None)


def current_audit() -> AuditContext:
    """The request's context, or the system's outside one."""
    return _context.get() or AuditContext()


def actor_of(principal: Principal) -> Actor:
    if principal.api_key_id is not None:
        return Actor("api_key", principal.api_key_id)
    if principal.user_id is not None:
        return Actor("user", principal.user_id)
    return SYSTEM


def act_as(principal: Principal) -> None:
    """The request's caller is known: what it changes is recorded as theirs."""
    context = _context.get()
    if context is not None:
        context.actor = actor_of(principal)


async def audit_reason(
    x_audit_reason: Annotated[
        str | None,
        Header(
            alias="X-Audit-Reason",
            min_length=1,
            description="Why you make this change, in UTF-8, up to 500 characters: kept with "
            "the events it records, in the audit trail (`GET /events`).",
            # 500 characters of UTF-8 are at most 2,000 bytes, which is what a header carries.
            json_schema_extra={"maxLength": 2000},
        ),
    ] = None,
) -> None:
    if x_audit_reason is None:
        return
    reason = _utf8(x_audit_reason)
    if len(reason) > MAX_REASON_LENGTH:
        raise Unprocessable(
            f"X-Audit-Reason may be at most {MAX_REASON_LENGTH} characters.",
            loc=("header", "X-Audit-Reason"),
        )
    context = _context.get()
    if context is not None:
        context.reason = reason


def _utf8(header: str) -> str:
    """Header values arrive as Latin-1 text; a reason is sent as UTF-8 bytes."""
    try:
        return header.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return header


class AuditContextMiddleware:
    """A fresh audit context for each HTTP request, gone when it ends."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        token = _context.set(AuditContext())
        try:
            await self.app(scope, receive, send)
        finally:
            _context.reset(token)
