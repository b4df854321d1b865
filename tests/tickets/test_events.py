"""Every change to a ticket leaves an event row, in the same transaction: the ticket after the
change, what changed, and who changed it."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select

from app.models import Event
from tests.factories import World
from tests.tickets.conftest import TicketsApi, assert_problem


async def _events(tickets: TicketsApi, ticket_id: str) -> list[Event]:
    async with tickets.sessionmaker() as session:
        stmt = (
            select(Event)
            .where(Event.subject_type == "ticket", Event.subject_id == uuid.UUID(ticket_id))
            .order_by(Event.created_at, Event.id)
        )
        return list((await session.execute(stmt)).scalars())


def _summary(event: Event) -> tuple[str, dict[str, Any] | None]:
    details = event.details and {k: v for k, v in event.details.items() if k != "update_id"}
    return event.type, details


async def test_each_change_records_an_event(tickets: TicketsApi, world: World) -> None:
    ticket = await tickets.open(world.contact, priority="high")
    staff_id = str(world.staff.id)
    await tickets.patch(world.staff, ticket["id"], status="waiting_on_client", assignee=staff_id)
    update = (await tickets.add_update(world.contact, ticket["id"], "Answer")).json()
    await tickets.patch(world.staff, ticket["id"], priority="low")
    await tickets.close(world.staff, ticket["id"], "Done")

    events = await _events(tickets, ticket["id"])
    assert [_summary(e) for e in events] == [
        ("ticket.created", None),
        (
            "ticket.updated",
            {
                "changes": {
                    "status": {"from": "open", "to": "waiting_on_client"},
                    "assignee_id": {"from": None, "to": staff_id},
                }
            },
        ),
        (
            "ticket.updated",
            {
                "author_role": "client",
                "changes": {"status": {"from": "waiting_on_client", "to": "in_progress"}},
            },
        ),
        ("ticket.updated", {"changes": {"priority": {"from": "high", "to": "low"}}}),
        (
            "ticket.closed",
            {"changes": {"status": {"from": "in_progress", "to": "closed"}}},
        ),
    ]
    for event in events:
        assert event.tenant_id == world.tenant.id
        assert event.client_id == world.client.id
        assert event.data["number"] == ticket["number"]
    # The ticket after each change, as GET /tickets lists it.
    assert [e.data["status"] for e in events] == [
        "open",
        "waiting_on_client",
        "in_progress",
        "in_progress",
        "closed",
    ]
    assert [e.data["priority"] for e in events] == ["high", "high", "high", "low", "low"]
    assert events[4].data["resolution_notes"] is not None
    assert [(e.actor_kind, str(e.actor_id)) for e in events] == [
        ("user", str(world.contact.id)),
        ("user", staff_id),
        ("user", str(world.contact.id)),
        ("user", staff_id),
        ("user", staff_id),
    ]
    assert events[2].details is not None
    assert events[2].details["update_id"] == update["id"]


async def test_refused_requests_record_no_event(tickets: TicketsApi, world: World) -> None:
    ticket = await tickets.open(world.contact)
    await tickets.close(world.staff, ticket["id"])
    before = len(await _events(tickets, ticket["id"]))
    assert_problem(await tickets.add_update(world.contact, ticket["id"]), 409)
    assert_problem(await tickets.patch(world.staff, ticket["id"], status="in_progress"), 409)
    assert_problem(await tickets.close(world.staff, ticket["id"]), 409)
    assert_problem(await tickets.patch(world.contact, ticket["id"], priority="low"), 403)
    assert len(await _events(tickets, ticket["id"])) == before
