"""How the parts plug into each other, in one place: every entry point (the app, the command
line, the demo) builds its hooks and its payment gateway here."""

from __future__ import annotations

from app.autopay import hooks as autopay_hooks
from app.core.config import Settings
from app.core.hooks import Hooks
from app.gateways.base import GatewaySettings, PaymentGateway
from app.gateways.registry import create_gateway


def build_hooks() -> Hooks:
    hooks = Hooks()
    autopay_hooks.register(hooks)
    return hooks


def build_gateway(settings: Settings) -> PaymentGateway:
    """The configured payment gateway (`BILLING_PAYMENT_GATEWAY`)."""
    return create_gateway(settings.payment_gateway, gateway_settings(settings))


def gateway_settings(settings: Settings) -> GatewaySettings:
    return GatewaySettings(
        stripe_api_key=settings.stripe_api_key,
        stripe_webhook_secret=settings.stripe_webhook_secret,
        stripe_api_base=settings.stripe_api_base,
        timeout_seconds=settings.gateway_timeout_seconds,
        fake_latency_seconds=settings.fake_gateway_latency_seconds,
        fake_ledger_path=settings.fake_gateway_ledger_path,
    )
