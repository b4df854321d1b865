"""The whole life of a ticket, from a client's first message to the service history."""

from __future__ import annotations

import asyncio
from datetime import datetime

from httpx import AsyncClient

from app.core.errors import problem_type_uri
from app.models import TicketUpdate
from tests.factories import Factory, World
from tests.tickets.conftest import TicketsApi, assert_problem


async def test_a_ticket_from_opening_to_the_service_history(
    tickets: TicketsApi, world: World, factory: Factory
) -> None:
    contact, staff = world.contact, world.staff
    opened = await tickets.open(
        contact, subject="VPN drops", description="Every hour.", priority="high"
    )
    assert opened["number"] == 1
    assert opened["status"] == "open"
    assert opened["priority"] == "high"
    assert opened["client_id"] == str(world.client.id)
    assert opened["description"] == "Every hour."
    assert opened["opened_by"] == {
        "id": str(contact.id),
        "name": contact.user.full_name,
        "role": "client",
    }
    assert opened["updates"] == []
    assert opened["closed_at"] is None
    assert opened["resolution_notes"] is None
    assert opened["closed_by"] is None
    ticket_id = opened["id"]

    listed = (await tickets.list(contact, status="open")).json()
    assert [t["id"] for t in listed["items"]] == [ticket_id]
    assert (await tickets.list(contact, status="closed")).json()["items"] == []

    # Staff pick it up, then ask the client a question.
    changed = await tickets.patch(staff, ticket_id, status="in_progress", assignee_id=str(staff.id))
    assert changed.status_code == 200, changed.text
    assert changed.json()["status"] == "in_progress"
    assert changed.json()["assignee"]["id"] == str(staff.id)
    assert changed.json()["assignee"]["role"] == "staff"
    question = await tickets.add_update(staff, ticket_id, "Which office are you in?")
    assert question.status_code == 201, question.text
    assert question.json()["author"] == {
        "id": str(staff.id),
        "name": staff.user.full_name,
        "role": "staff",
    }
    waiting = await tickets.patch(staff, ticket_id, status="waiting_on_client")
    assert waiting.json()["status"] == "waiting_on_client"
    assert [t["id"] for t in (await tickets.list(contact, status="open")).json()["items"]] == [
        ticket_id
    ]

    # The client's answer puts it back to work.
    answer = await tickets.add_update(contact, ticket_id, "The Boston office.")
    assert answer.status_code == 201, answer.text
    assert answer.json()["body"] == "The Boston office."
    detail = await tickets.detail(contact, ticket_id)
    assert detail["status"] == "in_progress"
    assert [(u["author"]["role"], u["body"]) for u in detail["updates"]] == [
        ("staff", "Which office are you in?"),
        ("client", "The Boston office."),
    ]
    times = [datetime.fromisoformat(u["created_at"]) for u in detail["updates"]]
    assert times == sorted(times)

    closed = await tickets.close(staff, ticket_id, "Replaced the router's firmware.")
    assert closed.status_code == 200, closed.text
    body = closed.json()
    assert body["status"] == "closed"
    assert body["resolution_notes"] == "Replaced the router's firmware."
    assert body["closed_by"]["id"] == str(staff.id)
    assert datetime.fromisoformat(body["closed_at"]).tzinfo is not None

    history = (await tickets.list(contact, status="closed")).json()["items"]
    assert [(t["id"], t["resolution_notes"]) for t in history] == [
        (ticket_id, "Replaced the router's firmware.")
    ]
    assert (await tickets.list(contact, status="open")).json()["items"] == []
    assert (await tickets.detail(contact, ticket_id))["closed_at"] == body["closed_at"]


async def test_a_closed_ticket_takes_no_update_and_stores_nothing(
    tickets: TicketsApi, world: World
) -> None:
    ticket = await tickets.open(world.contact)
    await tickets.add_update(world.contact, ticket["id"], "First.")
    assert (await tickets.close(world.staff, ticket["id"])).status_code == 200
    before = await tickets.detail(world.contact, ticket["id"])

    for who in (world.contact, world.staff):
        refused = await tickets.add_update(who, ticket["id"], "Still broken!")
        assert_problem(refused, 409, f"ticket #{ticket['number']} is closed", "new ticket")
        assert refused.json()["type"] == problem_type_uri("ticket-closed")
    assert await tickets.count(TicketUpdate, ticket_id=before["id"]) == 1
    assert await tickets.detail(world.contact, ticket["id"]) == before


