"""Helpers for the ticket tests: a thin client for the ticket endpoints, problem+json
assertions and direct counts, to prove a refused request stored nothing."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from httpx import AsyncClient, Response
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.models import Event, Ticket, TicketUpdate
from tests.factories import Factory, Person, World

API = "/api/v1/tickets"


def assert_problem(response: Response, status: int, *detail_contains: str) -> dict[str, Any]:
    """The response is problem+json with this status and a detail saying these things."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["detail"]
    for text in detail_contains:
        assert text.lower() in body["detail"].lower(), body["detail"]
    return body


class TicketsApi:
    def __init__(self, http: AsyncClient, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.http = http
        self.sessionmaker = sessionmaker

    async def open(self, who: Person, **body: Any) -> dict[str, Any]:
        response = await self.open_raw(who, **body)
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    async def open_raw(self, who: Person, **body: Any) -> Response:
        payload = {"subject": "Printer offline", "description": "It shows error 49."} | body
        return await self.http.post(API, json=payload, headers=who.headers)

    async def get(self, who: Person, ticket_id: Any) -> Response:
        return await self.http.get(f"{API}/{ticket_id}", headers=who.headers)

    async def list(self, who: Person, **params: Any) -> Response:
        return await self.http.get(API, params=params, headers=who.headers)

    async def add_update(self, who: Person, ticket_id: Any, body: Any = "More info.") -> Response:
        return await self.http.post(
            f"{API}/{ticket_id}/updates", json={"body": body}, headers=who.headers
        )

    async def patch(self, who: Person, ticket_id: Any, **body: Any) -> Response:
        return await self.http.patch(f"{API}/{ticket_id}", json=body, headers=who.headers)

    async def close(self, who: Person, ticket_id: Any, notes: Any = "Replaced toner.") -> Response:
        return await self.http.post(
            f"{API}/{ticket_id}/close", json={"resolution_notes": notes}, headers=who.headers
        )

    async def detail(self, who: Person, ticket_id: Any) -> dict[str, Any]:
        response = await self.get(who, ticket_id)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def count(self, model: type[Ticket | TicketUpdate | Event], **where: Any) -> int:
        stmt = select(func.count()).select_from(model)
        for name, value in where.items():
            if name.endswith("id") and isinstance(value, str):
                value = uuid.UUID(value)
            stmt = stmt.where(getattr(model, name) == value)
        async with self.sessionmaker() as session:
            return int((await session.execute(stmt)).scalar_one())

    async def row(self, ticket_id: Any) -> Ticket:
        async with self.sessionmaker() as session:
            ticket = await session.get(Ticket, uuid.UUID(str(ticket_id)))
            assert ticket is not None
            return ticket


@pytest.fixture
def tickets(client: AsyncClient, sessionmaker: async_sessionmaker[AsyncSession]) -> TicketsApi:
    return TicketsApi(client, sessionmaker)


@pytest.fixture
async def world(factory: Factory) -> World:
    return await factory.world()
