"""Self-service password reset: a single-use, 30-minute link token, kept only as its hash
(an invitation's link is the same kind of token, valid 3 days: it sets the first password).

Asking answers the same whether or not the email has an account (the router always says
202), and is throttled per (email, address) whether or not it does, so neither the answer
nor the throttle tells a stranger who has an account."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.errors import InvalidResetToken, PasswordResetThrottled
from app.auth.messages import AccountMessage, AccountMessageKind, enqueue_account_message
from app.auth.repository import AuthRepository, PasswordResetRequestRepository
from app.core.audit import act_as
from app.core.clock import utcnow
from app.core.config import Settings
from app.core.errors import Unprocessable
from app.core.events import record_event
from app.core.principal import person_principal
from app.core.security import (
    hash_password_off_loop,
    new_password_reset_token,
    password_problem,
    sha256_hex,
)
from app.models import PasswordResetToken, User

RESET_TOKEN_TTL = timedelta(minutes=30)
# An invitation waits longer for its reader than a reset its requester.
INVITATION_TOKEN_TTL = timedelta(days=3)
# At most this many requests per (email, address) in the window: enough for a person who
# lost the first email, too few to flood an inbox.
RESET_REQUESTS_PER_WINDOW = 3
RESET_REQUEST_WINDOW = timedelta(hours=1)


class PasswordResetService:
    def __init__(self, session: AsyncSession, settings: Settings) -> None:
        self.session = session
        self.settings = settings
        self.repo = AuthRepository(session)
        self.requests = PasswordResetRequestRepository(session)

    async def request(self, email: str, address: str) -> None:
        email = email.strip().lower()
        now = utcnow()
        key = sha256_hex(f"{email}|{address}")
        await self.requests.forget_before(now - RESET_REQUEST_WINDOW)
        recent = await self.requests.count_since(key, now - RESET_REQUEST_WINDOW)
        if recent >= RESET_REQUESTS_PER_WINDOW:
            raise PasswordResetThrottled(
                PasswordResetThrottled.default_detail,
                retry_after=int(RESET_REQUEST_WINDOW.total_seconds()),
            )
        await self.requests.add(key, now)
        # One link per account: the same email may have an account in several tenants.
        for user in await self.repo.users_by_email(email):
            if user.is_active:
                await self._send_link(user, "password_reset", RESET_TOKEN_TTL)
        await self.session.flush()

    async def send_invitation(self, user: User) -> None:
        """Email a new contact a link to set their own password (and so sign in) instead of
        relying on a temporary password passed on by hand."""
        await self._send_link(user, "invitation", INVITATION_TOKEN_TTL)
        await self.session.flush()

    async def _send_link(self, user: User, kind: AccountMessageKind, ttl: timedelta) -> None:
        raw = new_password_reset_token()
        expires_at = utcnow() + ttl
        self.repo.add_reset_token(
            PasswordResetToken(
                user_id=user.id, purpose=kind, token_hash=sha256_hex(raw), expires_at=expires_at
            )
        )
        message = AccountMessage(kind, user, raw, expires_at)
        await enqueue_account_message(self.session, self.settings, message)

    async def confirm(self, raw_token: str, new_password: str) -> None:
        now = utcnow()
        token = await self.repo.reset_token_by_hash(sha256_hex(raw_token))
        if token is None or token.used_at is not None or token.expires_at <= now:
            raise InvalidResetToken()
        user = await self.repo.user(token.user_id)
        if user is None or not user.is_active:
            raise InvalidResetToken()
        problem = password_problem(new_password, user.email)
        if problem:
            raise Unprocessable(problem, loc=("body", "new_password"))
        user.password_hash = await hash_password_off_loop(new_password)
        user.must_change_password = False
        user.token_version += 1
        # This link and every other one of the person stop working; so does every session.
        await self.repo.spend_reset_tokens(user.id, now)
        await self.repo.end_sessions(user.id, now, "password_reset")
        await self.session.flush()
        # Nobody is signed in here: the link's owner is who acted.
        act_as(person_principal(user))
        record_event(
            self.session,
            tenant_id=user.tenant_id,
            client_id=user.client_id,
            type="user.password_reset",
            subject_type="user",
            subject_id=user.id,
            data={"id": str(user.id), "email": user.email, "full_name": user.full_name},
            details={"by": "invitation" if token.purpose == "invitation" else "self_service"},
        )
