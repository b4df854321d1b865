"""Fixtures for AutoPay, scheduled payments and the runner: a frozen clock, the app's fake
gateway, a runner over the app's database with the documented settings, and a scene."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from httpx import AsyncClient

from app.core.clock import FrozenClock
from app.core.config import Settings
from app.gateways.base import PaymentGateway
from app.gateways.fake import FakeGateway
from app.scheduler.runner import PaymentRunner
from tests.conftest import make_settings
from tests.factories import Factory
from tests.scheduling.helpers import START, Scene, build_scene
from tests.scheduling.processes import Spawner


@pytest.fixture
def clock() -> Iterator[FrozenClock]:
    with FrozenClock(START) as frozen:
        yield frozen


@pytest.fixture
def gateway(app: Any) -> FakeGateway:
    """The app's in-process gateway (emptied after each test by the root conftest)."""
    fake = app.state.gateway
    assert isinstance(fake, FakeGateway)
    assert fake.latency_seconds == 0, "a test left the fake gateway slow"
    return fake


@pytest.fixture
def runner_settings(database_url: str, data_dir: Path) -> Settings:
    return make_settings(
        database_url,
        data_dir,
        scheduler_retry_days=[1, 3, 5],
        pending_reconcile_after_seconds=60,
        scheduler_lease_seconds=300,
        scheduler_batch_size=50,
        scheduler_concurrency=8,
    )


@pytest.fixture
def runner(app: Any, gateway: FakeGateway, runner_settings: Settings) -> PaymentRunner:
    return PaymentRunner(app.state.sessionmaker, gateway, runner_settings)


@pytest.fixture
async def scene(clock: FrozenClock, factory: Factory, client: AsyncClient) -> Scene:
    return await build_scene(factory, client)


@pytest.fixture
def runner_with(
    app: Any, gateway: FakeGateway, runner_settings: Settings
) -> Callable[..., PaymentRunner]:
    """`runner_with(scheduler_retry_days=[2])`, `runner_with(via=DyingGateway(...))`: another
    runner over the app's database, with other settings or another gateway in front."""

    def build(*, via: PaymentGateway | None = None, **settings: Any) -> PaymentRunner:
        return PaymentRunner(
            app.state.sessionmaker, via or gateway, runner_settings.model_copy(update=settings)
        )

    return build


@pytest.fixture
async def spawn() -> AsyncIterator[Spawner]:
    """Starts `billing-portal` processes; whatever still runs when the test ends is killed."""
    spawner = Spawner()
    try:
        yield spawner
    finally:
        await spawner.stop_all()
