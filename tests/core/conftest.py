"""Apps built for one test, with settings of their own, on the suite's database; and
databases of their own for the migration tests (never the suite's)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from httpx import ASGITransport, AsyncClient
from sqlalchemy.engine import URL, make_url

from app.core.config import Settings
from app.main import create_app
from tests.conftest import make_settings

BuildApp = Callable[..., AbstractAsyncContextManager[tuple[Any, AsyncClient]]]


@pytest.fixture
def build_app(database_url: str, data_dir: Path) -> BuildApp:
    """`async with build_app(max_body_bytes=1024) as (app, http): ...`; routes may be added to
    `app` before the first request. Unexpected errors come back as responses, as a server's
    would, instead of being raised into the test."""

    @asynccontextmanager
    async def build(**overrides: Any) -> AsyncIterator[tuple[Any, AsyncClient]]:
        url = overrides.pop("database_url", database_url)
        application = create_app(make_settings(url, data_dir, **overrides))
        transport = ASGITransport(app=application, raise_app_exceptions=False)
        try:
            async with AsyncClient(transport=transport, base_url="http://testserver") as http:
                yield application, http
        finally:
            await application.state.login_throttle.aclose()
            await application.state.engine.dispose()

    return build


async def _admin(url: URL, *statements: str) -> None:
    connection = await asyncpg.connect(
        host=url.host or "127.0.0.1",
        port=url.port or 5432,
        user=url.username,
        password=url.password,
        database="postgres",
    )
    try:
        for statement in statements:
            await connection.execute(statement)
    finally:
        await connection.close()


@pytest.fixture
def migrations_settings(database_url: str, tmp_path: Path) -> Iterator[Settings]:
    if database_url.startswith("sqlite"):
        yield make_settings(f"sqlite+aiosqlite:///{tmp_path / 'migrations.db'}", tmp_path)
        return
    url = make_url(database_url)
    name = f"{url.database}_migrations"
    drop = f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
    asyncio.run(_admin(url, drop, f'CREATE DATABASE "{name}"'))
    try:
        yield make_settings(url.set(database=name).render_as_string(hide_password=False), tmp_path)
    finally:
        asyncio.run(_admin(url, drop))
