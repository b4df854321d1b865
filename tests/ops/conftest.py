"""Fixtures for the operations tests: a PostgreSQL cluster of the run's own."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.core.conftest import build_app
from tests.ops.private_postgres import PrivatePostgres
from tests.ops.serve_process import Server

__all__ = ["build_app", "private_postgres", "serve"]

StartServer = Callable[..., Server]


@pytest.fixture(scope="session")
def _private_cluster() -> Iterator[PrivatePostgres]:
    cluster = PrivatePostgres().init()
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture
def private_postgres(_private_cluster: PrivatePostgres) -> PrivatePostgres:
    """Running when the test starts; a test may stop it (and should start it again, though
    the next test's fixture restarts one left stopped). Tests use databases of their own."""
    if not _private_cluster.running():
        _private_cluster.start()
    return _private_cluster


@pytest.fixture
def serve() -> Iterator[StartServer]:
    """`serve(env, workdir, *args)` starts `billing-portal serve`; whatever the test leaves
    running is stopped when it ends, even after a failed assertion."""
    started: list[Server] = []

    def start(env: dict[str, str], workdir: Path, *args: str) -> Server:
        server = Server(env, workdir, args=args).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