async def test_a_closed_ticket_cannot_be_edited_reopened_or_closed_again(
    tickets: TicketsApi, world: World
) -> None:
    ticket = await tickets.open(world.contact)
    await tickets.close(world.staff, ticket["id"], "Done.")
    before = await tickets.detail(world.staff, ticket["id"])

    for change in ({"status": "in_progress"}, {"status": "open"}, {"priority": "low"}, {}):
        assert_problem(await tickets.patch(world.staff, ticket["id"], **change), 409, "closed")
    assert_problem(await tickets.close(world.staff, ticket["id"], "Again."), 409, "closed")
    assert_problem(await tickets.patch(world.contact, ticket["id"], status="open"), 403)
    assert await tickets.detail(world.staff, ticket["id"]) == before


async def test_numbers_are_sequential_per_tenant(tickets: TicketsApi, factory: Factory) -> None:
    first, second = await factory.world("First MSP"), await factory.world("Second MSP")
    numbers = [(await tickets.open(first.contact))["number"] for _ in range(3)]
    assert numbers == [1, 2, 3]
    assert (await tickets.open(second.contact))["number"] == 1
    assert (await tickets.open(first.contact))["number"] == 4


async def test_concurrent_openings_never_share_a_number(
    tickets: TicketsApi, world: World, factory: Factory
) -> None:
    contacts = [world.contact] + [
        await factory.contact(world.tenant, world.client) for _ in range(3)
    ]
    responses = await asyncio.gather(
        *(tickets.open_raw(contacts[i % len(contacts)], subject=f"#{i}") for i in range(12))
    )
    assert all(r.status_code == 201 for r in responses), [r.text for r in responses]
    assert sorted(r.json()["number"] for r in responses) == list(range(1, 13))


async def test_text_is_returned_exactly_as_given(tickets: TicketsApi, world: World) -> None:
    subject = '  <script>alert("x")</script> & naïve — 🚀 '
    description = "Line one\n\tLine two <b>bold?</b>\r\n" + "é" * 100
    ticket = await tickets.open(world.contact, subject=subject, description=description)
    response = await tickets.get(world.contact, ticket["id"])
    assert response.headers["content-type"] == "application/json"
    assert response.json()["subject"] == subject
    assert response.json()["description"] == description


async def test_staff_see_every_clients_tickets_and_filter_them(
    tickets: TicketsApi, world: World, factory: Factory, client: AsyncClient
) -> None:
    other_client = await factory.client(world.tenant, "Globex")
    other_contact = await factory.contact(world.tenant, other_client)
    mine = await tickets.open(world.contact, priority="urgent")
    theirs = await tickets.open(other_contact, priority="low")
    await tickets.patch(world.staff, theirs["id"], assignee=str(world.staff.id))

    every = (await tickets.list(world.staff)).json()["items"]
    assert [t["id"] for t in every] == [theirs["id"], mine["id"]]
    by_client = await tickets.list(world.staff, client_id=str(other_client.id))
    assert [t["id"] for t in by_client.json()["items"]] == [theirs["id"]]
    by_assignee = await tickets.list(world.staff, assignee_id=str(world.staff.id))
    assert [t["id"] for t in by_assignee.json()["items"]] == [theirs["id"]]
    by_priority = await tickets.list(world.staff, priority="urgent", status="open")
    assert [t["id"] for t in by_priority.json()["items"]] == [mine["id"]]
    # A contact's list is their company's, whatever client they name.
    own = await tickets.list(world.contact, client_id=str(other_client.id))
    assert own.json()["items"] == []
    assert [t["id"] for t in (await tickets.list(world.contact)).json()["items"]] == [mine["id"]]


async def test_unassigning_and_reprioritising(tickets: TicketsApi, world: World) -> None:
    ticket = await tickets.open(world.contact)
    await tickets.patch(world.staff, ticket["id"], assignee_id=str(world.staff.id))
    cleared = await tickets.patch(world.staff, ticket["id"], assignee_id=None, priority="urgent")
    assert cleared.status_code == 200, cleared.text
    assert cleared.json()["assignee"] is None
    assert cleared.json()["assignee_id"] is None
    assert cleared.json()["priority"] == "urgent"
    assert cleared.json()["status"] == "open"
