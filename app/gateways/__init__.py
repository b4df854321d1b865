"""Payment gateways: one contract (`PaymentGateway`), a deterministic fake and a Stripe adapter.

Build one with `create_gateway(name, GatewaySettings(...))`; see `base` for the error taxonomy
that tells a decline (final) from an unavailable gateway (outcome unknown, replay the same key).
"""

from app.gateways.base import (
    HARD_DECLINE_CODES,
    AttachedMethod,
    Charge,
    ChargeStatus,
    GatewayConfigurationError,
    GatewayDeclined,
    GatewayError,
    GatewayMethodRejected,
    GatewayNotFound,
    GatewayRateLimited,
    GatewayRequestError,
    GatewaySettings,
    GatewayUnavailable,
    PaymentGateway,
    PaymentMethodType,
    Refund,
    WebhookEvent,
    WebhookVerificationError,
)
from app.gateways.registry import UnknownGatewayError, available_gateways, create_gateway

__all__ = [
    "HARD_DECLINE_CODES",
    "AttachedMethod",
    "Charge",
    "ChargeStatus",
    "GatewayConfigurationError",
    "GatewayDeclined",
    "GatewayError",
    "GatewayMethodRejected",
    "GatewayNotFound",
    "GatewayRateLimited",
    "GatewayRequestError",
    "GatewaySettings",
    "GatewayUnavailable",
    "PaymentGateway",
    "PaymentMethodType",
    "Refund",
    "UnknownGatewayError",
    "WebhookEvent",
    "WebhookVerificationError",
    "available_gateways",
    "create_gateway",
]
