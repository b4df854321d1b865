"""schemathesis over every operation of the served document, as staff, as a client user and as
an API key: every check, every phase (examples, coverage, fuzzing, stateful), a fixed seed and
few examples per operation so that the run stays within a few minutes on each database.

Each role has its own test, parametrized by operation; the stateful phase is one test per role."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import hypothesis
import pytest
import schemathesis
from schemathesis.config import SchemathesisConfig

from app.main import create_app
from tests.conftest import make_settings
from tests.fuzz.conftest import LiveServer

SEED = 20_261_204
# Examples per operation in the fuzzing phase; the coverage phase adds its own boundary cases.
MAX_EXAMPLES = 2
STATEFUL_STEPS = 5
STATEFUL_SCENARIOS = 5


CONFIG = SchemathesisConfig.from_dict(
    {
        "seed": SEED,
        "generation": {"max-examples": MAX_EXAMPLES, "database": "none"},
        "phases": {
            "examples": {"enabled": True},
            # An unexpected method is answered by the router alone (405), the same for every
            # operation: one such method keeps the check without multiplying the run by seven.
            "coverage": {"enabled": True, "unexpected-methods": ["TRACE"]},
            "fuzzing": {"enabled": True},
            "stateful": {"enabled": True, "max-steps": STATEFUL_STEPS},
        },
        "checks": {
            "enabled": True,
            # Widened (and only this check): schema-valid data may still break a business rule
            # that JSON Schema cannot state (a due date already past, more than the balance, a
            # wrong current password, an invoice in the wrong state, another client's method);
            # the service answers those with its documented 422. Everything else it accepts.
            "positive_data_acceptance": {
                "expected-statuses": ["2xx", "3xx", 401, 403, 404, 409, 422, 429]
            },
        },
    }
)


def served_document() -> dict[str, Any]:
    """The document the app serves (building the app opens no connection). Loaded when the
    module is collected: schemathesis makes one subtest per operation from it."""
    with tempfile.TemporaryDirectory() as data_dir:
        app = create_app(make_settings("sqlite+aiosqlite:///:memory:", Path(data_dir)))
        document: dict[str, Any] = app.openapi()
    return document


schema = schemathesis.openapi.from_dict(served_document(), config=CONFIG)


@schema.parametrize()
def test_as_staff(case: Any, live_server: LiveServer) -> None:
    case.call_and_validate(base_url=live_server.origin, headers=live_server.fresh_headers("staff"))


@schema.parametrize()
def test_as_client_user(case: Any, live_server: LiveServer) -> None:
    case.call_and_validate(base_url=live_server.origin, headers=live_server.fresh_headers("client"))


@schema.parametrize()
def test_as_api_key(case: Any, live_server: LiveServer) -> None:
    case.call_and_validate(
        base_url=live_server.origin, headers=live_server.fresh_headers("api_key")
    )


@pytest.mark.parametrize("role", ["staff", "client", "api_key"])
def test_stateful(live_server: LiveServer, role: str) -> None:
    class Machine(schema.as_state_machine()):  # type: ignore[misc]
        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"base_url": live_server.origin, "headers": live_server.fresh_headers(role)}

    Machine.run(
        settings=hypothesis.settings(
            max_examples=STATEFUL_SCENARIOS,
            stateful_step_count=STATEFUL_STEPS,
            derandomize=True,
            database=None,
            deadline=None,
            suppress_health_check=list(hypothesis.HealthCheck),
        )
    )
