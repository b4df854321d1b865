"""No ping on every checkout, yet a dead pooled connection is replaced rather than handed to a
request: a connection that idled IDLE_PING_SECONDS is pinged first (app/core/db.py)."""

from __future__ import annotations

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core import db
from app.core.config import Settings
from app.core.db import create_engine


async def _pid(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one())


async def _terminate(settings: Settings, pid: int) -> None:
    """Kill a backend from outside the pool, as a server restart or a firewall would."""
    url = make_url(settings.resolved_database_url).set(drivername="postgresql")
    conn = await asyncpg.connect(url.render_as_string(hide_password=False))
    try:
        await conn.execute("SELECT pg_terminate_backend($1)", pid)
    finally:
        await conn.close()


async def test_only_an_idle_connection_is_pinged_and_a_dead_one_is_replaced(
    settings: Settings, migrated: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    if settings.is_sqlite:
        pytest.skip("needs PostgreSQL: SQLite connections are not pooled")
    one = settings.model_copy(update={"database_pool_size": 1, "database_max_overflow": 0})
    engine = create_engine(one, kind="api")
    try:
        # Recently used: no ping, so a connection killed meanwhile fails the next use (which
        # is why the window is short) and the pool then replaces it.
        monkeypatch.setattr(db, "IDLE_PING_SECONDS", 3600.0)
        first = await _pid(engine)
        await _terminate(settings, first)
        with pytest.raises(DBAPIError):
            await _pid(engine)
        second = await _pid(engine)
        assert second != first
        # Idle long enough: pinged on checkout, found dead, replaced before anyone uses it.
        await _terminate(settings, second)
        monkeypatch.setattr(db, "IDLE_PING_SECONDS", 0.0)
        third = await _pid(engine)
        assert third not in (first, second)
    finally:
        await engine.dispose()
