"""Every ORM model, imported here so `Base.metadata` is complete for alembic and tests."""

from app.models.auth import (
    AuthSession,
    PasswordResetRequest,
    PasswordResetToken,
    RefreshToken,
)
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
from app.models.security import RecoveryCode, ThrottleCounter, TotpCredential
from app.models.tenancy import (
    ApiKey,
    Client,
    Membership,
    ServiceCategory,
    Tenant,
    TenantLogo,
    User,
)
from app.models.tickets import Ticket, TicketUpdate
from app.models.webhooks import WebhookDelivery, WebhookEndpoint

__all__ = [
    "ApiKey",
    "AuthSession",
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
    "Membership",
    "NotificationOptOut",
    "PasswordResetRequest",
    "PasswordResetToken",
    "Payment",
    "PaymentAllocation",
    "PaymentMethod",
    "PlatformFee",
    "RecoveryCode",
    "RefreshToken",
    "Refund",
    "ScheduledPayment",
    "ServiceCategory",
    "Tenant",
    "TenantLogo",
    "ThrottleCounter",
    "Ticket",
    "TicketUpdate",
    "TotpCredential",
    "User",
    "WebhookDelivery",
    "WebhookEndpoint",
]
