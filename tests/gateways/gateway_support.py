"""Helpers shared by the gateway tests; outside conftest.py so test modules can import them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from stripe_sim import SIM_API_KEY

from app.gateways import AttachedMethod, Charge, GatewaySettings, PaymentGateway

NOW = 1_767_225_600  # 2026-01-01T00:00:00Z, the stripe gateway's frozen webhook clock
STRIPE_WEBHOOK_SECRET = "whsec_simulator"
FAKE_WEBHOOK_SECRET = "whsec_contract"


@dataclass
class Harness:
    name: str  # the registry's name for the gateway
    kind: str  # which harness, e.g. "fake (memory)"
    gateway: PaymentGateway
    sign_webhook: Callable[[bytes], dict[str, str]]
    count_charges: Callable[[], int]  # charges that moved money, as the gateway's books say
    count_refunds: Callable[[], int]

    async def customer(self) -> str:
        return await self.gateway.create_customer(
            name="Acme MSP", email="billing@acme.test", metadata={"tenant": "t-1"}
        )

    async def method(self, token: str = "tok_visa") -> tuple[str, AttachedMethod]:  # noqa: S107
        customer = await self.customer()
        return customer, await self.gateway.attach_method(token=token, customer_reference=customer)


def stripe_settings(**overrides: Any) -> GatewaySettings:
    base = GatewaySettings(
        stripe_api_key=SIM_API_KEY,
        stripe_webhook_secret=STRIPE_WEBHOOK_SECRET,
        stripe_api_base="https://stripe.test",
    )
    return replace(base, **overrides)


async def charge_once(gateway: PaymentGateway, method: str, key: str) -> Charge:
    """A plain USD charge for `cus_fake_1` (what the fake's checks need) under `key`."""
    return await gateway.charge(
        amount=100,
        currency="USD",
        method_reference=method,
        customer_reference="cus_fake_1",
        idempotency_key=key,
    )
