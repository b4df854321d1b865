"""A person's notification preferences: the optional kinds they turned off."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from app.models import User
from app.notifications import repository
from app.notifications.kinds import OPTIONAL_KINDS
from app.notifications.schemas import NotificationPreferences, NotificationPreferencesChange


async def preferences(session: AsyncSession, user: User) -> NotificationPreferences:
    off = await repository.opted_out_kinds(session, user.id)
    return NotificationPreferences.model_validate({k: k not in off for k in OPTIONAL_KINDS})


async def change_preferences(
    session: AsyncSession, user: User, change: NotificationPreferencesChange
) -> NotificationPreferences:
    given = {kind: getattr(change, kind) for kind in change.model_fields_set}
    await repository.set_opted_out(
        session,
        user.id,
        off=[kind for kind, wanted in given.items() if not wanted],
        on=[kind for kind, wanted in given.items() if wanted],
    )
    return await preferences(session, user)
