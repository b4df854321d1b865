"""Fixtures for the gateway tests.

`harness` runs a test once per registered gateway kind (the fake in memory, the fake on a ledger
file, Stripe through the simulator), each built through the registry like the app builds it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from gateway_support import (
    FAKE_WEBHOOK_SECRET,
    GATEWAY_KINDS,
    NOW,
    STRIPE_WEBHOOK_SECRET,
    Harness,
    stripe_settings,
)
from stripe_sim import StripeSimulator

from app.gateways import GatewaySettings, create_gateway
from app.gateways.fake import FakeGateway, sign_fake_webhook
from app.gateways.stripe import StripeGateway, sign_stripe_webhook


@pytest.fixture(params=GATEWAY_KINDS)
async def harness(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Harness]:
    kind: str = request.param
    if kind.startswith("stripe"):
        sim = StripeSimulator()
        gateway = create_gateway(
            "stripe", stripe_settings(), transport=sim.transport, clock=lambda: float(NOW)
        )
        result = Harness(
            kind,
            gateway,
            lambda p: {"Stripe-Signature": sign_stripe_webhook(p, STRIPE_WEBHOOK_SECRET, NOW)},
            lambda: len(sim.money_moving_intents),
            lambda: len(sim.refunds),
        )
    else:
        ledger = str(tmp_path / "ledger.sqlite3") if "ledger" in kind else None
        settings = GatewaySettings(fake_ledger_path=ledger, fake_webhook_secret=FAKE_WEBHOOK_SECRET)
        fake = create_gateway("fake", settings)
        assert isinstance(fake, FakeGateway)
        result = Harness(
            kind,
            fake,
            lambda p: {"Fake-Signature": sign_fake_webhook(p, FAKE_WEBHOOK_SECRET)},
            lambda: len(fake.charges),
            lambda: len(fake.refunds),
        )
    yield result
    await result.gateway.aclose()


@pytest.fixture(params=["memory", "ledger"])
async def fake(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[FakeGateway]:
    ledger = str(tmp_path / "fake.sqlite3") if request.param == "ledger" else None
    gateway = FakeGateway(GatewaySettings(fake_ledger_path=ledger))
    yield gateway
    await gateway.aclose()


@pytest.fixture
def sim() -> StripeSimulator:
    return StripeSimulator()


@pytest.fixture
async def stripe(sim: StripeSimulator) -> AsyncIterator[StripeGateway]:
    gateway = StripeGateway(stripe_settings(), transport=sim.transport, clock=lambda: float(NOW))
    yield gateway
    await gateway.aclose()
