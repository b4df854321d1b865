"""Who may do what: another client's or tenant's ticket is 404, staff-only changes are 403
for contacts, integration keys have no access, and a refused request changes nothing."""

from __future__ import annotations

import uuid

from httpx import AsyncClient, Response

from app.models import Event, Ticket, TicketUpdate
from tests.factories import Factory, Person, World
from tests.tickets.conftest import API, TicketsApi, assert_problem


async def _every_verb(tickets: TicketsApi, who: Person, ticket_id: object) -> list[Response]:
    return [
        await tickets.get(who, ticket_id),
        await tickets.add_update(who, ticket_id),
        await tickets.patch(who, ticket_id, status="in_progress"),
        await tickets.close(who, ticket_id),
    ]


async def test_another_tenants_ticket_is_404_for_every_verb(
    tickets: TicketsApi, world: World, factory: Factory
) -> None:
    ticket = await tickets.open(world.contact)
    stranger = await factory.world("Other MSP")
    before = await tickets.detail(world.staff, ticket["id"])
    events = await tickets.count(Event)

    for response in await _every_verb(tickets, stranger.staff, ticket["id"]):
        assert_problem(response, 404, "no such ticket")
    for response in await _every_verb(tickets, stranger.staff, uuid.uuid4()):
        assert_problem(response, 404, "no such ticket")
    assert (await tickets.list(stranger.staff)).json()["items"] == []
    assert await tickets.detail(world.staff, ticket["id"]) == before
    assert await tickets.count(Event) == events


async def test_another_clients_ticket_is_404_for_a_contact(
    tickets: TicketsApi, world: World, factory: Factory
) -> None:
    ticket = await tickets.open(world.contact)
    neighbour = await factory.contact(world.tenant, await factory.client(world.tenant, "Globex"))
    before = await tickets.detail(world.staff, ticket["id"])

    assert_problem(await tickets.get(neighbour, ticket["id"]), 404, "no such ticket")
    assert_problem(await tickets.add_update(neighbour, ticket["id"]), 404, "no such ticket")
    # The staff-only verbs answer 403 before looking anything up, for any id: the answer
    # is the same whether the ticket exists or not, so it reveals nothing.
    for target in (ticket["id"], uuid.uuid4()):
        assert_problem(await tickets.patch(neighbour, target, status="in_progress"), 403)
        assert_problem(await tickets.close(neighbour, target), 403)
    assert (await tickets.list(neighbour)).json()["items"] == []
    assert await tickets.detail(world.staff, ticket["id"]) == before
    assert await tickets.count(TicketUpdate) == 0


async def test_a_contact_cannot_make_staff_changes(tickets: TicketsApi, world: World) -> None:
    ticket = await tickets.open(world.contact)
    before = await tickets.detail(world.contact, ticket["id"])
    events = await tickets.count(Event)

    for change in (
        {"status": "in_progress"},
        {"assignee_id": str(world.staff.id)},
        {"priority": "urgent"},
    ):
        assert_problem(await tickets.patch(world.contact, ticket["id"], **change), 403, "staff")
    assert_problem(await tickets.close(world.contact, ticket["id"]), 403, "staff")
    assert await tickets.detail(world.contact, ticket["id"]) == before
    assert await tickets.count(Event) == events


async def test_only_a_client_contact_opens_tickets(tickets: TicketsApi, world: World) -> None:
    assert_problem(await tickets.open_raw(world.staff), 403, "client contact")
    assert await tickets.count(Ticket) == 0


async def test_integration_keys_have_no_access(
    tickets: TicketsApi, world: World, client: AsyncClient
) -> None:
    ticket = await tickets.open(world.contact)
    created = await client.post(
        "/api/v1/api-keys", json={"name": "PSA sync"}, headers=world.staff.headers
    )
    assert created.status_code == 201, created.text
    key = {"Authorization": f"Bearer {created.json()['secret']}"}
    calls = [
        client.get(API, headers=key),
        client.post(API, json={"subject": "s", "description": "d"}, headers=key),
        client.get(f"{API}/{ticket['id']}", headers=key),
        client.post(f"{API}/{ticket['id']}/updates", json={"body": "b"}, headers=key),
        client.patch(f"{API}/{ticket['id']}", json={"status": "in_progress"}, headers=key),
        client.post(f"{API}/{ticket['id']}/close", json={"resolution_notes": "n"}, headers=key),
    ]
    for call in calls:
        assert_problem(await call, 403)
    assert await tickets.count(Ticket) == 1
    assert await tickets.count(TicketUpdate) == 0


async def test_anonymous_callers_are_401(client: AsyncClient, tickets: TicketsApi) -> None:
    for response in (
        await client.get(API),
        await client.post(API, json={"subject": "s", "description": "d"}),
        await client.get(f"{API}/{uuid.uuid4()}"),
    ):
        assert_problem(response, 401)
    assert await tickets.count(Ticket) == 0


async def test_a_contact_with_a_temporary_password_is_held_back(
    tickets: TicketsApi, world: World, factory: Factory
) -> None:
    newcomer = await factory.user(world.tenant, client=world.client, must_change_password=True)
    assert_problem(await tickets.open_raw(newcomer), 403, "temporary")
    assert await tickets.count(Ticket) == 0
