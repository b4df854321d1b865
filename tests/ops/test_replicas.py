"""Replicas that start together: three `billing-portal serve` processes started at the same
moment on an empty database all come up (the migrations run once, under a lock, the others
wait and find nothing to do); `serve --no-migrate` leaves the schema alone; a migrator
really waits while another holds the PostgreSQL advisory lock."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from alembic.script import ScriptDirectory

from app.cli import PROJECT_ROOT, alembic_config
from app.core.config import Settings
from app.core.migration_lock import MIGRATION_LOCK_KEY
from tests.ops.conftest import StartServer
from tests.ops.private_postgres import PrivatePostgres
from tests.ops.serve_process import process_env, run_cli

REPLICAS = 3


def head_revision() -> str:
    script = ScriptDirectory.from_config(alembic_config(Settings()))
    head = script.get_current_head()
    assert head is not None
    return head


@pytest.fixture
def scratch_postgres(private_postgres: PrivatePostgres) -> Iterator[str]:
    name = private_postgres.create_database("replicas")
    try:
        yield name
    finally:
        private_postgres.drop_database(name)


def start_together_and_check(database_url: str, workdir: Path, serve: StartServer) -> None:
    envs = []
    for n in range(REPLICAS):
        (workdir / f"replica{n}").mkdir()
        envs.append(process_env(database_url, workdir / f"replica{n}"))
    servers = [serve(env, workdir) for env in envs]  # as close together as processes start
    for server in servers:
        server.wait_healthy()
        ready = httpx.get(f"{server.base_url}/readyz")
        assert ready.status_code == 200, (ready.text, server.stderr()[-2000:])
    stops = [server.stopped_cleanly() for server in servers]
    assert all(stops), [server.stderr()[-2000:] for server in servers]


def test_three_replicas_start_together_on_an_empty_postgres(
    private_postgres: PrivatePostgres, scratch_postgres: str, tmp_path: Path, serve: StartServer
) -> None:
    start_together_and_check(private_postgres.url(scratch_postgres), tmp_path, serve)
    versions = private_postgres.psql("SELECT version_num FROM alembic_version", scratch_postgres)
    assert versions.split() == [head_revision()]


def test_three_replicas_start_together_on_an_empty_sqlite_file(
    tmp_path: Path, serve: StartServer
) -> None:
    path = tmp_path / "replicas.db"
    start_together_and_check(f"sqlite+aiosqlite:///{path}", tmp_path, serve)
    with sqlite3.connect(path) as connection:
        assert connection.execute("SELECT version_num FROM alembic_version").fetchall() == [
            (head_revision(),)
        ]


def test_serve_no_migrate_leaves_the_schema_alone(
    private_postgres: PrivatePostgres, scratch_postgres: str, tmp_path: Path, serve: StartServer
) -> None:
    env = process_env(private_postgres.url(scratch_postgres), tmp_path)
    server = serve(env, tmp_path, "--no-migrate")
    server.wait_healthy()
    assert httpx.get(f"{server.base_url}/readyz").status_code == 200
    assert private_postgres.psql("SELECT to_regclass('alembic_version')", scratch_postgres) in (
        "",
        "\n",
    )
    assert server.stopped_cleanly()
    migrated = run_cli(env, "migrate")
    assert migrated.returncode == 0, migrated.stderr
    versions = private_postgres.psql("SELECT version_num FROM alembic_version", scratch_postgres)
    assert versions.split() == [head_revision()]


def test_a_migrator_waits_for_the_advisory_lock(
    private_postgres: PrivatePostgres, scratch_postgres: str, tmp_path: Path
) -> None:
    holder = subprocess.Popen(  # a psql session that holds the lock until told to go
        [
            str(private_postgres.bin / "psql"),
            *("-h", "127.0.0.1", "-p", str(private_postgres.port), "-U", "postgres"),
            *("-d", scratch_postgres, "-Atq", "-v", "ON_ERROR_STOP=1"),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdin is not None and holder.stdout is not None
    holder.stdin.write(f"SELECT pg_advisory_lock({MIGRATION_LOCK_KEY});\n\\echo locked\n")
    holder.stdin.flush()
    while holder.stdout.readline().strip() != "locked":
        pass
    env = process_env(private_postgres.url(scratch_postgres), tmp_path)
    migrator = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "migrate"],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        waiting = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        wait_until(lambda: private_postgres.psql(waiting, scratch_postgres).strip() == "1")
        assert migrator.poll() is None
        assert private_postgres.psql("SELECT to_regclass('alembic_version')", scratch_postgres) in (
            "",
            "\n",
        )
    finally:
        holder.stdin.write(f"SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY});\n\\q\n")
        holder.stdin.flush()
        holder.wait(30)
        try:
            _out, err = migrator.communicate(timeout=120)
        finally:
            migrator.kill()  # a no-op when it has exited, as it should have
    assert migrator.returncode == 0, err
    versions = private_postgres.psql("SELECT version_num FROM alembic_version", scratch_postgres)
    assert versions.split() == [head_revision()]


def wait_until(condition: object, within: float = 60.0) -> None:
    deadline = time.monotonic() + within
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {within} s")
        time.sleep(0.02)
