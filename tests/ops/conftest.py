"""Fixtures for the operations tests: a PostgreSQL cluster of the module's own."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.ops.private_postgres import PrivatePostgres


@pytest.fixture(scope="module")
def private_postgres() -> Iterator[PrivatePostgres]:
    """Started; a test may stop and start it again (leave it running when done)."""
    cluster = PrivatePostgres().init()
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.destroy()
