"""The signed-in person's email preferences: GET and PATCH /me/notifications."""

from __future__ import annotations

from fastapi import APIRouter

from app.auth.dependencies import UserDep
from app.core.deps import SessionDep
from app.core.errors import problem_responses
from app.notifications import service
from app.notifications.schemas import NotificationPreferences, NotificationPreferencesChange

router = APIRouter(tags=["notifications"])


@router.get(
    "/me/notifications",
    operation_id="getNotificationPreferences",
    response_model=NotificationPreferences,
    responses=problem_responses(401, 403),
)
async def get_preferences(user: UserDep, session: SessionDep) -> NotificationPreferences:
    """Which optional kinds of email the signed-in person receives."""
    return await service.preferences(session, user)


@router.patch(
    "/me/notifications",
    operation_id="updateNotificationPreferences",
    response_model=NotificationPreferences,
    responses=problem_responses(401, 403, 422),
)
async def update_preferences(
    body: NotificationPreferencesChange, user: UserDep, session: SessionDep
) -> NotificationPreferences:
    """Turn optional kinds of email on or off; kinds left out stay as they are."""
    return await service.change_preferences(session, user, body)
