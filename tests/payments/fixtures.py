"""Fixtures shared by the money test packages (imported by their conftest.py files)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from httpx import ASGITransport, AsyncClient

from app.gateways.fake import FakeGateway
from tests.factories import Factory
from tests.payments.helpers import Billing, billing_world, open_invoice


@pytest.fixture
def gateway(app: Any) -> FakeGateway:
    """The app's in-process gateway (reset after each test by the root conftest)."""
    fake = app.state.gateway
    assert isinstance(fake, FakeGateway)
    assert fake.latency_seconds == 0, "a test left the fake gateway slow"
    return fake


@pytest.fixture
async def lenient_client(app: Any) -> AsyncIterator[AsyncClient]:
    """An HTTP client that receives the 500 an unexpected error becomes, instead of the error."""
    transport = ASGITransport(app=app, raise_app_exceptions=False)
    async with AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


@pytest.fixture
async def billing(factory: Factory, client: AsyncClient) -> Billing:
    return await billing_world(factory, client)


@pytest.fixture
async def invoice(client: AsyncClient, billing: Billing) -> dict[str, Any]:
    """An open invoice of 100.00 USD (10 000 minor units) to the billing world's client."""
    return await open_invoice(
        client, billing.staff, billing.client_id, billing.category, (2, 5_000)
    )
