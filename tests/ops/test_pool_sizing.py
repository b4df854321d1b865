"""Connection pools sized per kind of process, overridable, and what an exhausted pool
answers: the limits are checked on real pools of a PostgreSQL cluster of the run's own."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from app.core.config import Settings
from app.core.db import ProcessKind, create_engine, pool_limits
from app.core.db_unavailable import is_database_unavailable
from tests.core.conftest import BuildApp
from tests.factories import assert_problem
from tests.ops.private_postgres import PrivatePostgres
from tests.ops.serve_process import process_env, run_cli


def test_defaults_per_kind_of_process() -> None:
    settings = Settings(scheduler_concurrency=8)
    assert (pool_limits(settings, "api").size, pool_limits(settings, "api").max_overflow) == (5, 5)
    assert pool_limits(settings, "runner").size == 10  # one per charge in flight, plus two
    assert pool_limits(settings, "runner").max_overflow == 0
    assert pool_limits(settings, "cli").most == 4
    assert pool_limits(Settings(scheduler_concurrency=20), "runner").most == 22


def test_settings_from_the_environment_override_every_kind(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BILLING_DATABASE_POOL_SIZE", "3")
    monkeypatch.setenv("BILLING_DATABASE_MAX_OVERFLOW", "0")
    monkeypatch.setenv("BILLING_DATABASE_POOL_TIMEOUT_SECONDS", "2.5")
    monkeypatch.setenv("BILLING_DATABASE_POOL_RECYCLE_SECONDS", "600")
    settings = Settings()
    kinds: list[ProcessKind] = ["api", "runner", "cli"]
    for kind in kinds:
        limits = pool_limits(settings, kind)
        assert (limits.size, limits.max_overflow) == (3, 0)
    assert settings.database_pool_timeout_seconds == 2.5
    assert settings.database_pool_recycle_seconds == 600
    monkeypatch.setenv("BILLING_DATABASE_MAX_OVERFLOW", "-1")
    with pytest.raises(ValueError, match="database_max_overflow"):
        Settings()


@pytest.mark.parametrize(("kind", "size", "overflow"), [("api", 5, 5), ("runner", 4, 0)])
async def test_a_pool_opens_exactly_its_limit(
    private_postgres: PrivatePostgres, kind: ProcessKind, size: int, overflow: int
) -> None:
    settings = Settings(
        database_url=private_postgres.url(),
        scheduler_concurrency=2,
        database_pool_timeout_seconds=0.05,
    )
    assert pool_limits(settings, kind).most == size + overflow
    engine = create_engine(settings, kind=kind)
    held: list[AsyncConnection] = []
    try:
        for _ in range(size + overflow):
            connection = await engine.connect()
            await connection.execute(text("SELECT 1"))
            held.append(connection)
        with pytest.raises(sa_exc.TimeoutError) as exhausted:
            await engine.connect()
        assert is_database_unavailable(exhausted.value)
    finally:
        await asyncio.gather(*(connection.close() for connection in held))
        await engine.dispose()


async def test_an_exhausted_pool_answers_503(
    private_postgres: PrivatePostgres, build_app: BuildApp, tmp_path: Path
) -> None:
    database = private_postgres.create_database("pool")
    url = private_postgres.url(database)
    migrated = run_cli(process_env(url, tmp_path), "migrate")
    assert migrated.returncode == 0, migrated.stderr
    limits = {
        "database_pool_size": 1,
        "database_max_overflow": 0,
        "database_pool_timeout_seconds": 0.05,
    }
    async with build_app(database_url=url, **limits) as (application, http):
        async with application.state.engine.connect() as only_connection:
            await only_connection.execute(text("SELECT 1"))
            response = await http.post(
                "/api/v1/auth/token", data={"username": "x@y.example", "password": "whatever"}
            )
            assert_problem(response, 503, "service-unavailable")
            assert response.headers["retry-after"].isdigit()
        response = await http.post(
            "/api/v1/auth/token", data={"username": "x@y.example", "password": "whatever"}
        )
        assert_problem(response, 401)
    private_postgres.drop_database(database)
