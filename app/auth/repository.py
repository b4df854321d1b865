"""Queries behind sign-in. Users are found by email across tenants (sign-in names no
tenant), so this is the one repository that is not tenant-scoped: it returns only the
caller's own rows."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import and_, bindparam, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import (
    ApiKey,
    AuthSession,
    Client,
    Membership,
    PasswordResetRequest,
    PasswordResetToken,
    RefreshToken,
    User,
)

# Every authenticated request runs this: built once, with bind parameters, so a request
# neither builds the statement nor computes its cache key again (both are memoized on it).
_CALLER = (
    select(User, AuthSession.client_id, Membership.id)
    .join(
        AuthSession,
        and_(
            AuthSession.id == bindparam("session_id"),
            AuthSession.user_id == User.id,
            AuthSession.ended_at.is_(None),
        ),
    )
    .outerjoin(
        Membership,
        and_(
            Membership.user_id == User.id,
            Membership.client_id == AuthSession.client_id,
        ),
    )
    .where(User.id == bindparam("user_id"), User.tenant_id == bindparam("tenant_id"))
)


class AuthRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def users_by_email(self, email: str) -> list[User]:
        """Every account of this email, one per tenant at most, oldest first."""
        stmt = (
            select(User)
            .where(User.email == email.strip().lower())
            .order_by(User.created_at, User.id)
            .limit(20)
        )
        return list((await self.session.execute(stmt)).scalars())

    async def caller(
        self, user_id: uuid.UUID, tenant_id: uuid.UUID, session_id: uuid.UUID
    ) -> tuple[User, uuid.UUID | None, bool] | None:
        """The signed-in person behind an access token, in ONE query: their account, the
        company of the live session the token belongs to (None: staff acting for none), and
        whether they still belong to it. None when the session has ended or is not theirs."""
        params = {"user_id": user_id, "tenant_id": tenant_id, "session_id": session_id}
        row = (await self.session.execute(_CALLER, params)).first()
        if row is None:
            return None
        return row[0], row[1], row[2] is not None

    async def auth_session(self, session_id: uuid.UUID) -> AuthSession | None:
        return await self.session.get(AuthSession, session_id)

    def add_auth_session(self, auth_session: AuthSession) -> None:
        self.session.add(auth_session)

    async def end_sessions(
        self,
        user_id: uuid.UUID,
        at: datetime,
        reason: str,
        *,
        only: uuid.UUID | None = None,
        keep: uuid.UUID | None = None,
    ) -> None:
        """End a person's live sessions (just `only`, or all but `keep`): their refresh tokens
        are revoked and their access tokens stop working on the next request."""
        ending = update(AuthSession).where(
            AuthSession.user_id == user_id, AuthSession.ended_at.is_(None)
        )
        revoking = update(RefreshToken).where(
            RefreshToken.user_id == user_id, RefreshToken.revoked_at.is_(None)
        )
        if only is not None:
            ending = ending.where(AuthSession.id == only)
            revoking = revoking.where(RefreshToken.family_id == only)
        if keep is not None:
            ending = ending.where(AuthSession.id != keep)
            revoking = revoking.where(RefreshToken.family_id != keep)
        await self.session.execute(ending.values(ended_at=at, end_reason=reason))
        await self.session.execute(revoking.values(revoked_at=at))

    async def companies(self, user: User) -> list[Client]:
        """The companies a client contact belongs to, by name."""
        stmt = (
            select(Client)
            .join(Membership, Membership.client_id == Client.id)
            .where(Membership.user_id == user.id, Client.tenant_id == user.tenant_id)
            .order_by(Client.name, Client.id)
        )
        return list((await self.session.execute(stmt)).scalars())

    async def is_member(self, user: User, client_id: uuid.UUID) -> bool:
        stmt = select(Membership.id).where(
            Membership.user_id == user.id,
            Membership.client_id == client_id,
            Membership.tenant_id == user.tenant_id,
        )
        return (await self.session.execute(stmt)).first() is not None

    def add_reset_token(self, token: PasswordResetToken) -> None:
        self.session.add(token)

    async def reset_token_by_hash(self, token_hash: str) -> PasswordResetToken | None:
        stmt = (
            select(PasswordResetToken)
            .where(PasswordResetToken.token_hash == token_hash)
            .with_for_update()
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def spend_reset_tokens(self, user_id: uuid.UUID, at: datetime) -> None:
        """Every unused reset link of a person stops working (one was used, or the password
        was set another way)."""
        await self.session.execute(
            update(PasswordResetToken)
            .where(PasswordResetToken.user_id == user_id, PasswordResetToken.used_at.is_(None))
            .values(used_at=at)
        )

    async def user(self, user_id: uuid.UUID) -> User | None:
        return await self.session.get(User, user_id)

    async def refresh_token_by_hash(self, token_hash: str) -> RefreshToken | None:
        stmt = select(RefreshToken).where(RefreshToken.token_hash == token_hash).with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def api_key_by_prefix(self, prefix: str) -> ApiKey | None:
        stmt = select(ApiKey).where(ApiKey.prefix == prefix)
        return (await self.session.execute(stmt)).scalar_one_or_none()


class PasswordResetRequestRepository:
    """Password-reset requests by hashed (email, address), across tenants: the request names
    no tenant."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def count_since(self, key: str, since: datetime) -> int:
        stmt = select(func.count()).where(
            PasswordResetRequest.key == key, PasswordResetRequest.occurred_at > since
        )
        return int((await self.session.execute(stmt)).scalar_one())

    async def add(self, key: str, at: datetime) -> None:
        self.session.add(PasswordResetRequest(key=key, occurred_at=at))
        await self.session.flush()

    async def forget_before(self, cutoff: datetime) -> None:
        await self.session.execute(
            delete(PasswordResetRequest).where(PasswordResetRequest.occurred_at < cutoff)
        )
