"""Every ORM model, imported here so `Base.metadata` is complete for alembic and tests."""

from app.models.auth import LoginFailure, RefreshToken
from app.models.base import Base
from app.models.billing import (
    IdempotencyRecord,
    Invoice,
    InvoiceLine,
    Payment,
    PaymentAllocation,
    PaymentMethod,
    PlatformFee,
    Refund,
)
from app.models.events import Event
from app.models.tenancy import ApiKey, Client, ServiceCategory, Tenant, User

__all__ = [
    "ApiKey",
    "Base",
    "Client",
    "Event",
    "IdempotencyRecord",
    "Invoice",
    "InvoiceLine",
    "LoginFailure",
    "Payment",
    "PaymentAllocation",
    "PaymentMethod",
    "PlatformFee",
    "RefreshToken",
    "Refund",
    "ServiceCategory",
    "Tenant",
    "User",
]
