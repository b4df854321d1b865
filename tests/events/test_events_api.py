"""GET /events and /events/{id}: the audit trail for staff and for keys with `events:read`,
newest first, filtered by type, client and time, paged by cursor over an index."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy import insert, text
from sqlalchemy.dialects import postgresql, sqlite

from app.core.clock import FrozenClock
from app.core.pagination import PageParams, keyset_statement
from app.core.principal import Principal
from app.events.repository import LISTING_ORDER, EventRepository
from app.models import Event
from tests.factories import Factory, api_key_for, assert_problem, bearer
from tests.scheduling.helpers import START

EVENTS = "/api/v1/events"


async def _clients(client: AsyncClient, headers: dict[str, str], *names: str) -> list[str]:
    ids = []
    for name in names:
        response = await client.post("/api/v1/clients", json={"name": name}, headers=headers)
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    return ids


async def test_events_newest_first_filtered_and_paged(
    client: AsyncClient, factory: Factory
) -> None:
    world = await factory.world()
    with FrozenClock(START) as clock:
        staff = bearer(factory.token_for(world.staff.user))
        first, second = await _clients(client, staff, "Globex", "Initech")
        clock.advance(hours=1)
        staff = bearer(factory.token_for(world.staff.user))  # minted on the clock's new time
        await client.patch(f"/api/v1/clients/{first}", json={"name": "Globex 2"}, headers=staff)
        since = clock.now
        await client.patch(f"/api/v1/clients/{second}", json={"name": "Initech 2"}, headers=staff)

        listed = await client.get(EVENTS, headers=staff)
        assert listed.status_code == 200, listed.text
        everything = listed.json()
        assert [(e["type"], e["client_id"]) for e in everything["items"]] == [
            ("client.updated", second),
            ("client.updated", first),
            ("client.created", second),
            ("client.created", first),
        ]
        assert everything["next_cursor"] is None

        async def ids(**params: Any) -> list[str]:
            response = await client.get(EVENTS, params=params, headers=staff)
            assert response.status_code == 200, response.text
            return [e["id"] for e in response.json()["items"]]

        all_ids = [e["id"] for e in everything["items"]]
        assert await ids(type="client.created") == all_ids[2:]
        assert await ids(client_id=first) == [all_ids[1], all_ids[3]]
        assert await ids(since=since.isoformat()) == all_ids[:2]
        assert await ids(since=(since + timedelta(seconds=1)).isoformat()) == []
        assert await ids(type="client.updated", client_id=second) == all_ids[:1]

        paged, cursor = [], None
        while True:
            params: dict[str, Any] = {"limit": 3} | ({"cursor": cursor} if cursor else {})
            page = (await client.get(EVENTS, params=params, headers=staff)).json()
            paged += [e["id"] for e in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert paged == all_ids

        one = await client.get(f"{EVENTS}/{all_ids[0]}", headers=staff)
        assert one.json() == everything["items"][0]


@pytest.mark.parametrize(
    ("params", "loc"),
    [
        ({"type": "client.exploded"}, ["query", "type"]),
        ({"since": "yesterday"}, ["query", "since"]),
        ({"since": "2026-03-02T15:00:00"}, ["query", "since"]),
        ({"client_id": "42"}, ["query", "client_id"]),
        ({"cursor": "garbage"}, ["query", "cursor"]),
    ],
)
async def test_bad_filters_are_422(
    client: AsyncClient, factory: Factory, params: dict[str, str], loc: list[str]
) -> None:
    world = await factory.world()
    problem = assert_problem(
        await client.get(EVENTS, params=params, headers=world.staff.headers), 422
    )
    assert problem["errors"][0]["loc"] == loc


async def test_who_may_read_the_audit_trail(client: AsyncClient, factory: Factory) -> None:
    world = await factory.world()
    await _clients(client, world.staff.headers, "Globex")
    [event] = (await client.get(EVENTS, headers=world.staff.headers)).json()["items"]

    for path in (EVENTS, f"{EVENTS}/{event['id']}"):
        assert_problem(await client.get(path, headers=world.contact.headers), 403)
        _key, v1 = await api_key_for(factory, world.tenant)
        assert_problem(await client.get(path, headers=bearer(v1)), 403, "insufficient-scope")
        _key, reader = await api_key_for(factory, world.tenant, scopes=["events:read"])
        assert (await client.get(path, headers=bearer(reader))).status_code == 200
        assert_problem(await client.get(path), 401)

    other = await factory.world("Other MSP")
    assert_problem(await client.get(f"{EVENTS}/{event['id']}", headers=other.staff.headers), 404)
    assert (await client.get(EVENTS, headers=other.staff.headers)).json()["items"] == []


@pytest.mark.parametrize(
    "filters",
    [
        pytest.param({}, id="all"),
        pytest.param({"type_": "invoice.paid"}, id="type"),
        pytest.param({"client_id": "client"}, id="client"),
    ],
)
async def test_each_listing_walks_an_index(
    factory: Factory, app: Any, filters: dict[str, Any]
) -> None:
    world = await factory.world()
    others = [await factory.client(world.tenant, f"Client {n}") for n in range(9)]
    clients = [world.client, *others]
    types = ["invoice.created", "invoice.paid", "payment.succeeded", "ticket.updated"]
    # A log of some size, so the planner's choice is the one a real log gets.
    rows = [
        {
            "id": uuid.uuid4(),
            "tenant_id": world.tenant.id,
            "client_id": clients[n % len(clients)].id,
            "type": types[n % len(types)],
            "subject_type": "invoice",
            "subject_id": uuid.uuid4(),
            "data": {},
            "actor_kind": "system",
            "created_at": START + timedelta(seconds=n),
            "dispatched_at": START,
        }
        for n in range(4000)
    ]
    async with factory.sessionmaker() as session, session.begin():
        await session.execute(insert(Event), rows)
        await session.execute(text("ANALYZE events"))
    if filters.get("client_id"):
        filters = {"client_id": world.client.id}
    staff = Principal(tenant_id=world.tenant.id, kind="staff", user_id=world.staff.id)
    async with factory.sessionmaker() as session:
        listing = EventRepository(session, staff).listing(**filters)
    stmt = keyset_statement(listing, PageParams(limit=50), list(LISTING_ORDER))
    engine = app.state.engine
    dialect = postgresql.dialect() if engine.dialect.name == "postgresql" else sqlite.dialect()
    sql = str(stmt.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
    async with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            await connection.execute(text("SET LOCAL enable_seqscan = off"))
            plan = "\n".join(r[0] for r in await connection.execute(text("EXPLAIN " + sql)))
            assert "Index" in plan, plan
            assert "Sort" not in plan, plan
        else:
            rows = await connection.execute(text("EXPLAIN QUERY PLAN " + sql))
            plan = "\n".join(str(r[-1]) for r in rows)
            assert "USING INDEX ix_events_" in plan or "USING COVERING INDEX" in plan, plan
            assert "TEMP B-TREE" not in plan, plan
