"""Sign-in, token rotation, sign-out and password changes."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.credentials import check_password_sign_in
from app.auth.errors import InvalidRefreshToken, RefreshTokenReused
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
from app.models import RefreshToken, User


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
        user.last_login_at = utcnow()
        return await self._issue(user, family_id=uuid.uuid4())

    async def refresh(self, raw_token: str) -> IssuedTokens:
        now = utcnow()
        token = await self.repo.refresh_token_by_hash(sha256_hex(raw_token))
        if token is None or token.revoked_at is not None or token.expires_at <= now:
            raise InvalidRefreshToken()
        if token.spent_at is not None:
            # A spent token coming back means it was copied: end every session it begot.
            await self.repo.revoke_family(token.family_id, now)
            raise RefreshTokenReused()
        user = await self.repo.user(token.user_id)
        if user is None or not user.is_active:
            raise InvalidRefreshToken()
        token.spent_at = now
        return await self._issue(user, family_id=token.family_id)

    async def sign_out(self, user: User, raw_token: str) -> None:
        token = await self.repo.refresh_token_by_hash(sha256_hex(raw_token))
        # Someone else's token, or garbage: nothing to do, and nothing to tell.
        if token is not None and token.user_id == user.id:
            await self.repo.revoke_family(token.family_id, utcnow())

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
        await self.repo.revoke_user_sessions(user.id, utcnow(), except_family=session_family)
        await self.session.flush()

    async def complete_sign_in(self, user: User) -> IssuedTokens:
        """A new session for someone who has passed every step (the TOTP one included)."""
        user.last_login_at = utcnow()
        return await self._issue(user, family_id=uuid.uuid4())

    async def _issue(self, user: User, *, family_id: uuid.UUID) -> IssuedTokens:
        raw = new_refresh_token()
        self.session.add(
            RefreshToken(
                user_id=user.id,
                family_id=family_id,
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
            session_id=family_id,
        )
        return IssuedTokens(
            access_token=access,
            refresh_token=raw,
            expires_in=self.settings.access_token_ttl_seconds,
            must_change_password=user.must_change_password,
        )
