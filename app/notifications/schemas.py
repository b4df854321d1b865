"""Bodies of GET/PATCH /me/notifications."""

from __future__ import annotations

from pydantic import BaseModel, Field

from app.core.schemas import StrictBody
from app.notifications.kinds import REQUIRED_KINDS


class NotificationPreferences(BaseModel):
    """Which optional kinds of email the signed-in person receives (true: sent)."""

    invoice_issued: bool
    payment_receipt: bool
    autopay_upcoming: bool
    scheduled_payment_changed: bool
    card_expiring: bool
    ticket_updated: bool
    autopay_summary: bool = Field(description="Staff only: what each AutoPay run did.")
    always_sent: list[str] = Field(
        default_factory=lambda: sorted(REQUIRED_KINDS),
        description="Kinds that cannot be turned off: account mail and declined payments.",
    )


class NotificationPreferencesChange(StrictBody):
    """The kinds to turn on (true) or off (false); kinds left out stay as they are."""

    invoice_issued: bool = True
    payment_receipt: bool = True
    autopay_upcoming: bool = True
    scheduled_payment_changed: bool = True
    card_expiring: bool = True
    ticket_updated: bool = True
    autopay_summary: bool = True
