"""The password check of sign-in: throttled before it runs, and run with no database
connection held (argon2 takes tens of milliseconds of CPU on purpose; a pooled connection, a
transaction or, on SQLite, the write lock must not wait on it)."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.errors import InvalidCredentials, SignInThrottled
from app.auth.repository import AuthRepository
from app.auth.throttle import LoginThrottle
from app.core.security import verify_password_off_loop
from app.models import User


async def check_password_sign_in(
    session: AsyncSession, throttle: LoginThrottle, *, email: str, password: str, address: str
) -> User:
    """The active user with this email and password, loaded into `session`; else
    `InvalidCredentials` (the same answer for an unknown email) or `SignInThrottled`."""
    attempt = await throttle.admit("sign-in", email, address)
    if attempt.retry_after is not None:
        raise SignInThrottled(
            "Too many failed sign-in attempts. Wait before trying again.",
            retry_after=attempt.retry_after,
        )
    # A short read of its own, closed before the hash is checked. One account per tenant, so
    # an email may have several: the first whose password matches, active ones first.
    async with AsyncSession(session.bind, expire_on_commit=False) as lookup:
        found = await AuthRepository(lookup).users_by_email(email)
        accounts = [(a.id, a.password_hash, a.is_active) for a in found]
    accounts.sort(key=lambda account: not account[2])
    user_id: uuid.UUID | None = None
    active = False
    if not accounts:
        # Verify even when the email is unknown (against a dummy hash): same time either way.
        await verify_password_off_loop(password, None)
    for account_id, password_hash, is_active in accounts:
        if await verify_password_off_loop(password, password_hash):
            user_id, active = account_id, is_active
            break
    if user_id is None or not active:
        raise InvalidCredentials()  # the attempt stays counted: it was a failure
    await throttle.succeeded(attempt)
    user = await AuthRepository(session).user(user_id)
    if user is None or not user.is_active:  # gone between the two reads
        raise InvalidCredentials()
    return user
