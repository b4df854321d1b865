"""Staff managing a client's contacts: inviting (or adding a company to a contact they already
have), resetting a password, renaming, deactivating and reactivating.

An account belongs to its tenant alone: an email with an account in another tenant is simply
a new account here, so an invitation never reveals who has an account elsewhere."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.password_reset import PasswordResetService
from app.auth.repository import AuthRepository
from app.core.clock import utcnow
from app.core.config import Settings
from app.core.events import record_event
from app.core.principal import Principal
from app.core.security import generate_temporary_password, hash_password_off_loop
from app.models import Client, User
from app.tenancy.errors import AlreadyAContact, ContactNotFound, EmailTaken
from app.tenancy.repository import UserRepository
from app.tenancy.schemas import UserOut, UserUpdate


class ContactService:
    def __init__(self, session: AsyncSession, principal: Principal, settings: Settings) -> None:
        self.session = session
        self.principal = principal
        self.settings = settings
        self.users = UserRepository(session, principal)
        self.auth = AuthRepository(session)

    async def invite(
        self, client: Client, *, email: str, full_name: str
    ) -> tuple[User, str | None]:
        """The contact, and their temporary password when the account is new (None when an
        existing contact of the tenant was given this company too: their password stays)."""
        email = email.strip().lower()
        existing = await self.users.by_email(email)
        if existing is not None:
            if existing.role != "client":
                raise EmailTaken("This email belongs to one of your staff.")
            if await self.users.is_member(existing, client.id):
                raise AlreadyAContact()
            self.users.add_membership(existing, client.id)
            await self.session.flush()
            self._record("user.invited", existing, client.id, {"added_company": True})
            return existing, None
        temporary = generate_temporary_password()
        user = User(
            tenant_id=self.principal.tenant_id,
            client_id=client.id,
            email=email,
            full_name=full_name,
            role="client",
            password_hash=await hash_password_off_loop(temporary),
            must_change_password=True,
        )
        self.users.add(user)
        await self.session.flush()
        self.users.add_membership(user, client.id)
        await self.session.flush()
        await PasswordResetService(self.session, self.settings).send_invitation(user)
        self._record("user.invited", user, client.id)
        return user, temporary

    async def contact(self, client: Client, user_id: uuid.UUID) -> User:
        user = await self.users.contact_of(client.id, user_id, for_update=True)
        if user is None:
            raise ContactNotFound()
        return user

    async def reset_password(self, client: Client, user: User) -> str:
        """A new temporary password (the caller shows it once); every session ends."""
        temporary = generate_temporary_password()
        user.password_hash = await hash_password_off_loop(temporary)
        user.must_change_password = True
        user.token_version += 1
        await self._end_sessions(user, "password_reset_by_staff")
        await self.session.flush()
        self._record("user.password_reset", user, client.id, {"by": "staff"})
        return temporary

    async def update(self, client: Client, user: User, data: UserUpdate) -> User:
        changes = data.model_dump(exclude_unset=True)
        before = {"full_name": user.full_name, "active": user.is_active}
        if changes.get("full_name") is not None and changes["full_name"] != user.full_name:
            user.full_name = changes["full_name"]
        active = changes.get("active")
        if active is False and user.is_active:
            user.is_active = False
            await self._end_sessions(user, "deactivated")
        elif active is True and not user.is_active:
            user.is_active = True
        await self.session.flush()
        details: dict[str, Any] = {"before": before}
        if user.full_name != before["full_name"]:
            self._record("user.updated", user, client.id, details)
        if user.is_active != before["active"]:
            type_ = "user.reactivated" if user.is_active else "user.deactivated"
            self._record(type_, user, client.id, details)
        return user

    async def _end_sessions(self, user: User, reason: str) -> None:
        now = utcnow()
        await self.auth.end_sessions(user.id, now, reason)
        await self.auth.spend_reset_tokens(user.id, now)

    def _record(
        self,
        type_: str,
        user: User,
        client_id: uuid.UUID,
        details: dict[str, Any] | None = None,
    ) -> None:
        shown = UserOut.model_validate(user).model_copy(update={"client_id": client_id})
        record_event(
            self.session,
            tenant_id=self.principal.tenant_id,
            client_id=client_id,
            type=type_,
            subject_type="user",
            subject_id=user.id,
            data=shown.model_dump(mode="json"),
            details=details,
        )
