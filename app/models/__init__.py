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
from app.models.consents import ConsentRecord, ConsentText
from app.models.events import Event
from app.models.notifications import EmailMessage, NotificationOptOut
from app.models.scheduling import (
    AutopayRule,
    AutopayRuleCategory,
    AutopaySetting,
    ScheduledPayment,
)
from app.models.tenancy import ApiKey, Client, ServiceCategory, Tenant, TenantLogo, User
from app.models.tickets import Ticket, TicketUpdate
from app.models.webhooks import WebhookDelivery, WebhookEndpoint

__all__ = [
    "ApiKey",
    "AutopayRule",
    "AutopayRuleCategory",
    "AutopaySetting",
    "Base",
    "Client",
    "ConsentRecord",
    "ConsentText",
    "EmailMessage",
    "Event",
    "IdempotencyRecord",
    "Invoice",
    "InvoiceLine",
    "LoginFailure",
    "NotificationOptOut",
    "Payment",
    "PaymentAllocation",
    "PaymentMethod",
    "PlatformFee",
    "RefreshToken",
    "Refund",
    "ScheduledPayment",
    "ServiceCategory",
    "Tenant",
    "TenantLogo",
    "Ticket",
    "TicketUpdate",
    "User",
    "WebhookDelivery",
    "WebhookEndpoint",
]
