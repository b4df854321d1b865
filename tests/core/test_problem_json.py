"""Every error is RFC 9457 problem+json: unknown routes, wrong methods, bad bodies, the
domain's errors, oversized bodies and the unexpected ones (which tell nothing inside)."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy.exc import IntegrityError, OperationalError

from app.core.errors import (
    AppError,
    Conflict,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    PreconditionFailed,
    ServiceUnavailable,
    TooManyRequests,
    Unauthorized,
    Unprocessable,
)
from app.models import Client
from tests.core.conftest import BuildApp
from tests.factories import Factory, assert_problem, count_rows

CLIENTS = "/api/v1/clients"
LEAKS = ("Traceback", 'File "', "RuntimeError", "SELECT", "INSERT", "sqlalchemy", "secret-value")


def assert_no_leak(text: str) -> None:
    for leak in LEAKS:
        assert leak not in text, f"{leak!r} leaked: {text}"


async def test_unknown_route_is_404(client: AsyncClient) -> None:
    for url in ("/api/v1/nope", "/nope", "/api/v2/clients"):
        response = await client.get(url)
        body = assert_problem(response, 404, "not-found")
        assert body["instance"] == url
        assert body["request_id"] == response.headers["x-request-id"]


async def test_wrong_method_is_405_with_allow(client: AsyncClient) -> None:
    for method, url, allowed in (
        ("DELETE", CLIENTS, {"GET", "POST"}),
        ("PUT", f"{CLIENTS}/00000000-0000-4000-8000-000000000000", {"GET", "PATCH"}),
        ("PUT", "/api/v1/me", {"GET"}),
        ("GET", "/api/v1/auth/token", {"POST"}),
    ):
        response = await client.request(method, url)
        assert_problem(response, 405, "method-not-allowed")
        assert set(response.headers["allow"].replace(" ", "").split(",")) == allowed, url


@pytest.mark.parametrize(
    "raw",
    [b"{", b'{"name": "x",}', b"{'name': 'x'}", b'{"name": "x"} trailing'],
)
async def test_malformed_json_is_422_with_errors(
    client: AsyncClient, factory: Factory, raw: bytes
) -> None:
    world = await factory.world()
    response = await client.post(
        CLIENTS,
        headers={**world.staff.headers, "Content-Type": "application/json"},
        content=raw,
    )
    body = assert_problem(response, 422, "validation-error")
    assert body["errors"][0]["loc"][0] == "body"
    assert "JSON" in body["detail"]
    assert await count_rows(factory, Client) == 1


@pytest.mark.parametrize(
    "raw", [b"\xff\xfe{}", '{"name": "Acme"}'.encode("utf-16"), b'{"name": "\xe9"}']
)
async def test_a_json_body_that_is_not_utf8_is_400(
    client: AsyncClient, factory: Factory, raw: bytes
) -> None:
    """JSON is UTF-8 (RFC 8259); anything else is refused as unreadable, as documented."""
    world = await factory.world()
    response = await client.post(
        CLIENTS,
        headers={**world.staff.headers, "Content-Type": "application/json"},
        content=raw,
    )
    assert "UTF-8" in assert_problem(response, 400, "malformed-body")["detail"]
    assert await count_rows(factory, Client) == 1


async def test_a_body_that_is_not_json_is_422(client: AsyncClient, factory: Factory) -> None:
    world = await factory.world()
    for headers in ({"Content-Type": "text/plain"}, {}):
        response = await client.post(
            CLIENTS, headers={**world.staff.headers, **headers}, content=b'{"name": "Plain"}'
        )
        assert_problem(response, 422)
    assert await count_rows(factory, Client) == 1


async def test_validation_problem_shape(client: AsyncClient, factory: Factory) -> None:
    world = await factory.world()
    response = await client.post(
        CLIENTS, headers=world.staff.headers, json={"name": "", "billing_email": "nope"}
    )
    body = assert_problem(response, 422, "validation-error")
    assert body["title"] == "Validation error"
    assert body["instance"] == CLIENTS
    assert body["request_id"] == response.headers["x-request-id"]
    locs = [e["loc"] for e in body["errors"]]
    assert ["body", "name"] in locs
    assert ["body", "billing_email"] in locs
    assert all(e["msg"] for e in body["errors"])
    assert "(and 1 more)" in body["detail"]
    # Pydantic's echo of the input and its docs URL stay out.
    for error in body["errors"]:
        assert "input" not in error
        assert "url" not in error


async def test_query_and_path_validation(client: AsyncClient, factory: Factory) -> None:
    world = await factory.world()
    response = await client.get(CLIENTS, headers=world.staff.headers, params={"limit": "many"})
    body = assert_problem(response, 422)
    assert body["errors"][0]["loc"] == ["query", "limit"]
    response = await client.get(f"{CLIENTS}/123", headers=world.staff.headers)
    body = assert_problem(response, 422)
    assert body["errors"][0]["loc"] == ["path", "client_id"]


async def test_401_403_404_409_from_real_endpoints(client: AsyncClient, factory: Factory) -> None:
    world = await factory.world()
    unauthorized = await client.get(CLIENTS)
    assert_problem(unauthorized, 401)
    assert unauthorized.headers["www-authenticate"] == "Bearer"
    assert_problem(await client.get(CLIENTS, headers=world.contact.headers), 403, "forbidden")
    assert_problem(
        await client.get(
            f"{CLIENTS}/00000000-0000-4000-8000-000000000000", headers=world.staff.headers
        ),
        404,
    )
    await factory.category(world.tenant, "Hosting")
    conflict = await client.post(
        "/api/v1/service-categories", headers=world.staff.headers, json={"name": "Hosting"}
    )
    assert_problem(conflict, 409)


@pytest.fixture
async def error_app(build_app: BuildApp) -> AsyncIterator[tuple[Any, AsyncClient]]:
    """A separately built app with throwaway routes that fail in every way there is."""
    async with build_app() as (application, http):

        def raiser(exc: Exception) -> Any:
            async def endpoint() -> None:
                raise exc

            return endpoint

        failures: dict[str, Exception] = {
            "runtime": RuntimeError("secret-value: SELECT password_hash FROM users"),
            "key": KeyError("secret-value"),
            "integrity": IntegrityError(
                "INSERT INTO users (email) VALUES ('secret-value')", {}, Exception("dup key")
            ),
            "operational": OperationalError(
                "SELECT 1", {}, sqlite3.OperationalError("database is locked (secret-value)")
            ),
            "operational-bug": OperationalError(
                "SELECT 1", {}, sqlite3.OperationalError("no such table: secret-value")
            ),
            "not-found": NotFound(),
            "unauthorized": Unauthorized(),
            "forbidden": Forbidden(),
            "conflict": Conflict(),
            "precondition": PreconditionFailed(),
            "too-large": PayloadTooLarge("Too big."),
            "unprocessable": Unprocessable("Bad amount.", loc=("body", "amount")),
            "too-many": TooManyRequests("Slow down.", retry_after=42),
            "unavailable": ServiceUnavailable("Down for a moment."),
        }
        for name, exc in failures.items():
            application.add_api_route(f"/boom/{name}", raiser(exc), operation_id=f"boom{name}")
        yield application, http


async def test_an_unexpected_error_is_a_generic_500(
    error_app: tuple[Any, AsyncClient],
) -> None:
    _app, http = error_app
    for name in ("runtime", "key"):
        response = await http.get(f"/boom/{name}", headers={"X-Request-ID": "trace-me-123"})
        body = assert_problem(response, 500, "internal-error")
        assert_no_leak(response.text)
        assert set(body) <= {"type", "title", "status", "detail", "instance", "request_id"}
        assert body["request_id"] == "trace-me-123"
        assert "request id" in body["detail"]
        assert response.headers.get_list("x-request-id") == ["trace-me-123"]


async def test_database_errors_tell_no_sql(error_app: tuple[Any, AsyncClient]) -> None:
    _app, http = error_app
    conflict = await http.get("/boom/integrity")
    assert_problem(conflict, 409, "conflict")
    assert_no_leak(conflict.text)
    unavailable = await http.get("/boom/operational")
    assert_problem(unavailable, 503)
    assert unavailable.headers["retry-after"].isdigit()
    assert_no_leak(unavailable.text)
    # An OperationalError that is no outage (a missing table) is a bug: 500, not "retry".
    bug = await http.get("/boom/operational-bug")
    assert_problem(bug, 500, "internal-error")
    assert "retry-after" not in bug.headers
    assert_no_leak(bug.text)


@pytest.mark.parametrize(
    ("name", "status", "error"),
    [
        ("not-found", 404, NotFound),
        ("unauthorized", 401, Unauthorized),
        ("forbidden", 403, Forbidden),
        ("conflict", 409, Conflict),
        ("precondition", 412, PreconditionFailed),
        ("too-large", 413, PayloadTooLarge),
        ("unprocessable", 422, Unprocessable),
        ("too-many", 429, TooManyRequests),
        ("unavailable", 503, ServiceUnavailable),
    ],
)
async def test_domain_errors_become_problems(
    error_app: tuple[Any, AsyncClient], name: str, status: int, error: type[AppError]
) -> None:
    _app, http = error_app
    response = await http.get(f"/boom/{name}")
    body = assert_problem(response, status, error.type_slug)
    assert body["title"] == error.title
    assert body["instance"] == f"/boom/{name}"
    if status == 401:
        assert response.headers["www-authenticate"] == "Bearer"
    if status == 422:
        assert body["errors"] == [{"loc": ["body", "amount"], "msg": "Bad amount."}]
    if status == 429:
        assert response.headers["retry-after"] == "42"


async def test_content_length_over_the_limit_is_413(build_app: BuildApp, factory: Factory) -> None:
    world = await factory.world()
    async with build_app(max_body_bytes=1024) as (_app, http):
        body = b'{"name": "' + b"x" * 2000 + b'"}'
        response = await http.post(
            CLIENTS,
            headers={**world.staff.headers, "Content-Type": "application/json"},
            content=body,
        )
        problem = assert_problem(response, 413, "payload-too-large")
        assert "1024" in problem["detail"]
        assert problem["request_id"] == response.headers["x-request-id"]
        # Checked before anything else, so even without a token it is 413.
        anonymous = await http.post(
            CLIENTS, headers={"Content-Type": "application/json"}, content=body
        )
        assert_problem(anonymous, 413)
        # Just under the limit is fine.
        small = await http.post(CLIENTS, headers=world.staff.headers, json={"name": "y" * 100})
        assert small.status_code == 201, small.text
    assert await count_rows(factory, Client) == 2


async def test_a_chunked_body_growing_past_the_limit_is_413(
    build_app: BuildApp, factory: Factory
) -> None:
    world = await factory.world()

    async def chunks(total: int) -> AsyncIterator[bytes]:
        yield b'{"name": "'
        for _ in range(total // 100):
            yield b"z" * 100
        yield b'"}'

    async with build_app(max_body_bytes=1024) as (_app, http):
        response = await http.post(
            CLIENTS,
            headers={**world.staff.headers, "Content-Type": "application/json"},
            content=chunks(3000),
        )
        assert "content-length" not in response.request.headers
        assert_problem(response, 413, "payload-too-large")
        # A chunked body under the limit goes through.
        fine = await http.post(
            CLIENTS,
            headers={**world.staff.headers, "Content-Type": "application/json"},
            content=chunks(150),
        )
        assert fine.status_code == 201, fine.text
    assert await count_rows(factory, Client) == 2
