"""The gateway registry: built-ins, entry-point plugins, and errors for unknown names."""

from __future__ import annotations

import logging
from importlib.metadata import EntryPoint
from typing import Any

import pytest
from gateway_support import stripe_settings

from app.gateways import (
    GatewayConfigurationError,
    GatewaySettings,
    UnknownGatewayError,
    available_gateways,
    create_gateway,
    registry,
)
from app.gateways.fake import FakeGateway
from app.gateways.stripe import StripeGateway

GROUP = "billing_portal.gateways"


def _plugins(monkeypatch: pytest.MonkeyPatch, *entries: EntryPoint) -> list[str]:
    """Pretend these entry points are installed; returns the groups that were asked for."""
    asked: list[str] = []

    def fake_entry_points(*, group: str) -> list[EntryPoint]:
        asked.append(group)
        return [entry for entry in entries if entry.group == group]

    monkeypatch.setattr(registry, "entry_points", fake_entry_points)
    return asked


class AcmeGateway(FakeGateway):
    name = "acme"

    def __init__(self, settings: GatewaySettings, **options: Any) -> None:
        super().__init__(settings)
        self.options = options


def not_a_gateway(settings: GatewaySettings) -> object:
    return object()


def test_builtins_are_listed(monkeypatch: pytest.MonkeyPatch) -> None:
    _plugins(monkeypatch)
    assert available_gateways() == ["fake", "stripe"]


async def test_builtins_are_built() -> None:
    fake = create_gateway("fake", GatewaySettings(fake_latency_seconds=0.5))
    assert isinstance(fake, FakeGateway)
    assert fake.latency_seconds == 0.5
    stripe = create_gateway(" Stripe ", stripe_settings())
    assert isinstance(stripe, StripeGateway)
    await stripe.aclose()


def test_unknown_name_lists_what_exists(monkeypatch: pytest.MonkeyPatch) -> None:
    _plugins(monkeypatch)
    with pytest.raises(UnknownGatewayError, match=r"'paypal'.*'fake', 'stripe'") as caught:
        create_gateway("paypal", GatewaySettings())
    assert isinstance(caught.value, ValueError)


def test_entry_point_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    entry = EntryPoint(name="acme", value=f"{__name__}:AcmeGateway", group=GROUP)
    asked = _plugins(monkeypatch, entry)
    assert available_gateways() == ["acme", "fake", "stripe"]
    gateway = create_gateway("acme", GatewaySettings(), region="eu")
    assert isinstance(gateway, AcmeGateway)
    assert gateway.options == {"region": "eu"}
    assert set(asked) == {GROUP}


def test_entry_point_loading_a_real_module(monkeypatch: pytest.MonkeyPatch) -> None:
    _plugins(
        monkeypatch, EntryPoint(name="local", value="app.gateways.fake:FakeGateway", group=GROUP)
    )
    assert isinstance(create_gateway("local", GatewaySettings()), FakeGateway)


def test_entry_point_cannot_replace_a_builtin(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    _plugins(monkeypatch, EntryPoint(name="stripe", value=f"{__name__}:AcmeGateway", group=GROUP))
    with caplog.at_level(logging.WARNING, logger=registry.__name__):
        assert available_gateways() == ["fake", "stripe"]
    assert "built-in names cannot be replaced" in caplog.text
    with pytest.raises(GatewayConfigurationError, match="stripe_api_key"):
        create_gateway("stripe", GatewaySettings())


def test_entry_point_returning_something_else(monkeypatch: pytest.MonkeyPatch) -> None:
    _plugins(monkeypatch, EntryPoint(name="odd", value=f"{__name__}:not_a_gateway", group=GROUP))
    with pytest.raises(TypeError, match="odd"):
        create_gateway("odd", GatewaySettings())
