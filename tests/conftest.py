"""Test harness: the suite runs against SQLite by default and PostgreSQL when DATABASE_URL
names one (CI runs both).

The schema is built once per run by the real migrations. Tests through the API, the money
path (which commits more than once per request) and the concurrency tests (separate
connections) start from empty tables, emptied after each of them. Tests that need no real
commit take `db_session` instead: a session inside a transaction that is rolled back after
the test, with commits inside it turned into savepoints.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from alembic import command
from httpx import ASGITransport, AsyncClient
from sqlalchemy import delete, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.cli import alembic_config
from app.core.config import Settings
from app.core.db import create_engine
from app.main import create_app
from app.models import Base
from tests.factories import Factory

# Every answer the suite's app gives is checked against the OpenAPI document at the end.
pytest_plugins = ["tests.openapi_conformance"]

TEST_JWT_SECRET = "test-signing-key-" + "x" * 40


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    base = os.environ.get("DATABASE_URL")
    if base:
        return base
    return f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("data")


def make_settings(database_url: str, data_dir: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "env": "test",
        "database_url": database_url,
        "data_dir": data_dir,
        "jwt_secret": TEST_JWT_SECRET,
        "log_json": True,
        "log_level": "WARNING",
        "redis_url": None,
    }
    values.update(overrides)
    return Settings.model_validate(values)


@pytest.fixture(scope="session")
def settings(database_url: str, data_dir: Path) -> Settings:
    return make_settings(database_url, data_dir)


@pytest.fixture(scope="session")
def migrated(settings: Settings) -> None:
    config = alembic_config(settings)
    if not settings.is_sqlite:
        # Whatever an earlier run left in this database, start from nothing.
        asyncio.run(_reset_postgres_schema(settings))
    command.upgrade(config, "head")


async def _reset_postgres_schema(settings: Settings) -> None:
    engine = create_engine(settings)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("DROP SCHEMA public CASCADE"))
            await conn.execute(text("CREATE SCHEMA public"))
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
async def app(settings: Settings, migrated: None) -> AsyncIterator[object]:
    from tests.openapi_conformance import record_responses  # a plugin: imported by pytest

    application = create_app(settings)
    record_responses(application)
    gateway = application.state.gateway
    application.state.test_resets = [gateway.reset] if hasattr(gateway, "reset") else []
    yield application
    await application.state.engine.dispose()


@pytest.fixture
def sessionmaker(app: object) -> async_sessionmaker[AsyncSession]:
    maker: async_sessionmaker[AsyncSession] = app.state.sessionmaker  # type: ignore[attr-defined]
    return maker


@pytest.fixture
async def db_session(app: object) -> AsyncIterator[AsyncSession]:
    """SQLAlchemy's "join a session into an external transaction" recipe: everything the test
    writes, commits included (they become savepoints), is rolled back at its end."""
    engine = app.state.engine  # type: ignore[attr-defined]
    async with engine.connect() as connection:
        outer = await connection.begin()
        session = AsyncSession(
            bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
        )
        try:
            yield session
        finally:
            await session.close()
            await outer.rollback()


@pytest.fixture(autouse=True)
async def _clean_tables(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    """Empty every table after the test, and reset the fake gateway.

    DELETE in one transaction, children first, rather than TRUNCATE: on PostgreSQL a
    TRUNCATE of every table costs 0.2-0.6 s of file work per test; deleting the few rows a
    test leaves costs milliseconds."""
    yield
    if "app" not in request.fixturenames:
        return
    application = request.getfixturevalue("app")
    async with application.state.engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            await conn.execute(delete(table))
    for reset in getattr(application.state, "test_resets", []):
        reset()


@pytest.fixture
async def client(app: object) -> AsyncIterator[AsyncClient]:
    transport = ASGITransport(app=app)  # type: ignore[arg-type]
    async with AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


@pytest.fixture
def factory(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, client: AsyncClient
) -> Factory:
    return Factory(sessionmaker, settings, client)


@pytest.fixture
def unique() -> str:
    return uuid.uuid4().hex[:8]
