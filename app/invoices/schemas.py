"""Bodies of the invoice endpoints. Amounts the server computes are never read from input."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator

from app.core.money import MAX_AMOUNT, MAX_QUANTITY, MINOR_UNITS
from app.core.schemas import StrictBody

InvoiceStatus = Literal["draft", "open", "paid", "void"]


def _currency(value: str) -> str:
    code = value.strip().upper()
    if code not in MINOR_UNITS:
        raise ValueError(f"{value!r} is not a supported ISO 4217 currency code")
    return code


class InvoiceLineIn(StrictBody):
    description: str = Field(min_length=1, max_length=500)
    service_category_id: uuid.UUID
    quantity: int = Field(ge=1, le=MAX_QUANTITY)
    unit_amount: int = Field(ge=0, le=MAX_AMOUNT, description="Minor units.")


class InvoiceCreate(StrictBody):
    client_id: uuid.UUID
    currency: str = Field(min_length=3, max_length=3, examples=["USD"])
    due_date: date
    lines: list[InvoiceLineIn] = Field(min_length=1, max_length=500)
    external_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="The PSA's id: pushing the same one again returns the same invoice.",
    )
    memo: str | None = Field(default=None, max_length=5000)

    _currency = field_validator("currency")(_currency)


class InvoiceLineOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    description: str
    service_category_id: uuid.UUID
    quantity: int
    unit_amount: int
    amount: int


class InvoicePaymentOut(BaseModel):
    payment_id: uuid.UUID
    amount: int
    paid_at: datetime | None
    amount_refunded: int


class InvoiceOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    client_id: uuid.UUID
    number: str | None
    status: InvoiceStatus
    issued_on: date | None
    due_date: date
    currency: str
    total: int
    amount_paid: int
    balance: int
    amount_pending: int = Field(
        validation_alias=AliasChoices("amount_pending", "amount_reserved"),
        description="Held by payments still being processed.",
    )
    external_id: str | None
    memo: str | None
    overdue: bool = False
    created_at: datetime


class InvoiceDetail(InvoiceOut):
    lines: list[InvoiceLineOut]
    payments: list[InvoicePaymentOut]
