"""Bodies of the invoice endpoints. Amounts the server computes are never read from input."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator, model_validator

from app.core.money import MAX_AMOUNT, MAX_QUANTITY, MINOR_UNITS
from app.core.schemas import StrictBody

InvoiceStatus = Literal["draft", "open", "paid", "void"]


def _currency(value: str) -> str:
    code = value.strip().upper()
    if code not in MINOR_UNITS:
        raise ValueError(f"{value!r} is not a supported ISO 4217 currency code")
    return code


def _label(value: str | None) -> str | None:
    return (value.strip() or None) if value is not None else None


class InvoiceLineIn(StrictBody):
    description: str = Field(min_length=1, max_length=500)
    service_category_id: uuid.UUID
    quantity: int = Field(ge=1, le=MAX_QUANTITY)
    unit_amount: int = Field(ge=0, le=MAX_AMOUNT, description="Minor units.")
    tax_amount: int = Field(
        default=0,
        ge=0,
        le=MAX_AMOUNT,
        description="Tax on this line in minor units, as the PSA computed it (there is no tax "
        "engine here); added to the invoice's total.",
    )
    tax_label: str | None = Field(
        default=None,
        max_length=100,
        pattern=r"^[^\x00-\x1f\x7f]*$",
        description="What the tax is, e.g. `VAT 20%`: the invoice sums its tax by label.",
        examples=["VAT 20%"],
    )

    _tax_label = field_validator("tax_label")(_label)

    @property
    def amount(self) -> int:
        return self.quantity * self.unit_amount


class InvoiceUpsert(StrictBody):
    """A draft's content, as a PSA sends it under its own id
    (`PUT /invoices/by-external-id/{external_id}`)."""

    client_id: uuid.UUID
    currency: str = Field(min_length=3, max_length=3, examples=["USD"])
    due_date: date
    lines: list[InvoiceLineIn] = Field(min_length=1, max_length=500)
    memo: str | None = Field(default=None, max_length=5000)

    _currency = field_validator("currency")(_currency)

    @property
    def subtotal(self) -> int:
        return sum(line.amount for line in self.lines)

    @property
    def tax_total(self) -> int:
        return sum(line.tax_amount for line in self.lines)

    @model_validator(mode="after")
    def _total_is_payable(self) -> InvoiceUpsert:
        # A total beyond MAX_AMOUNT could never be paid in one payment, and is a typo.
        if self.subtotal + self.tax_total > MAX_AMOUNT:
            raise ValueError(f"the invoice's total may be at most {MAX_AMOUNT} minor units")
        return self


class InvoiceCreate(InvoiceUpsert):
    external_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="The PSA's id: pushing the same one again with the same content returns "
        "the same invoice (200); with other content it is 409 (replace a draft with PUT "
        "/invoices/by-external-id/{external_id}).",
    )


class InvoiceLineOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    description: str
    service_category_id: uuid.UUID
    quantity: int
    unit_amount: int
    amount: int = Field(description="quantity * unit_amount, before tax.")
    tax_amount: int
    tax_label: str | None


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
    subtotal: int = Field(description="The lines' amounts, before tax.")
    tax_total: int = Field(description="The lines' tax.")
    total: int = Field(description="What is owed: subtotal + tax_total.")
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

    @classmethod
    def of(cls, invoice: Any, today: date) -> InvoiceOut:
        out = cls.model_validate(invoice)
        out.overdue = out.status == "open" and out.due_date < today
        return out


class InvoiceDetail(InvoiceOut):
    lines: list[InvoiceLineOut]
    payments: list[InvoicePaymentOut]
