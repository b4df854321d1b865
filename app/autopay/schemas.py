"""Bodies of the AutoPay endpoints."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field, field_validator

from app.core.schemas import StrictBody


class AutopayIn(StrictBody):
    enabled: bool
    payment_method_id: uuid.UUID | None = None
    service_category_ids: list[uuid.UUID] = Field(default_factory=list, max_length=100)
    days_before_due: int = Field(default=0, ge=0, le=60)

    @field_validator("service_category_ids")
    @classmethod
    def _unique(cls, value: list[uuid.UUID]) -> list[uuid.UUID]:
        return list(dict.fromkeys(value))


class AutopayOut(BaseModel):
    client_id: uuid.UUID
    enabled: bool
    payment_method_id: uuid.UUID | None
    service_category_ids: list[uuid.UUID]
    days_before_due: int
    updated_at: datetime | None


PreviewState = Literal[
    "scheduled", "processing", "paid", "failed", "canceled", "not_covered", "off", "not_scheduled"
]


class AutopayPreviewItem(BaseModel):
    invoice_id: uuid.UUID
    invoice_number: str | None
    due_date: date
    balance: int
    currency: str
    covered_amount: int = Field(description="What the invoice's covered lines add up to.")
    will_pay: bool
    state: PreviewState
    reason: str = Field(description="Why AutoPay will or will not pay this invoice, in words.")
    scheduled_payment_id: uuid.UUID | None = None
    amount: int | None = None
    scheduled_for: date | None = None
    payment_method_id: uuid.UUID | None = None


class AutopayPreview(BaseModel):
    enabled: bool
    items: list[AutopayPreviewItem]
