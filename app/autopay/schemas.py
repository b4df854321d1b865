"""Bodies of the AutoPay endpoints: ordered rules, and the v1 fields that read and write the
first of them."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from app.consents.schemas import ConsentIn
from app.core.money import MAX_AMOUNT
from app.core.schemas import StrictBody

RunOn = Literal["days_before_due", "days_after_issue", "day_of_month"]
MAX_RULES = 20


class RunDate(StrictBody):
    """When a rule pays: `days` before the due date, `days` after the issue date, or on day
    `days` of the month (1-31; the month's last day when it is shorter). Never in the past."""

    on: RunOn = "days_before_due"
    days: int = Field(default=0, ge=0, le=60)

    @model_validator(mode="after")
    def _days_fit(self) -> RunDate:
        if self.on == "day_of_month" and not 1 <= self.days <= 31:
            raise ValueError("day_of_month takes a day from 1 to 31")
        return self


def _unique(value: list[uuid.UUID]) -> list[uuid.UUID]:
    return list(dict.fromkeys(value))


class AutopayRuleIn(StrictBody):
    enabled: bool = True
    payment_method_id: uuid.UUID
    service_category_ids: list[uuid.UUID] = Field(min_length=1, max_length=100)
    run: RunDate = Field(default_factory=RunDate)
    max_invoice_total: int | None = Field(
        default=None,
        gt=0,
        le=MAX_AMOUNT,
        description="Skip invoices whose total is more than this (a later rule may pay them).",
    )

    _unique_categories = field_validator("service_category_ids")(_unique)


class AutopayIn(StrictBody):
    """Either `rules` (the whole ordered list) or the v1 fields (which write the first rule and
    keep the others); not both."""

    enabled: bool
    rules: list[AutopayRuleIn] | None = Field(default=None, max_length=MAX_RULES)
    payment_method_id: uuid.UUID | None = None
    service_category_ids: list[uuid.UUID] | None = Field(default=None, max_length=100)
    days_before_due: int | None = Field(default=None, ge=0, le=60)
    locked: bool | None = Field(
        default=None, description="Staff only: while true, the client cannot change AutoPay."
    )
    consent: ConsentIn | None = Field(
        default=None, description="Needed to turn AutoPay on (see GET /consent-texts/autopay)."
    )

    _unique_categories = field_validator("service_category_ids")(
        lambda value: None if value is None else _unique(value)
    )

    @property
    def uses_v1_fields(self) -> bool:
        return bool(
            {"payment_method_id", "service_category_ids", "days_before_due"} & self.model_fields_set
        )

    @model_validator(mode="after")
    def _one_shape(self) -> AutopayIn:
        if self.rules is not None and self.uses_v1_fields:
            raise ValueError(
                "send either rules or payment_method_id/service_category_ids/days_before_due"
            )
        return self


class AutopayRuleOut(BaseModel):
    id: uuid.UUID
    position: int
    enabled: bool
    payment_method_id: uuid.UUID
    service_category_ids: list[uuid.UUID]
    run: RunDate
    max_invoice_total: int | None


class AutopayOut(BaseModel):
    client_id: uuid.UUID
    enabled: bool
    locked: bool
    rules: list[AutopayRuleOut]
    # v1: the first rule's.
    payment_method_id: uuid.UUID | None
    service_category_ids: list[uuid.UUID]
    days_before_due: int
    updated_at: datetime | None


PreviewState = Literal[
    "scheduled",
    "processing",
    "paid",
    "failed",
    "canceled",
    "not_covered",
    "over_cap",
    "disputed",
    "method_expired",
    "off",
    "locked",
    "not_scheduled",
]


class AutopayPreviewPayment(BaseModel):
    """One payment AutoPay makes (or made) for the invoice."""

    scheduled_payment_id: uuid.UUID | None
    rule_id: uuid.UUID | None
    amount: int
    scheduled_for: date
    payment_method_id: uuid.UUID
    status: str


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
    payments: list[AutopayPreviewPayment] = Field(
        default_factory=list, description="Every AutoPay payment for the invoice, one per rule."
    )


class AutopayPreview(BaseModel):
    enabled: bool
    items: list[AutopayPreviewItem]
