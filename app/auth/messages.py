"""Where an account message (a password reset link, an invitation's sign-in link) is handed
over for sending: the one place the email outbox plugs in.

`enqueue_account_message` runs inside the transaction that made the token, so a rolled-back
request never sends a link that does not work. Until the outbox takes it over, it writes the
message to the log: with the link itself only in development (a developer needs it to try
the flow; anywhere else a token in a log is a leak)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from urllib.parse import quote

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.models import User

logger = logging.getLogger("billing_portal.accounts")

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
        base = settings.public_url or ""
        return f"{base}{LINK_PATHS[self.kind]}?token={quote(self.token)}"


async def enqueue_account_message(
    session: AsyncSession, settings: Settings, message: AccountMessage
) -> None:
    """Queue `message` for the person, in the caller's transaction."""
    extra = {
        "kind": message.kind,
        "user_id": str(message.user.id),
        "tenant_id": str(message.user.tenant_id),
        "expires_at": message.expires_at.isoformat(),
    }
    if settings.env == "development":
        extra["link"] = message.link(settings)
    logger.info("account message due: %s", message.kind, extra=extra)
