"""The password check of sign-in: throttled before it runs, and run with no database
connection held (argon2 takes tens of milliseconds of CPU on purpose; a pooled connection, a
transaction or, on SQLite, the write lock must not wait on it)."""

from __future__ import annotations

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
    # A short read of its own, closed before the hash is checked.
    async with AsyncSession(session.bind, expire_on_commit=False) as lookup:
        found = await AuthRepository(lookup).user_by_email(email)
        user_id = found.id if found else None
        password_hash = found.password_hash if found else None
        active = bool(found and found.is_active)
    # Verify even when the user is unknown (against a dummy hash): same time either way.
    valid = await verify_password_off_loop(password, password_hash)
    if user_id is None or not valid or not active:
        raise InvalidCredentials()  # the attempt stays counted: it was a failure
    await throttle.succeeded(attempt)
    user = await AuthRepository(session).user(user_id)
    if user is None or not user.is_active:  # gone between the two reads
        raise InvalidCredentials()
    return user
