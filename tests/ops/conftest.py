"""Fixtures for the operations tests: a PostgreSQL cluster of the run's own."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.core.conftest import build_app
from tests.ops.private_postgres import PrivatePostgres

__all__ = ["build_app", "private_postgres"]


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
