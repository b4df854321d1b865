"""Every list and detail GET costs a few statements, whatever the page size and however much
data there is: no N+1, no lazy loads, no per-row lookups.

Counted on the engine (`before_cursor_execute`) while each endpoint is called: the SQL
statements the request sends (SELECT, INSERT, UPDATE, DELETE; BEGIN and COMMIT are transaction
control, counted apart), the connections it checks out of the pool, and the pings. The caller's
own resolution (app/auth/dependencies.py: one statement for a bearer token) is part of the
count: the budget is for the whole request.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.models import Invoice, Payment, PaymentMethod, ScheduledPayment, Ticket
from tests.factories import Factory, World
from tests.perf.bulk import History, seed_history

# The most statements one request may send, caller resolution included.
BUDGET = 3
PAGE_SIZES = (10, 50, 200)
# Rows of each kind for the client: enough that every page size fills its page, and then
# about three times as many.
DATA_SIZES = (210, 630)

LISTS = [
    "/api/v1/invoices",
    "/api/v1/payments",
    "/api/v1/scheduled-payments",
    "/api/v1/tickets",
    "/api/v1/payment-methods",
    "/api/v1/clients",
    "/api/v1/events",
    "/api/v1/service-categories",
    "/api/v1/api-keys",
    "/api/v1/webhook-endpoints",
    "/api/v1/platform-fees",
    "/api/v1/consents",
]
# What a client's own user may not read (403): counted for staff only.
STAFF_ONLY = {
    "/api/v1/clients",
    "/api/v1/clients/{id}",
    "/api/v1/events",
    "/api/v1/api-keys",
    "/api/v1/webhook-endpoints",
    "/api/v1/platform-fees",
    "/api/v1/tenant",
}


@dataclass
class Count:
    statements: list[str] = field(default_factory=list)
    control: int = 0
    checkouts: int = 0

    @property
    def n(self) -> int:
        return len(self.statements)


@contextmanager
def counting(engine: AsyncEngine) -> Iterator[Count]:
    count = Count()

    def on_execute(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        verb = statement.lstrip().split(None, 1)[0].upper()
        if verb in ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE"):
            count.control += 1
        else:
            count.statements.append(statement)

    def on_checkout(*_: Any) -> None:
        count.checkouts += 1

    event.listen(engine.sync_engine, "before_cursor_execute", on_execute)
    event.listen(engine.sync_engine.pool, "checkout", on_checkout)
    try:
        yield count
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", on_execute)
        event.remove(engine.sync_engine.pool, "checkout", on_checkout)


async def first_id(
    sessionmaker: async_sessionmaker[AsyncSession], model: Any, client: uuid.UUID
) -> uuid.UUID:
    async with sessionmaker() as session:
        stmt = select(model.id).where(model.client_id == client).order_by(model.created_at.desc())
        return (await session.execute(stmt.limit(1))).scalar_one()


async def measure(
    client: AsyncClient, engine: AsyncEngine, url: str, headers: dict[str, str]
) -> Count | None:
    """The request's count (None: refused with 403). It is sent once first to warm caches
    (the first request of a kind compiles its statements), then again, counted."""
    warm = await client.get(url, headers=headers)
    if warm.status_code == 403:
        return None
    assert warm.status_code == 200, f"{url}: {warm.text}"
    with counting(engine) as count:
        response = await client.get(url, headers=headers)
    assert response.status_code == 200, f"{url}: {response.text}"
    # One connection for the whole read: the caller's resolution and the endpoint share it.
    assert count.checkouts == 1, f"{url}: {count.checkouts} connections checked out"
    return count


@pytest.mark.parametrize("who", ["staff", "contact"])
async def test_every_get_costs_a_few_statements_whatever_the_size(
    app: Any,
    client: AsyncClient,
    factory: Factory,
    sessionmaker: async_sessionmaker[AsyncSession],
    who: str,
) -> None:
    engine: AsyncEngine = app.state.engine
    world: World = await factory.world()
    headers = {"staff": world.staff.headers, "contact": world.contact.headers}[who]
    seeded = 0
    report: dict[str, dict[tuple[int, int], int]] = {}
    refused: set[str] = set()
    for size in DATA_SIZES:
        async with sessionmaker() as session, session.begin():
            await seed_history(
                session,
                world.tenant.id,
                world.client.id,
                History(rows=size - seeded, live=5),
                first_ticket_number=seeded + 1,
            )
        seeded = size
        # (what is reported, the URL): a list at each page size, each detail once.
        urls = [((path, limit), f"{path}?limit={limit}") for path in LISTS for limit in PAGE_SIZES]
        details = {
            "invoices": await first_id(sessionmaker, Invoice, world.client.id),
            "payments": await first_id(sessionmaker, Payment, world.client.id),
            "scheduled-payments": await first_id(sessionmaker, ScheduledPayment, world.client.id),
            "tickets": await first_id(sessionmaker, Ticket, world.client.id),
            "payment-methods": await first_id(sessionmaker, PaymentMethod, world.client.id),
            "clients": world.client.id,
        }
        urls += [
            ((f"/api/v1/{kind}/{{id}}", 0), f"/api/v1/{kind}/{id_}")
            for kind, id_ in details.items()
        ]
        urls += [((path, 0), path) for path in ("/api/v1/me", "/api/v1/tenant")]
        for (path, limit), url in urls:
            count = await measure(client, engine, url, headers)
            if count is None:
                refused.add(path)
            else:
                report.setdefault(path, {})[(size, limit)] = count.n
    problems = [
        f"{path}: {counts}"
        for path, counts in report.items()
        if max(counts.values()) > BUDGET or len(set(counts.values())) > 1
    ]
    assert not problems, "statements per request, by (data size, page size):\n" + "\n".join(
        problems
    )
    # Every list at every page size and data size, every detail at each data size.
    assert refused == (STAFF_ONLY if who == "contact" else set())
    assert len(report) + len(refused) == len(LISTS) + len(details) + 2
    for path, counts in report.items():
        assert len(counts) == len(DATA_SIZES) * (len(PAGE_SIZES) if path in LISTS else 1)
