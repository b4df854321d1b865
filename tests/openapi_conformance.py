"""The OpenAPI document promises what the service really sends: every response the test suite
gets from the suite's app is checked against it when the run ends.

For each answer of a documented operation: its status is documented; an error is
`application/problem+json`; a success's media type is the documented one; and each header a
generated client or a browser may rely on (`ETag`, `Idempotent-Replayed`, `Retry-After`,
`Location`, `WWW-Authenticate`, `X-Request-Id`) is documented for that status. A run that saw a
broken promise fails, listing each once, with a test that showed it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CHECKED_HEADERS = (
    "etag",
    "idempotent-replayed",
    "retry-after",
    "location",
    "www-authenticate",
    "x-request-id",
)
PROBLEM = "application/problem+json"


@dataclass(frozen=True)
class Seen:
    operation_id: str
    status: int
    media_type: str
    headers: frozenset[str]


@dataclass
class Recorder:
    app: Any = None
    seen: dict[Seen, str] = field(default_factory=dict)  # what was seen → a test that saw it
    current_test: str = ""

    def broken_promises(self) -> list[str]:
        if self.app is None or not self.seen:
            return []
        operations = {
            op["operationId"]: op
            for item in self.app.openapi()["paths"].values()
            for op in item.values()
            if isinstance(op, dict) and "operationId" in op
        }
        found: dict[str, str] = {}
        for seen, test in self.seen.items():
            operation = operations.get(seen.operation_id)
            if operation is not None:
                for problem in _compare(seen, operation):
                    found.setdefault(problem, test)
        return [f"{problem} (seen in {test})" for problem, test in sorted(found.items())]


def _compare(seen: Seen, operation: dict[str, Any]) -> list[str]:
    where = f"{seen.operation_id} answered {seen.status}"
    response = operation["responses"].get(str(seen.status))
    if response is None:
        return [f"{where}, which is not documented"]
    problems = []
    documented_types = set(response.get("content", {}))
    if seen.status >= 400 and seen.media_type != PROBLEM:
        problems.append(f"{where} as {seen.media_type!r}, not {PROBLEM}")
    elif seen.media_type and seen.media_type not in documented_types:
        problems.append(f"{where} as {seen.media_type!r}; documented: {sorted(documented_types)}")
    documented_headers = {name.lower() for name in response.get("headers", {})}
    for header in sorted(seen.headers - documented_headers):
        problems.append(f"{where} with the header {header}, not documented")
    return problems


RECORDER = Recorder()


class RecordResponses:
    """ASGI middleware around the suite's app: notes each answer of a routed operation."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def noting(message: Message) -> None:
            if message["type"] == "http.response.start":
                _note(scope, message)
            await send(message)

        await self.app(scope, receive, noting)


def _note(scope: Scope, message: Message) -> None:
    route = scope.get("route")
    operation_id = getattr(route, "operation_id", None)
    if not operation_id or scope["method"] not in getattr(route, "methods", ()):
        return  # not an operation of the document: no route, /docs, another method (405)
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in message["headers"]}
    media_type = headers.get("content-type", "").split(";")[0].strip().lower()
    seen = Seen(
        operation_id,
        message["status"],
        media_type,
        frozenset(h for h in CHECKED_HEADERS if h in headers),
    )
    RECORDER.seen.setdefault(seen, RECORDER.current_test)


def record_responses(app: Any) -> None:
    """Called by the suite's `app` fixture, before its first request."""
    RECORDER.app = app
    app.add_middleware(RecordResponses)


def pytest_runtest_setup(item: pytest.Item) -> None:
    RECORDER.current_test = item.nodeid


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    broken = RECORDER.broken_promises()
    if not broken:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    lines = [
        "",
        f"The OpenAPI document does not describe {len(broken)} answer(s) the service sent "
        "(app/core/openapi; routes declare statuses with problem_responses):",
        *(f"  - {line}" for line in broken),
    ]
    if reporter is not None:
        reporter.write_line("\n".join(lines), red=True)
    else:
        print("\n".join(lines))
    if session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
