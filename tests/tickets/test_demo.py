"""The demo seeder: open and closed tickets for every demo contact.

It runs here on a stand-in for the DemoContext holding only what it reads, so the
test does not depend on the rest of `seed-demo` (other domains' seeders, the gateway).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import cast

from sqlalchemy.ext.asyncio import AsyncSession

from app.demo.context import DemoContext
from app.demo.tickets import seed_tickets
from app.models import Client, User
from tests.factories import Factory, Person
from tests.tickets.conftest import TicketsApi


@dataclass
class _Context:
    session: AsyncSession
    staff: User
    clients: list[Client]
    contacts: dict[uuid.UUID, User]

    principal_for = DemoContext.principal_for


async def test_the_demo_has_open_and_closed_tickets(tickets: TicketsApi, factory: Factory) -> None:
    world = await factory.world()
    clients = [world.client] + [await factory.client(world.tenant, n) for n in ("B", "C")]
    contacts: dict[uuid.UUID, Person] = {world.client.id: world.contact}
    for client in clients[1:]:
        contacts[client.id] = await factory.contact(world.tenant, client)
    async with factory.sessionmaker() as session, session.begin():
        context = _Context(
            session, world.staff.user, clients, {k: p.user for k, p in contacts.items()}
        )
        await seed_tickets(cast(DemoContext, context))

    open_ones = (await tickets.list(world.staff, status="open")).json()["items"]
    closed = (await tickets.list(world.staff, status="closed")).json()["items"]
    assert {t["status"] for t in open_ones} == {"open", "in_progress", "waiting_on_client"}
    assert len(closed) == 3
    assert all(t["resolution_notes"] for t in closed)
    assert sorted(t["number"] for t in open_ones + closed) == list(range(1, 8))

    worked = next(t for t in open_ones if t["status"] == "waiting_on_client")
    detail = await tickets.detail(world.staff, worked["id"])
    assert detail["assignee"]["id"] == str(world.staff.id)
    assert [u["author"]["role"] for u in detail["updates"]] == ["staff"]

    for client in clients:
        mine = (await tickets.list(contacts[client.id])).json()["items"]
        assert mine
        assert {t["client_id"] for t in mine} == {str(client.id)}
