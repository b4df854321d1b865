"""Payment history and refunds."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from app.core.money import MAX_AMOUNT
from app.core.schemas import StrictBody


class PaymentMethodSummary(BaseModel):
    id: uuid.UUID
    type: Literal["card", "ach"]
    brand: str
    last4: str


class AllocationOut(BaseModel):
    invoice_id: uuid.UUID
    invoice_number: str | None
    amount: int


class RefundOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    payment_id: uuid.UUID
    amount: int
    status: Literal["pending", "succeeded", "failed"]
    failure_code: str | None
    created_at: datetime
    settled_at: datetime | None


class PaymentOut(BaseModel):
    id: uuid.UUID
    client_id: uuid.UUID
    invoice_id: uuid.UUID
    amount: int
    currency: str
    status: Literal["pending", "succeeded", "failed"]
    origin: Literal["pay_now", "scheduled"]
    scheduled_payment_id: uuid.UUID | None
    payment_method: PaymentMethodSummary
    amount_refunded: int
    failure_code: str | None
    failure_message: str | None
    created_at: datetime
    settled_at: datetime | None
    allocations: list[AllocationOut]


class PaymentDetail(PaymentOut):
    refunds: list[RefundOut]


class RefundCreate(StrictBody):
    amount: int | None = Field(
        default=None,
        gt=0,
        le=MAX_AMOUNT,
        description="Minor units; the rest of the payment when left out.",
    )


STAFF_CLIENT_ID = (
    "Required for staff: the client this is for. Client users leave it out (it is their own)."
)


class PayInvoice(StrictBody):
    payment_method_id: uuid.UUID
    amount: int | None = Field(
        default=None, gt=0, le=MAX_AMOUNT, description="Minor units; the balance when left out."
    )
    client_id: uuid.UUID | None = Field(
        default=None, description="Staff: the invoice's client (it may be left out)."
    )


class PaySeveral(StrictBody):
    payment_method_id: uuid.UUID
    invoice_ids: list[uuid.UUID] | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        description="The open invoices to pay (all of the client's open invoices when left out); "
        "they are paid oldest due date first.",
    )
    amount: int | None = Field(
        default=None,
        gt=0,
        le=MAX_AMOUNT,
        description="Minor units; what the invoices owe when left out. Less pays the oldest in "
        "full first and the last gets what is left.",
    )
    client_id: uuid.UUID | None = Field(default=None, description=STAFF_CLIENT_ID)
