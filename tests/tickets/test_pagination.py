"""Keyset pagination over a few hundred tickets: every ticket once, newest first, within
what the caller may see, with ties on created_at broken by id."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert, update

from app.models import Tenant, Ticket
from tests.factories import Factory, Person, World
from tests.tickets.conftest import TicketsApi

START = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)


def _rows(
    tenant_id: uuid.UUID, client_id: uuid.UUID, count: int, first: int
) -> list[dict[str, Any]]:
    rows = []
    for i in range(count):
        closed = i % 3 == 0
        # Groups of four share a timestamp, so the id has to break the tie.
        at = START + timedelta(minutes=(first + i) // 4)
        rows.append(
            {
                "id": uuid.uuid4(),
                "tenant_id": tenant_id,
                "client_id": client_id,
                "number": first + i,
                "subject": f"Bulk {first + i}",
                "description": "Seeded for paging.",
                "priority": ("low", "normal", "high", "urgent")[i % 4],
                "status": "closed" if closed else ("open", "in_progress")[i % 2],
                "created_at": at,
                "updated_at": at,
                "closed_at": at + timedelta(hours=1) if closed else None,
                "resolution_notes": "Fixed." if closed else None,
            }
        )
    return rows


async def _seed(factory: Factory, tenant: Tenant, rows: list[dict[str, Any]]) -> None:
    async with factory.sessionmaker() as session, session.begin():
        await session.execute(insert(Ticket), rows)
        await session.execute(
            update(Tenant).where(Tenant.id == tenant.id).values(next_ticket_number=len(rows) + 1)
        )


def _newest_first(rows: list[dict[str, Any]]) -> list[str]:
    return [
        str(r["id"]) for r in sorted(rows, key=lambda r: (r["created_at"], r["id"]), reverse=True)
    ]


async def _all_pages(tickets: TicketsApi, who: Person, **params: Any) -> tuple[list[str], int]:
    ids: list[str] = []
    pages = 0
    cursor: str | None = None
    while True:
        query = params | ({"cursor": cursor} if cursor else {})
        response = await tickets.list(who, **query)
        assert response.status_code == 200, response.text
        body = response.json()
        assert len(body["items"]) <= params.get("limit", 50)
        ids += [item["id"] for item in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            return ids, pages


async def test_paging_through_a_few_hundred_tickets(
    tickets: TicketsApi, world: World, factory: Factory
) -> None:
    neighbour = await factory.client(world.tenant, "Globex")
    neighbour_contact = await factory.contact(world.tenant, neighbour)
    mine = _rows(world.tenant.id, world.client.id, 240, first=1)
    theirs = _rows(world.tenant.id, neighbour.id, 80, first=241)
    await _seed(factory, world.tenant, mine + theirs)
    stranger = await factory.world("Other MSP")
    await _seed(factory, stranger.tenant, _rows(stranger.tenant.id, stranger.client.id, 40, 1))
    # A few through the API as well: they are the newest, and numbering carries on.
    fresh = [await tickets.open(world.contact, subject=f"Fresh {i}") for i in range(3)]
    assert [t["number"] for t in fresh] == [321, 322, 323]
    fresh_ids = [t["id"] for t in reversed(fresh)]

    everything, pages = await _all_pages(tickets, world.staff, limit=50)
    assert everything == fresh_ids + _newest_first(mine + theirs)
    assert pages == 7

    own, _ = await _all_pages(tickets, world.contact, limit=200)
    assert own == fresh_ids + _newest_first(mine)
    assert (await _all_pages(tickets, neighbour_contact, limit=7))[0] == _newest_first(theirs)

    history, _ = await _all_pages(tickets, world.contact, status="closed", limit=25)
    assert history == _newest_first([r for r in mine if r["status"] == "closed"])
    open_ones, _ = await _all_pages(tickets, world.staff, status="open", client_id=neighbour.id)
    assert open_ones == _newest_first([r for r in theirs if r["status"] != "closed"])
    urgent, _ = await _all_pages(tickets, world.staff, priority="urgent", limit=13)
    assert urgent == _newest_first([r for r in mine + theirs if r["priority"] == "urgent"])

    assert len((await _all_pages(tickets, stranger.staff, limit=200))[0]) == 40


async def test_the_default_page_and_a_cursor_from_the_middle(
    tickets: TicketsApi, world: World, factory: Factory
) -> None:
    rows = _rows(world.tenant.id, world.client.id, 120, first=1)
    await _seed(factory, world.tenant, rows)
    expected = _newest_first(rows)
    first = (await tickets.list(world.staff)).json()
    assert [t["id"] for t in first["items"]] == expected[:50]
    second = (await tickets.list(world.staff, cursor=first["next_cursor"])).json()
    assert [t["id"] for t in second["items"]] == expected[50:100]
    # A ticket opened between pages lands on top, never in the middle of the walk.
    await tickets.open(world.contact)
    third = (await tickets.list(world.staff, cursor=second["next_cursor"])).json()
    assert [t["id"] for t in third["items"]] == expected[100:]
    assert third["next_cursor"] is None
