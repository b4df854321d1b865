"""Bodies of the scheduled-payment endpoints."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from app.core.money import MAX_AMOUNT
from app.core.schemas import StrictBody

ScheduledStatus = Literal["scheduled", "processing", "on_hold", "succeeded", "failed", "canceled"]
STAFF_CLIENT_ID = (
    "Required for staff: the client this is for. Client users leave it out (it is their own)."
)


class ScheduledPaymentCreate(StrictBody):
    invoice_id: uuid.UUID
    payment_method_id: uuid.UUID
    amount: int = Field(gt=0, le=MAX_AMOUNT, description="Minor units.")
    scheduled_for: date = Field(description="A date in the MSP's time zone, today or later.")
    client_id: uuid.UUID | None = Field(default=None, description=STAFF_CLIENT_ID)


class ScheduledPaymentUpdate(StrictBody):
    scheduled_for: date | None = None
    amount: int | None = Field(default=None, gt=0, le=MAX_AMOUNT)
    payment_method_id: uuid.UUID | None = Field(
        default=None,
        description="Another of the client's methods; one waiting for a retry after a failed "
        "attempt is then tried at the runner's next pass.",
    )


class RetryNow(StrictBody):
    payment_method_id: uuid.UUID | None = Field(
        default=None, description="Try with this method instead (it stays the payment's)."
    )


class ScheduledPaymentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    client_id: uuid.UUID
    invoice_id: uuid.UUID
    payment_method_id: uuid.UUID
    amount: int
    currency: str
    scheduled_for: date
    status: ScheduledStatus
    origin: Literal["autopay", "manual"]
    attempts: int = Field(description="Automatic attempts (the runner's).")
    manual_attempts: int = Field(description="Manual attempts (retry now), counted apart.")
    hold_reason: Literal["disputed"] | None = Field(
        description="Why it waits on hold: `disputed` while a billing dispute is open."
    )
    rule_id: uuid.UUID | None = Field(description="The AutoPay rule that made it.")
    next_attempt_at: datetime | None
    failure_reason: str | None
    failure_code: str | None
    cancel_reason: str | None
    last_payment_id: uuid.UUID | None
    created_at: datetime
    updated_at: datetime
