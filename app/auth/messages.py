"""Where an account message (a password reset link, an invitation's sign-in link) is handed
over for sending: the one place the email outbox plugs in.

`enqueue_account_message` runs inside the transaction that made the token, so a rolled-back
request never sends a link that does not work. The message goes into the email outbox
(app/notifications), keyed by the token's hash so the same link is never mailed twice."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from urllib.parse import quote

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.models import User
from app.notifications.enqueue import enqueue_invitation, enqueue_password_reset
from app.notifications.render import public_link

AccountMessageKind = Literal["password_reset", "invitation"]
# The page of the portal's front end that takes each kind of link.
LINK_PATHS: dict[AccountMessageKind, str] = {
    "password_reset": "/reset-password",
    "invitation": "/accept-invitation",
}


@dataclass(frozen=True, slots=True)
class AccountMessage:
    kind: AccountMessageKind
    user: User
    # The link's secret, in clear: it exists only here and in the message sent.
    token: str
    expires_at: datetime

    def link(self, settings: Settings) -> str:
        return public_link(settings, f"{LINK_PATHS[self.kind]}?token={quote(self.token)}")


async def enqueue_account_message(
    session: AsyncSession, settings: Settings, message: AccountMessage
) -> None:
    """Queue `message` for the person, in the caller's transaction."""
    enqueue = enqueue_invitation if message.kind == "invitation" else enqueue_password_reset
    await enqueue(
        session,
        settings,
        user=message.user,
        link=message.link(settings),
        expires_at=message.expires_at,
        # Names this link without keeping it: the same token never makes a second message.
        key=hashlib.sha256(message.token.encode()).hexdigest()[:32],
    )
