"""Every query in a repository: no module of app/ outside repository.py files (and the
engine) builds or runs SQL. See query_placement.py for the rule."""

from __future__ import annotations

import pytest

from app.cli import PROJECT_ROOT
from tests.architecture.query_placement import is_exempt, strays_in, strays_under


def test_no_query_outside_a_repository() -> None:
    strays = strays_under(PROJECT_ROOT)
    assert not strays, "SQL outside a repository (move it into one):\n" + "\n".join(
        map(str, strays)
    )


@pytest.mark.parametrize(
    ("source", "what"),
    [
        ("from sqlalchemy import select\n", "imports select"),
        ("from sqlalchemy.sql import update as u\n", "imports update"),
        ("from sqlalchemy.dialects.postgresql import insert\n", "imports insert"),
        ("import sqlalchemy as sa\nq = sa.delete(T)\n", "uses sqlalchemy.delete"),
        ("async def f(session):\n    await session.execute(q)\n", "calls session.execute()"),
        ("async def f(self):\n    await self.session.scalar(q)\n", "calls session.scalar()"),
        ("async def f(conn):\n    await conn.scalars(q)\n", "calls conn.scalars()"),
        ("async def f(self):\n    await self.session.get(T, 1)\n", "calls session.get()"),
        ("async def f(db_session):\n    await db_session.delete(x)\n", "calls db_session.delete()"),
    ],
)
def test_the_rule_catches_a_stray_query(source: str, what: str) -> None:
    (stray,) = strays_in(source, "app/somewhere/service.py")
    assert stray.what == what


def test_the_rule_leaves_ordinary_code_alone() -> None:
    source = (
        "from sqlalchemy.ext.asyncio import AsyncSession\n"
        "from sqlalchemy import ForeignKey\n"
        "headers = {}\n"
        "value = headers.get('x')\n"
        "async def f(session: AsyncSession, pipe: object) -> None:\n"
        "    session.add(object())\n"
        "    await session.flush()\n"
        "    await pipe.execute()\n"
    )
    assert strays_in(source, "app/somewhere/service.py") == []


def test_repositories_and_the_engine_are_where_sql_belongs() -> None:
    assert is_exempt("app/payments/repository.py")
    assert is_exempt("app/core/db.py")
    assert is_exempt("app/models/billing.py")
    assert not is_exempt("app/payments/service.py")
    assert not is_exempt("app/scheduler/runner.py")
