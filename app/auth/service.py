"""Sign-in, token rotation, sign-out and password changes."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.credentials import check_password_sign_in
from app.auth.errors import (
    ClientOnly,
    InvalidRefreshToken,
    NotAMember,
    RefreshTokenReused,
)
from app.auth.repository import AuthRepository
from app.auth.throttle import LoginThrottle
from app.auth.throttle.errors import PasswordAttemptsThrottled, WrongCurrentPassword
from app.auth.totp.service import require_second_factor
from app.core.clock import utcnow
from app.core.config import Settings
from app.core.errors import Unprocessable
from app.core.security import (
    create_access_token,
    hash_password_off_loop,
    new_refresh_token,
    password_problem,
    sha256_hex,
    verify_password_off_loop,
)
from app.models import AuthSession, RefreshToken, User


@dataclass(frozen=True, slots=True)
class IssuedTokens:
    access_token: str
    refresh_token: str
    expires_in: int
    must_change_password: bool


class AuthService:
    def __init__(self, session: AsyncSession, settings: Settings) -> None:
        self.session = session
        self.settings = settings
        self.repo = AuthRepository(session)

    async def sign_in(
        self, *, email: str, password: str, address: str, throttle: LoginThrottle
    ) -> IssuedTokens:
        email = email.strip().lower()
        # Throttled, and checked with no connection held (app/auth/credentials.py).
        user = await check_password_sign_in(
            self.session, throttle, email=email, password=password, address=address
        )
        # A second factor when the person has one, or must (app/auth/totp).
        await require_second_factor(self.session, self.settings, user)
        return await self.complete_sign_in(user)

    async def start_session(self, user: User, *, client_id: uuid.UUID | None) -> IssuedTokens:
        """A new session for `user` acting for `client_id` (None for staff), and its first
        token pair."""
        auth_session = AuthSession(id=uuid.uuid4(), user_id=user.id, client_id=client_id)
        self.repo.add_auth_session(auth_session)
        await self.session.flush()
        return await self._issue(user, auth_session)

    async def switch_client(
        self, user: User, client_id: uuid.UUID, *, current_session: uuid.UUID | None
    ) -> IssuedTokens:
        """A pair for another company the contact belongs to; the current session ends, so
        its tokens cannot keep acting for the company left."""
        if user.role != "client":
            raise ClientOnly("Only a client contact has companies to switch between.")
        if not await self.repo.is_member(user, client_id):
            raise NotAMember()
        if current_session is not None:
            await self.repo.end_sessions(user.id, utcnow(), "switched", only=current_session)
        return await self.start_session(user, client_id=client_id)

    async def refresh(self, raw_token: str) -> IssuedTokens:
        now = utcnow()
        token = await self.repo.refresh_token_by_hash(sha256_hex(raw_token))
        if token is None or token.revoked_at is not None or token.expires_at <= now:
            raise InvalidRefreshToken()
        if token.spent_at is not None:
            # A spent token coming back means it was copied: end the session it begot.
            await self.repo.end_sessions(token.user_id, now, "refresh_reused", only=token.family_id)
            raise RefreshTokenReused()
        user = await self.repo.user(token.user_id)
        auth_session = await self.repo.auth_session(token.family_id)
        if (
            user is None
            or not user.is_active
            or auth_session is None
            or auth_session.ended_at is not None
        ):
            raise InvalidRefreshToken()
        token.spent_at = now
        return await self._issue(user, auth_session)

    async def sign_out(self, user: User, raw_token: str) -> None:
        token = await self.repo.refresh_token_by_hash(sha256_hex(raw_token))
        # Someone else's token, or garbage: nothing to do, and nothing to tell.
        if token is not None and token.user_id == user.id:
            await self.repo.end_sessions(user.id, utcnow(), "logout", only=token.family_id)

    async def change_password(
        self,
        user: User,
        *,
        current: str,
        new: str,
        session_family: uuid.UUID | None,
        throttle: LoginThrottle,
        address: str,
    ) -> None:
        # Guesses at the current password are throttled like sign-in (app/auth/throttle).
        attempt = await throttle.admit("password", str(user.id), address, session=self.session)
        if attempt.retry_after is not None:
            raise PasswordAttemptsThrottled(retry_after=attempt.retry_after)
        if not await verify_password_off_loop(current, user.password_hash):
            raise WrongCurrentPassword()
        await throttle.succeeded(attempt, session=self.session)
        problem = password_problem(new, user.email)
        if problem:
            raise Unprocessable(problem, loc=("body", "new_password"))
        if await verify_password_off_loop(new, user.password_hash):
            raise Unprocessable(
                "The new password must differ from the current one.", loc=("body", "new_password")
            )
        user.password_hash = await hash_password_off_loop(new)
        user.must_change_password = False
        user.token_version += 1
        now = utcnow()
        await self.repo.end_sessions(user.id, now, "password_changed", keep=session_family)
        await self.repo.spend_reset_tokens(user.id, now)
        await self.session.flush()

    async def complete_sign_in(self, user: User) -> IssuedTokens:
        """A new session for someone who has passed every step (the TOTP one included)."""
        user.last_login_at = utcnow()
        return await self.start_session(user, client_id=user.client_id)

    async def _issue(self, user: User, auth_session: AuthSession) -> IssuedTokens:
        raw = new_refresh_token()
        self.session.add(
            RefreshToken(
                user_id=user.id,
                family_id=auth_session.id,
                token_hash=sha256_hex(raw),
                expires_at=utcnow() + timedelta(seconds=self.settings.refresh_token_ttl_seconds),
            )
        )
        await self.session.flush()
        access = create_access_token(
            self.settings,
            user_id=user.id,
            tenant_id=user.tenant_id,
            token_version=user.token_version,
            session_id=auth_session.id,
            client_id=auth_session.client_id,
        )
        return IssuedTokens(
            access_token=access,
            refresh_token=raw,
            expires_in=self.settings.access_token_ttl_seconds,
            must_change_password=user.must_change_password,
        )
