"""Status changes and assignment through the API: refused ones say why and change nothing."""

from __future__ import annotations

import uuid

from app.core.errors import problem_type_uri
from app.models import Event
from tests.factories import Factory, World
from tests.tickets.conftest import TicketsApi, assert_problem


async def test_patch_cannot_close(tickets: TicketsApi, world: World) -> None:
    ticket = await tickets.open(world.contact)
    body = assert_problem(
        await tickets.patch(world.staff, ticket["id"], status="closed"), 422, "/close"
    )
    assert body["errors"][0]["loc"] == ["body", "status"]
    assert (await tickets.row(ticket["id"])).status == "open"


async def test_work_in_progress_does_not_go_back_to_open(tickets: TicketsApi, world: World) -> None:
    ticket = await tickets.open(world.contact)
    await tickets.patch(world.staff, ticket["id"], status="in_progress")
    events = await tickets.count(Event)
    body = assert_problem(
        await tickets.patch(world.staff, ticket["id"], status="open"),
        409,
        "from `in_progress` to `open`",
        "waiting_on_client",
    )
    assert body["type"] == problem_type_uri("invalid-ticket-transition")
    assert (await tickets.row(ticket["id"])).status == "in_progress"
    assert await tickets.count(Event) == events


async def test_a_refused_change_applies_none_of_the_request(
    tickets: TicketsApi, world: World
) -> None:
    ticket = await tickets.open(world.contact)
    await tickets.patch(world.staff, ticket["id"], status="waiting_on_client")
    response = await tickets.patch(
        world.staff, ticket["id"], status="open", priority="urgent", assignee_id=str(world.staff.id)
    )
    assert_problem(response, 409)
    row = await tickets.row(ticket["id"])
    assert (row.status, row.priority, row.assignee_id) == ("waiting_on_client", "normal", None)


async def test_staff_move_waiting_back_to_in_progress(tickets: TicketsApi, world: World) -> None:
    ticket = await tickets.open(world.contact)
    await tickets.patch(world.staff, ticket["id"], status="waiting_on_client")
    moved = await tickets.patch(world.staff, ticket["id"], status="in_progress")
    assert moved.status_code == 200, moved.text
    assert moved.json()["status"] == "in_progress"


async def test_a_staff_update_leaves_the_status_alone(tickets: TicketsApi, world: World) -> None:
    ticket = await tickets.open(world.contact)
    await tickets.patch(world.staff, ticket["id"], status="waiting_on_client")
    assert (await tickets.add_update(world.staff, ticket["id"], "Reminder")).status_code == 201
    assert (await tickets.row(ticket["id"])).status == "waiting_on_client"
    assert (await tickets.add_update(world.contact, ticket["id"], "Here")).status_code == 201
    assert (await tickets.row(ticket["id"])).status == "in_progress"
    # A client update on a ticket nobody has picked up yet leaves it in the queue.
    fresh = await tickets.open(world.contact)
    assert (await tickets.add_update(world.contact, fresh["id"], "Also")).status_code == 201
    assert (await tickets.row(fresh["id"])).status == "open"


async def test_setting_the_same_status_is_a_no_op(tickets: TicketsApi, world: World) -> None:
    ticket = await tickets.open(world.contact)
    events = await tickets.count(Event)
    same = await tickets.patch(world.staff, ticket["id"], status="open", priority="normal")
    assert same.status_code == 200, same.text
    assert await tickets.count(Event) == events


async def test_the_assignee_must_be_active_staff_of_the_tenant(
    tickets: TicketsApi, world: World, factory: Factory
) -> None:
    ticket = await tickets.open(world.contact)
    stranger = await factory.world("Other MSP")
    inactive = await factory.staff(world.tenant)
    async with factory.sessionmaker() as session, session.begin():
        user = await session.get(type(inactive.user), inactive.id)
        assert user is not None
        user.is_active = False
    candidates = [world.contact.id, stranger.staff.id, inactive.id, uuid.uuid4()]
    for candidate in candidates:
        for field in ("assignee_id", "assignee"):
            response = await tickets.patch(world.staff, ticket["id"], **{field: str(candidate)})
            body = assert_problem(response, 422, "active staff member")
            assert body["errors"][0]["loc"] == ["body", "assignee_id"]
    assert (await tickets.row(ticket["id"])).assignee_id is None

    colleague = await factory.staff(world.tenant)
    assigned = await tickets.patch(world.staff, ticket["id"], assignee=str(colleague.id))
    assert assigned.status_code == 200, assigned.text
    assert assigned.json()["assignee"]["id"] == str(colleague.id)


async def test_bad_patch_bodies(tickets: TicketsApi, world: World) -> None:
    ticket = await tickets.open(world.contact)
    for body, where in (
        ({"status": "done"}, "status"),
        ({"status": None}, "status"),
        ({"priority": None}, "priority"),
        ({"priority": "critical"}, "priority"),
        ({"assignee_id": "not-a-uuid"}, "assignee"),
        ({"subject": "renamed"}, "subject"),
        ({"client_id": str(uuid.uuid4())}, "client_id"),
    ):
        assert_problem(await tickets.patch(world.staff, ticket["id"], **body), 422, where)
    both = await tickets.patch(
        world.staff, ticket["id"], assignee_id=None, assignee=str(world.staff.id)
    )
    assert_problem(both, 422, "not both")
    row = await tickets.row(ticket["id"])
    assert (row.status, row.priority, row.assignee_id, row.subject) == (
        "open",
        "normal",
        None,
        "Printer offline",
    )
