"""Every list the API offers is read through an index that keeps its keyset order: no sort,
no scan of the client's (or tenant's) whole history, for each filter and for the staff's
tenant-wide lists, on the first page and the next.

The statements checked are the ones the app really sends (captured from the engine while
the endpoints are called), over a client with a long, mostly settled history and a second
client beside it. On PostgreSQL each is explained twice: with its values (a custom plan) and
as a prepared statement's generic plan (`plan_cache_mode = force_generic_plan`), which is what
asyncpg's statement cache gets after a few executions. On SQLite, `EXPLAIN QUERY PLAN` must
search an index and build no temporary B-tree for the ORDER BY.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from tests.factories import Factory, World
from tests.perf.bulk import History, seed_history

HISTORY = History(rows=3000, live=5)
TABLES = {
    "/api/v1/invoices": "invoices",
    "/api/v1/payments": "payments",
    "/api/v1/scheduled-payments": "scheduled_payments",
    "/api/v1/tickets": "tickets",
}

# (path, query, who, the index that must serve it). "contact" is the client's own user,
# "staff" sees the whole tenant; {client} is the client with the long history.
CASES: list[tuple[str, str, str, str]] = [
    ("/api/v1/invoices", "", "contact", "ix_invoices_tenant_id"),
    ("/api/v1/invoices", "status=open", "contact", "ix_invoices_client_status"),
    ("/api/v1/invoices", "overdue=true", "contact", "ix_invoices_client_status"),
    ("/api/v1/invoices", "", "staff", "ix_invoices_tenant_created"),
    ("/api/v1/invoices", "status=open", "staff", "ix_invoices_tenant_status"),
    ("/api/v1/invoices", "overdue=true", "staff", "ix_invoices_tenant_status"),
    ("/api/v1/invoices", "client_id={client}", "staff", "ix_invoices_tenant_id"),
    ("/api/v1/invoices", "client_id={client}&status=open", "staff", "ix_invoices_client_status"),
    ("/api/v1/payments", "", "contact", "ix_payments_tenant_id"),
    ("/api/v1/payments", "status=failed", "contact", "ix_payments_client_status"),
    ("/api/v1/payments", "", "staff", "ix_payments_tenant_created"),
    ("/api/v1/payments", "status=failed", "staff", "ix_payments_tenant_status"),
    ("/api/v1/payments", "client_id={client}&status=failed", "staff", "ix_payments_client_status"),
    ("/api/v1/scheduled-payments", "", "contact", "ix_scheduled_payments_listing"),
    (
        "/api/v1/scheduled-payments",
        "status=scheduled",
        "contact",
        "ix_scheduled_payments_client_status",
    ),
    ("/api/v1/scheduled-payments", "", "staff", "ix_scheduled_payments_tenant_created"),
    (
        "/api/v1/scheduled-payments",
        "status=scheduled",
        "staff",
        "ix_scheduled_payments_tenant_status",
    ),
    ("/api/v1/tickets", "", "contact", "ix_tickets_tenant_client_created"),
    ("/api/v1/tickets", "status=open", "contact", "ix_tickets_open_client"),
    ("/api/v1/tickets", "status=closed", "contact", "ix_tickets_closed_client"),
    ("/api/v1/tickets", "", "staff", "ix_tickets_tenant_created"),
    ("/api/v1/tickets", "status=open", "staff", "ix_tickets_open_tenant"),
    ("/api/v1/tickets", "status=closed", "staff", "ix_tickets_closed_tenant"),
    ("/api/v1/tickets", "client_id={client}&status=open", "staff", "ix_tickets_open_client"),
]


@contextmanager
def captured(engine: AsyncEngine) -> Iterator[list[tuple[str, Any]]]:
    statements: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        statements.append((statement, parameters))

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)


def listing(statements: list[tuple[str, Any]], table: str) -> tuple[str, Any]:
    """The page query: the SELECT from `table` with the keyset ORDER BY and LIMIT."""
    found = [
        (sql, params)
        for sql, params in statements
        if re.search(rf"\bFROM {table}\b", sql) and "ORDER BY" in sql and "LIMIT" in sql
    ]
    assert len(found) == 1, f"expected one page query on {table}, got {found}"
    return found[0]


def _literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, datetime | date | uuid.UUID):
        return f"'{value.isoformat() if not isinstance(value, uuid.UUID) else value}'"
    return "'" + str(value).replace("'", "''") + "'"


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


async def postgres_plans(session: AsyncSession, sql: str, params: Any) -> dict[str, list[Any]]:
    """The statement's custom and generic plans (JSON), from one prepared statement."""
    # A name of our own: DEALLOCATE ALL would drop asyncpg's cached statements as well.
    name = f"page_query_{uuid.uuid4().hex}"
    await session.execute(text(f"PREPARE {name} AS {sql}"))
    arguments = ", ".join(_literal(v) for v in params)
    execute = f"EXECUTE {name}({arguments})" if params else f"EXECUTE {name}"
    plans: dict[str, list[Any]] = {}
    for mode in ("force_custom_plan", "force_generic_plan"):
        await session.execute(text(f"SET LOCAL plan_cache_mode = {mode}"))
        raw = (await session.execute(text(f"EXPLAIN (FORMAT JSON) {execute}"))).scalar_one()
        plans[mode] = raw if isinstance(raw, list) else json.loads(raw)
    await session.execute(text(f"DEALLOCATE {name}"))
    return plans


