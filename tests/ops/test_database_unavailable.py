"""`is_database_unavailable` on real errors from both drivers: a PostgreSQL cluster of the
module's own (refused, mid-query termination, shutting down, not accepting connections, too
many connections, read-only, pool exhausted) and SQLite files (locked, unopenable), and on
errors that are bugs, not outages."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from app.core.db_unavailable import database_unavailable_reason, is_database_unavailable
from tests.ops.private_postgres import PrivatePostgres, free_port


async def error_of(action: Callable[[], Awaitable[Any]]) -> BaseException:
    try:
        await action()
    except Exception as exc:
        return exc
    pytest.fail("the action did not fail")


@asynccontextmanager
async def engine_for(url: str, **options: Any) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(url, **(options or {"poolclass": NullPool}))
    try:
        yield engine
    finally:
        await engine.dispose()


async def run(engine: AsyncEngine, *statements: str) -> None:
    async with engine.begin() as conn:
        for statement in statements:
            await conn.execute(text(statement))


async def test_postgres_refused_connection() -> None:
    async with engine_for(f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/x") as engine:
        exc = await error_of(lambda: run(engine, "SELECT 1"))
    assert isinstance(exc, ConnectionRefusedError)  # unwrapped, as asyncpg raises it
    assert database_unavailable_reason(exc) == "connection refused"


async def test_postgres_connection_terminated_mid_transaction(
    private_postgres: PrivatePostgres,
) -> None:
    async with engine_for(private_postgres.url()) as engine, engine.connect() as conn:
        pid = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        private_postgres.psql(f"SELECT pg_terminate_backend({pid})")
        exc = await error_of(lambda: conn.execute(text("SELECT 1")))
    assert getattr(exc, "connection_invalidated", False)
    assert is_database_unavailable(exc)


async def test_postgres_database_not_accepting_connections(
    private_postgres: PrivatePostgres,
) -> None:
    closed = private_postgres.create_database("closed")
    private_postgres.psql(f"ALTER DATABASE {closed} ALLOW_CONNECTIONS false")
    async with engine_for(private_postgres.url(closed)) as engine:
        exc = await error_of(lambda: run(engine, "SELECT 1"))
    assert "not currently accepting connections" in str(exc)
    assert database_unavailable_reason(exc) == "not accepting connections"


async def test_postgres_too_many_connections(private_postgres: PrivatePostgres) -> None:
    # A role allowed no connection meets the same SQLSTATE (53300) as a full server.
    role = f"capped_{uuid.uuid4().hex[:8]}"
    private_postgres.psql(f"CREATE ROLE {role} LOGIN CONNECTION LIMIT 0")
    url = private_postgres.url().replace("postgres@", f"{role}@")
    async with engine_for(url) as engine:
        exc = await error_of(lambda: run(engine, "SELECT 1"))
    assert database_unavailable_reason(exc) == "too many connections"


async def test_postgres_read_only_as_after_a_failover(private_postgres: PrivatePostgres) -> None:
    async with engine_for(private_postgres.url()) as engine:
        await run(engine, "CREATE TABLE IF NOT EXISTS scratch (n int)")
        exc = await error_of(
            lambda: run(engine, "SET TRANSACTION READ ONLY", "INSERT INTO scratch (n) VALUES (1)")
        )
    assert database_unavailable_reason(exc) == "read-only (failover)"


async def test_postgres_pool_exhausted(private_postgres: PrivatePostgres) -> None:
    options = {"pool_size": 1, "max_overflow": 0, "pool_timeout": 0.05}
    async with engine_for(private_postgres.url(), **options) as engine, engine.connect() as held:
        await held.execute(text("SELECT 1"))
        exc = await error_of(lambda: run(engine, "SELECT 1"))
    assert database_unavailable_reason(exc) == "connection pool exhausted"


async def test_postgres_errors_that_are_bugs_are_not_outages(
    private_postgres: PrivatePostgres,
) -> None:
    async with engine_for(private_postgres.url()) as engine:
        await run(engine, "CREATE TABLE IF NOT EXISTS uniq (n int PRIMARY KEY)")
        await run(engine, "DELETE FROM uniq", "INSERT INTO uniq VALUES (1)")
        bugs = [
            await error_of(lambda: run(engine, "SELEC 1")),
            await error_of(lambda: run(engine, "SELECT * FROM no_such_table")),
            await error_of(lambda: run(engine, "SELECT 1 / 0")),
            await error_of(lambda: run(engine, "INSERT INTO uniq VALUES (1)")),
        ]
    async with engine_for(private_postgres.url("no_such_database")) as engine:
        bugs.append(await error_of(lambda: run(engine, "SELECT 1")))
    for exc in bugs:
        assert not is_database_unavailable(exc), exc


async def test_postgres_shutting_down(private_postgres: PrivatePostgres) -> None:
    """A smart shutdown waits for the open session and refuses new ones with SQLSTATE 57P03
    (CannotConnectNowError), as a server that is starting up does."""
    async with engine_for(private_postgres.url()) as engine:
        async with engine.connect() as holder:
            await holder.execute(text("SELECT 1"))
            private_postgres.stop_in_background("smart")
            exc = await poll_for_error(engine)
        assert database_unavailable_reason(exc) == "starting up or shutting down"
    private_postgres.wait_stopped()
    private_postgres.start()


async def poll_for_error(engine: AsyncEngine, attempts: int = 500) -> BaseException:
    for _ in range(attempts):
        try:
            await run(engine, "SELECT 1")
        except Exception as exc:
            return exc
        await asyncio.sleep(0.01)
    pytest.fail("the server kept accepting connections during a smart shutdown")


def test_sqlite_locked_after_the_busy_timeout(tmp_path: Path) -> None:
    path = tmp_path / "locked.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:

        async def write() -> BaseException:
            url = f"sqlite+aiosqlite:///{path}"
            async with engine_for(url, connect_args={"timeout": 0.05}) as engine:
                return await error_of(lambda: run(engine, "CREATE TABLE t (n int)"))

        exc = asyncio.run(write())
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert "database is locked" in str(exc)
    assert is_database_unavailable(exc)


async def test_sqlite_unopenable_file_and_bugs(tmp_path: Path) -> None:
    missing_dir = tmp_path / "no" / "such" / "dir" / "x.db"
    async with engine_for(f"sqlite+aiosqlite:///{missing_dir}") as engine:
        assert is_database_unavailable(await error_of(lambda: run(engine, "SELECT 1")))
    async with engine_for(f"sqlite+aiosqlite:///{tmp_path / 'ok.db'}") as engine:
        await run(engine, "CREATE TABLE u (n int PRIMARY KEY)", "INSERT INTO u VALUES (1)")
        for exc in [
            await error_of(lambda: run(engine, "SELECT * FROM no_such_table")),
            await error_of(lambda: run(engine, "INSERT INTO u VALUES (1)")),
            await error_of(lambda: run(engine, "SELEC 1")),
        ]:
            assert not is_database_unavailable(exc), exc


def test_python_errors() -> None:
    assert is_database_unavailable(ConnectionResetError(104, "Connection reset by peer"))
    assert is_database_unavailable(TimeoutError())
    assert not is_database_unavailable(FileNotFoundError(2, "No such file"))
    assert not is_database_unavailable(RuntimeError("connection refused"))
    assert not is_database_unavailable(subprocess.CalledProcessError(1, "x"))
