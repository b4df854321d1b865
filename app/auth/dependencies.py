"""Who is calling, resolved once per request into a `Principal` (plus the `User`, for
people), the role gates every router uses, and the scope an API key needs (`Scoped`)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.auth.errors import ClientOnly, InvalidAccessToken, PasswordChangeRequired, StaffOnly
from app.auth.repository import AuthRepository
from app.core.audit import act_as
from app.core.clock import utcnow
from app.core.config import Settings
from app.core.deps import SessionDep
from app.core.errors import Forbidden
from app.core.principal import ClientPrincipal, Principal, person_principal
from app.core.scopes import Scope
from app.core.security import (
    InvalidToken,
    constant_time_equals,
    decode_access_token,
    sha256_hex,
    split_api_key,
)
from app.models import User

_bearer = HTTPBearer(
    auto_error=False,
    description="An access token from POST /api/v1/auth/token, or an integration API key.",
)

# Only these let a user whose password is temporary through.
TEMPORARY_PASSWORD_OPERATIONS = frozenset({"getMe", "changePassword", "logout"})
# last_used_at is a hint, not an audit log: write it at most this often per key.
API_KEY_TOUCH_INTERVAL = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class Caller:
    principal: Principal
    user: User | None = None
    session_id: uuid.UUID | None = None
    # An API key's scopes (people have none: their role decides).
    scopes: frozenset[str] = frozenset()


async def get_caller(
    request: Request,
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Caller:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise InvalidAccessToken("Send `Authorization: Bearer <access token or API key>`.")
    token = credentials.credentials
    repo = AuthRepository(session)
    prefix = split_api_key(token)
    if prefix is not None:
        key = await repo.api_key_by_prefix(prefix)
        if (
            key is None
            or key.revoked_at is not None
            or not constant_time_equals(key.secret_hash, sha256_hex(token))
        ):
            raise InvalidAccessToken("The API key is invalid or revoked.")
        now = utcnow()
        if key.last_used_at is None or now - key.last_used_at > API_KEY_TOUCH_INTERVAL:
            key.last_used_at = now
        await session.commit()
        principal = Principal(tenant_id=key.tenant_id, kind="api_key", api_key_id=key.id)
        act_as(principal)
        return Caller(principal, scopes=frozenset(key.scopes))
    # Read here, not as a dependency: one fewer for FastAPI to solve on every request.
    settings: Settings = request.app.state.settings
    try:
        claims = decode_access_token(settings, token)
    except InvalidToken as exc:
        raise InvalidAccessToken() from exc
    if claims.session_id is None:
        raise InvalidAccessToken()
    # One query: the account, its live session and its membership of the session's company.
    # An ended session (logout, password change or reset, deactivation, a reused refresh
    # token, a company switch) ends its access tokens on their next request.
    found = await repo.caller(claims.user_id, claims.tenant_id, claims.session_id)
    if found is None:
        raise InvalidAccessToken()
    user, session_client_id, is_member = found
    if (
        not user.is_active
        or user.token_version != claims.token_version
        or session_client_id != claims.client_id
        or (user.role == "client" and not is_member)
    ):
        raise InvalidAccessToken()
    if user.must_change_password:
        route = request.scope.get("route")
        if getattr(route, "operation_id", None) not in TEMPORARY_PASSWORD_OPERATIONS:
            raise PasswordChangeRequired()
    # The caller is resolved in a transaction of its own: on SQLite an open transaction holds
    # the write lock, and money endpoints go on to run short transactions of their own.
    await session.commit()
    principal = person_principal(user, session_client_id)
    act_as(principal)
    return Caller(principal, user=user, session_id=claims.session_id)


CallerDep = Annotated[Caller, Depends(get_caller)]


async def get_principal(caller: CallerDep) -> Principal:
    return caller.principal


async def get_user(caller: CallerDep) -> User:
    if caller.user is None:
        raise Forbidden("This needs a person's access token, not an API key.")
    return caller.user


async def require_staff(caller: CallerDep) -> Principal:
    if not caller.principal.is_staff:
        raise StaffOnly()
    return caller.principal


def StaffOrKey(*scopes: Scope) -> Any:  # noqa: N802 - read as a type in signatures
    """Staff, or an API key with one of `scopes`; client users are refused."""
    scoped = Scoped(*scopes).dependency

    async def require_staff_or_api_key(caller: CallerDep) -> Principal:
        if caller.principal.is_client:
            raise StaffOnly("Only the MSP's staff or an integration key may do this.")
        principal: Principal = await scoped(caller)
        return principal

    require_staff_or_api_key.scopes = scopes  # type: ignore[attr-defined]
    # The document's `x-callers` reads this (app/core/openapi/callers.py).
    require_staff_or_api_key.refuses_clients = True  # type: ignore[attr-defined]
    return Depends(require_staff_or_api_key)


async def require_client(caller: CallerDep) -> ClientPrincipal:
    principal = caller.principal
    if not isinstance(principal, ClientPrincipal) or not principal.is_client:
        raise ClientOnly()
    return principal


async def require_person(caller: CallerDep) -> Principal:
    """Staff or client users; integration keys are refused."""
    if caller.principal.is_api_key:
        raise Forbidden("This needs a person's access token, not an API key.")
    return caller.principal


class MissingScope(Forbidden):
    type_slug = "insufficient-scope"
    title = "Insufficient scope"


def Scoped(*scopes: Scope) -> Any:  # noqa: N802 - read as a type in signatures
    """The caller, for a route an API key may call with any one of `scopes`; people pass
    (the route's own gate, if any, decides for them).

    `principal: Annotated[Principal, Scoped("invoices:read")]`"""

    async def require_scope(caller: CallerDep) -> Principal:
        if caller.principal.is_api_key and not caller.scopes.intersection(scopes):
            raise MissingScope(f"This API key lacks the scope this needs: {' or '.join(scopes)}.")
        return caller.principal

    require_scope.scopes = scopes  # type: ignore[attr-defined]
    return Depends(require_scope)


def scopes_required(dependency: object) -> tuple[Scope, ...] | None:
    """The scopes a dependency made by `Scoped` names (None for any other)."""
    found: tuple[Scope, ...] | None = getattr(dependency, "scopes", None)
    return found


PrincipalDep = Annotated[Principal, Depends(get_principal)]
UserDep = Annotated[User, Depends(get_user)]
StaffDep = Annotated[Principal, Depends(require_staff)]
ClientDep = Annotated[ClientPrincipal, Depends(require_client)]
PersonDep = Annotated[Principal, Depends(require_person)]