def check_postgres_plan(plan: list[Any], table: str, index: str, where: str) -> None:
    nodes = list(_nodes(plan[0]["Plan"]))
    kinds = [node["Node Type"] for node in nodes]
    scans = [n for n in nodes if n.get("Relation Name") == table]
    assert "Sort" not in kinds and "Incremental Sort" not in kinds, f"{where}: sorts: {plan}"
    assert len(scans) == 1, f"{where}: {plan}"
    scan = scans[0]
    assert scan["Node Type"] in ("Index Scan", "Index Only Scan"), f"{where}: {plan}"
    used = scan["Index Name"]
    assert used == index, f"{where}: uses {used}, not {index}: {json.dumps(plan)}"


async def check_sqlite_plan(session: AsyncSession, sql: str, params: Any, where: str) -> None:
    connection = await session.connection()
    rows = (await connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", params)).all()
    details = [str(row[-1]) for row in rows]
    assert not any("TEMP B-TREE" in d for d in details), f"{where}: sorts: {details}"
    assert any("USING" in d and "INDEX" in d for d in details), f"{where}: scans: {details}"


@pytest.fixture
async def long_history(
    factory: Factory, sessionmaker: async_sessionmaker[AsyncSession]
) -> tuple[World, uuid.UUID]:
    world = await factory.world()
    other = await factory.client(world.tenant, "Other Corp")
    async with sessionmaker() as session, session.begin():
        await seed_history(session, world.tenant.id, world.client.id, HISTORY)
        await seed_history(
            session,
            world.tenant.id,
            other.id,
            # Most of the tenant is another client's: a client's own list must then take the
            # client's index, not walk the tenant's and filter (with the history client the
            # larger one, either plan costs the same and the planner may take either).
            History(rows=HISTORY.rows * 2, live=HISTORY.live),
            first_ticket_number=HISTORY.rows + 1,
        )
        if session.get_bind().dialect.name == "postgresql":
            for table in TABLES.values():
                await session.execute(text(f"ANALYZE {table}"))
        else:
            await session.execute(text("ANALYZE"))
    return world, world.client.id


async def test_every_list_reads_its_index_in_keyset_order(
    app: Any,
    client: AsyncClient,
    long_history: tuple[World, uuid.UUID],
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    world, client_id = long_history
    engine: AsyncEngine = app.state.engine
    people = {"contact": world.contact.headers, "staff": world.staff.headers}
    checked = 0
    for path, query, who, index in CASES:
        table = TABLES[path]
        url = f"{path}?limit=2&{query.format(client=client_id)}"
        pages = []
        with captured(engine) as statements:
            first = await client.get(url, headers=people[who])
        assert first.status_code == 200, first.text
        pages.append(listing(statements, table))
        cursor = first.json()["next_cursor"]
        if cursor is not None:
            with captured(engine) as statements:
                second = await client.get(f"{url}&cursor={cursor}", headers=people[who])
            assert second.status_code == 200, second.text
            pages.append(listing(statements, table))
        for number, (sql, params) in enumerate(pages, start=1):
            where = f"{who} GET {path}?{query} page {number}"
            async with sessionmaker() as session, session.begin():
                if session.get_bind().dialect.name == "postgresql":
                    plans = await postgres_plans(session, sql, params)
                    for mode, plan in plans.items():
                        check_postgres_plan(plan, table, index, f"{where} ({mode})")
                else:
                    await check_sqlite_plan(session, sql, params, where)
            checked += 1
    # Every case has a second page (5 live rows, 2 a page) but `?overdue`, which matches none.
    assert checked == sum(1 if "overdue" in query else 2 for _path, query, _who, _ix in CASES)
