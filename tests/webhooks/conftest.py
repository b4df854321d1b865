"""Webhook fixtures: the app with private (loopback) targets allowed, a frozen clock, a real
receiver on loopback, and the reference library verifying on the service's clock."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from httpx import AsyncClient

from app.core.clock import FrozenClock
from app.core.config import Settings
from tests.factories import Factory
from tests.webhooks.helpers import Hooks, use_service_clock_in_reference_library
from tests.webhooks.receiver import Receiver, running_receiver

START = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[FrozenClock]:
    use_service_clock_in_reference_library(monkeypatch)
    with FrozenClock(START) as frozen:
        yield frozen


@pytest.fixture
def webhook_settings(app: Any, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The app's settings with loopback receivers allowed (as in development) and a short
    timeout, so a slow receiver is slow in a fraction of a second."""
    settings: Settings = app.state.settings
    monkeypatch.setattr(settings, "webhooks_allow_private_urls", True)
    monkeypatch.setattr(settings, "webhooks_timeout_seconds", 0.5)
    return settings


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as running:
        yield running


@pytest.fixture
async def hooks(
    clock: FrozenClock,
    factory: Factory,
    client: AsyncClient,
    webhook_settings: Settings,
    app: Any,
) -> Hooks:
    tenant = await factory.tenant()
    staff = await factory.staff(tenant)
    return Hooks(client, factory, staff.user, webhook_settings, app.state.sessionmaker)
