"""How the parts plug into each other, in one place: every entry point (the app, the command
line, the demo) builds its hooks and its payment gateway here."""

from __future__ import annotations

from app.autopay import hooks as autopay_hooks
from app.core.config import Settings
from app.core.hooks import Hooks
from app.gateways.base import PaymentGateway
from app.gateways.factory import gateway_from_settings


def build_hooks() -> Hooks:
    hooks = Hooks()
    autopay_hooks.register(hooks)
    return hooks


def build_gateway(settings: Settings) -> PaymentGateway:
    """The configured payment gateway (`BILLING_PAYMENT_GATEWAY`), rate-limited when
    `BILLING_GATEWAY_RATE_LIMIT_PER_SECOND` is set (see `app.gateways.factory`)."""
    return gateway_from_settings(settings)
