"""Webhook test helpers: endpoints made through the API, a deliverer over the app's database,
and Standard Webhooks verification with the reference library, on the service's clock."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any

import standardwebhooks.webhooks
from httpx import AsyncClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from standardwebhooks import Webhook

from app.core.clock import utcnow
from app.core.config import Settings
from app.models import User, WebhookDelivery, WebhookEndpoint
from app.webhooks.delivery import WebhookDeliverer
from tests.factories import Factory, bearer
from tests.webhooks.receiver import Received

ENDPOINTS = "/api/v1/webhook-endpoints"
CLIENTS = "/api/v1/clients"


class ServiceClock(datetime):
    """`datetime` whose now() is the service's (frozen) clock: the reference library checks a
    delivery's timestamp against it, as a receiver would against the real time."""

    @classmethod
    def now(cls, tz: tzinfo | None = None) -> ServiceClock:
        now = utcnow().astimezone(tz or UTC)
        return cls.fromtimestamp(now.timestamp(), tz=tz)


def use_service_clock_in_reference_library(monkeypatch: Any) -> None:
    monkeypatch.setattr(standardwebhooks.webhooks, "datetime", ServiceClock)


def verified(secret: str, request: Received) -> dict[str, Any]:
    """The payload, verified by the Standard Webhooks reference library (raises otherwise)."""
    payload: dict[str, Any] = Webhook(secret).verify(request.body, request.headers)
    return payload


def signatures(request: Received) -> list[str]:
    return request.headers["webhook-signature"].split(" ")


@dataclass
class Hooks:
    http: AsyncClient
    factory: Factory
    staff_user: User
    settings: Settings
    sessionmaker: async_sessionmaker[AsyncSession]

    @property
    def headers(self) -> dict[str, str]:
        """A staff token minted now: the tests move the clock by days."""
        return bearer(self.factory.token_for(self.staff_user))

    def deliverer(self, **overrides: Any) -> WebhookDeliverer:
        settings = self.settings.model_copy(update=overrides) if overrides else self.settings
        return WebhookDeliverer(self.sessionmaker, settings)

    async def create_endpoint(self, url: str, **body: Any) -> dict[str, Any]:
        response = await self.http.post(ENDPOINTS, json={"url": url, **body}, headers=self.headers)
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    async def new_client(self, name: str) -> dict[str, Any]:
        """Causes a `client.created` event."""
        response = await self.http.post(CLIENTS, json={"name": name}, headers=self.headers)
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    async def deliveries(self, endpoint_id: str, **params: str) -> list[dict[str, Any]]:
        response = await self.http.get(
            f"{ENDPOINTS}/{endpoint_id}/deliveries", params=params, headers=self.headers
        )
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["items"]
        return items

    async def rows(self, endpoint_id: str) -> list[WebhookDelivery]:
        async with self.sessionmaker() as session:
            stmt = (
                select(WebhookDelivery)
                .where(WebhookDelivery.endpoint_id == _uuid(endpoint_id))
                .order_by(WebhookDelivery.sequence)
            )
            return list((await session.execute(stmt)).scalars())

    async def endpoint_row(self, endpoint_id: str) -> WebhookEndpoint:
        async with self.sessionmaker() as session:
            found = await session.get(WebhookEndpoint, _uuid(endpoint_id))
            assert found is not None
            return found


def names_of(received: list[Received]) -> list[str]:
    """The client names in a list of `client.created` deliveries, in arrival order."""
    return [json.loads(r.body)["data"]["name"] for r in received]


def _uuid(value: str) -> Any:
    import uuid

    return uuid.UUID(value)
