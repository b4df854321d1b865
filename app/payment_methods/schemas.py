"""Bodies of the payment-method endpoints. Only gateway tokens come in; never card data."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from app.consents.schemas import ConsentIn
from app.core.schemas import StrictBody

PaymentMethodType = Literal["card", "ach"]


class PaymentMethodCreate(StrictBody):
    type: PaymentMethodType
    token: str = Field(
        min_length=1,
        max_length=200,
        description="The token from the gateway's client-side tokenization (e.g. `tok_visa`).",
    )
    nickname: str | None = Field(default=None, max_length=100)
    make_default: bool = False
    consent: ConsentIn | None = Field(
        default=None,
        description="Needed for a bank account (`ach`): the client's acceptance of the current "
        "GET /consent-texts/ach_debit.",
    )
    client_id: uuid.UUID | None = Field(
        default=None,
        description="Required for staff: the client this is for. Client users leave it out "
        "(it is their own).",
    )


class PaymentMethodUpdate(StrictBody):
    nickname: str | None = Field(default=None, max_length=100)
    is_default: bool | None = Field(
        default=None,
        description="true makes this the default; false leaves the client without one.",
    )


class PaymentMethodOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    client_id: uuid.UUID
    type: PaymentMethodType
    brand: str
    last4: str
    exp_month: int | None
    exp_year: int | None
    is_default: bool
    nickname: str | None
    created_at: datetime


class PlatformFeeOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    client_id: uuid.UUID
    payment_method_id: uuid.UUID
    kind: str
    amount: int
    currency: str
    created_at: datetime


class PlatformFeePage(BaseModel):
    items: list[PlatformFeeOut]
    next_cursor: str | None
    total: int = Field(description="Sum of every fee matching the filters, in minor units.")
    currency: str
    count: int
