"""Fixtures shared by the issue-12 test packages (autopay, rescue, disputes, consents, acting),
each conftest.py takes them all (`from tests.autopay.fixtures import *`): the scheduling
tests' frozen clock, fake gateway, runner and scene, the money tests' lenient HTTP client, and
`postgres_only` honoured."""

from __future__ import annotations

import pytest

from tests.payments.fixtures import lenient_client
from tests.scheduling.conftest import clock, gateway, runner, runner_settings, scene


@pytest.fixture(autouse=True)
def _postgres_only(request: pytest.FixtureRequest, database_url: str) -> None:
    """A test marked `postgres_only` needs PostgreSQL's row locks: skipped on SQLite."""
    if request.node.get_closest_marker("postgres_only") and database_url.startswith("sqlite"):
        pytest.skip("needs PostgreSQL (row locks, SKIP LOCKED)")


__all__ = [
    "_postgres_only",
    "clock",
    "gateway",
    "lenient_client",
    "runner",
    "runner_settings",
    "scene",
]
