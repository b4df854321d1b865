"""Fixtures for the gateway tests.

`harness` runs each contract test once per harness of every gateway the registry knows
(`available_gateways()`, plugins included), each gateway built through the registry like the app
builds it. A registered gateway without an entry in `CONTRACT_HARNESSES` fails every contract
test, so a new gateway is covered the day it is registered.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import pytest
from gateway_support import (
    FAKE_WEBHOOK_SECRET,
    NOW,
    STRIPE_WEBHOOK_SECRET,
    Harness,
    stripe_settings,
)
from stripe_sim import StripeSimulator

from app.gateways import GatewaySettings, available_gateways, create_gateway
from app.gateways.fake import FakeGateway, sign_fake_webhook
from app.gateways.stripe import StripeGateway, sign_stripe_webhook

HarnessFactory = Callable[[str, Path], AbstractAsyncContextManager[Harness]]


@asynccontextmanager
async def _fake_in_memory(kind: str, tmp_path: Path) -> AsyncIterator[Harness]:
    async with _fake(kind, None) as harness:
        yield harness


@asynccontextmanager
async def _fake_on_a_ledger_file(kind: str, tmp_path: Path) -> AsyncIterator[Harness]:
    async with _fake(kind, str(tmp_path / "ledger.sqlite3")) as harness:
        yield harness


@asynccontextmanager
async def _fake(kind: str, ledger: str | None) -> AsyncIterator[Harness]:
    settings = GatewaySettings(fake_ledger_path=ledger, fake_webhook_secret=FAKE_WEBHOOK_SECRET)
    fake = create_gateway("fake", settings)
    assert isinstance(fake, FakeGateway)
    yield Harness(
        "fake",
        kind,
        fake,
        lambda p: {"Fake-Signature": sign_fake_webhook(p, FAKE_WEBHOOK_SECRET)},
        lambda: len(fake.charges),
        lambda: len(fake.refunds),
    )
    await fake.aclose()


@asynccontextmanager
async def _stripe_simulator(kind: str, tmp_path: Path) -> AsyncIterator[Harness]:
    with StripeSimulator() as sim:
        settings = stripe_settings(stripe_api_base=sim.api_base)
        gateway = create_gateway("stripe", settings, clock=lambda: float(NOW))
        yield Harness(
            "stripe",
            kind,
            gateway,
            lambda p: {"Stripe-Signature": sign_stripe_webhook(p, STRIPE_WEBHOOK_SECRET, NOW)},
            lambda: len(sim.money_moving_intents),
            lambda: len(sim.refunds),
        )
        await gateway.aclose()


# registry name -> {harness label: factory}. Every name `available_gateways()` returns needs one.
CONTRACT_HARNESSES: Mapping[str, Mapping[str, HarnessFactory]] = {
    "fake": {"memory": _fake_in_memory, "ledger file": _fake_on_a_ledger_file},
    "stripe": {"simulator": _stripe_simulator},
}


def contract_cases() -> list[object]:
    """One case per (registered gateway, harness); a registered name without any is kept as a
    case of its own whose setup fails, so the gap shows as red rather than as nothing."""
    cases: list[object] = []
    for name in available_gateways():
        harnesses = CONTRACT_HARNESSES.get(name, {})
        cases.extend(pytest.param((name, label), id=f"{name} ({label})") for label in harnesses)
        if not harnesses:
            cases.append(pytest.param((name, None), id=f"{name} (no harness)"))
    return cases


@pytest.fixture(params=contract_cases())
async def harness(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Harness]:
    name, label = request.param
    if label is None:
        pytest.fail(
            f"gateway {name!r} is registered but has no contract harness: add one to "
            "CONTRACT_HARNESSES in tests/gateways/conftest.py",
            pytrace=False,
        )
    async with CONTRACT_HARNESSES[name][label](f"{name} ({label})", tmp_path) as result:
        yield result


@pytest.fixture(params=["memory", "ledger"])
async def fake(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[FakeGateway]:
    ledger = str(tmp_path / "fake.sqlite3") if request.param == "ledger" else None
    gateway = FakeGateway(GatewaySettings(fake_ledger_path=ledger))
    yield gateway
    await gateway.aclose()


@pytest.fixture
def sim() -> Iterator[StripeSimulator]:
    with StripeSimulator() as running:
        yield running


@pytest.fixture
async def stripe(sim: StripeSimulator) -> AsyncIterator[StripeGateway]:
    # A short timeout: the tests that make the simulator hold an answer wait this long.
    settings = stripe_settings(stripe_api_base=sim.api_base, timeout_seconds=1.0)
    gateway = StripeGateway(settings, clock=lambda: float(NOW))
    yield gateway
    await gateway.aclose()
