"""Bodies of the scheduled-payment endpoints."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from app.core.money import MAX_AMOUNT
from app.core.schemas import StrictBody

ScheduledStatus = Literal["scheduled", "processing", "succeeded", "failed", "canceled"]


class ScheduledPaymentCreate(StrictBody):
    invoice_id: uuid.UUID
    payment_method_id: uuid.UUID
    amount: int = Field(gt=0, le=MAX_AMOUNT, description="Minor units.")
    scheduled_for: date = Field(description="A date in the MSP's time zone, today or later.")


class ScheduledPaymentUpdate(StrictBody):
    scheduled_for: date | None = None
    amount: int | None = Field(default=None, gt=0, le=MAX_AMOUNT)


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
    attempts: int
    next_attempt_at: datetime | None
    failure_reason: str | None
    failure_code: str | None
    cancel_reason: str | None
    last_payment_id: uuid.UUID | None
    created_at: datetime
    updated_at: datetime
