"""X-Request-ID: a safe one given is echoed, anything else is replaced by a generated one;
every response carries it, and every problem body names the same id."""

from __future__ import annotations

import re

import pytest
from httpx import AsyncClient

from tests.factories import Factory

GENERATED = re.compile(r"^[0-9a-f]{32}$")


async def test_a_request_id_is_generated_when_none_is_given(client: AsyncClient) -> None:
    first = await client.get("/healthz")
    second = await client.get("/healthz")
    assert GENERATED.match(first.headers["x-request-id"])
    assert first.headers["x-request-id"] != second.headers["x-request-id"]


@pytest.mark.parametrize("given", ["abc-123", "req_01HV8Z.2:trace", "A" * 128, "0"])
async def test_a_safe_request_id_is_echoed(client: AsyncClient, given: str) -> None:
    response = await client.get("/healthz", headers={"X-Request-ID": given})
    assert response.headers["x-request-id"] == given


@pytest.mark.parametrize(
    "given",
    ["", "has space", "A" * 129, "semi;colon", 'quote"d', "<script>", "ünïcode", "a/b"],
)
async def test_an_unsafe_request_id_is_replaced(client: AsyncClient, given: str) -> None:
    response = await client.get("/healthz", headers=[(b"X-Request-ID", given.encode("utf-8"))])
    echoed = response.headers["x-request-id"]
    assert echoed != given
    assert GENERATED.match(echoed)


async def test_the_header_is_case_insensitive(client: AsyncClient) -> None:
    response = await client.get("/healthz", headers={"x-REQUEST-id": "mixed-case"})
    assert response.headers["x-request-id"] == "mixed-case"


async def test_only_one_request_id_header_is_sent(client: AsyncClient) -> None:
    response = await client.get("/healthz", headers={"X-Request-ID": "once"})
    assert response.headers.get_list("x-request-id") == ["once"]


async def test_errors_carry_the_same_id_in_header_and_body(
    client: AsyncClient, factory: Factory
) -> None:
    world = await factory.world()
    cases = [
        client.get("/api/v1/nope", headers={"X-Request-ID": "e-404"}),
        client.get("/api/v1/clients", headers={"X-Request-ID": "e-401"}),
        client.get("/api/v1/clients", headers={**world.contact.headers, "X-Request-ID": "e-403"}),
        client.delete("/api/v1/clients", headers={"X-Request-ID": "e-405"}),
        client.post(
            "/api/v1/clients",
            headers={**world.staff.headers, "X-Request-ID": "e-422"},
            json={"name": ""},
        ),
        client.post(
            "/api/v1/clients",
            headers={**world.staff.headers, "X-Request-ID": "e-card"},
            json={"name": "4111 1111 1111 1111"},
        ),
    ]
    for pending in cases:
        response = await pending
        given = response.request.headers["x-request-id"]
        assert response.status_code >= 400
        assert response.headers["x-request-id"] == given
        assert response.json()["request_id"] == given
        assert response.headers.get_list("x-request-id") == [given]


async def test_a_generated_id_is_the_one_in_the_body(client: AsyncClient) -> None:
    response = await client.get("/api/v1/nope")
    assert response.json()["request_id"] == response.headers["x-request-id"]


async def test_successful_api_responses_carry_it(client: AsyncClient, factory: Factory) -> None:
    world = await factory.world()
    response = await client.get(
        "/api/v1/me", headers={**world.staff.headers, "X-Request-ID": "ok-1"}
    )
    assert response.status_code == 200
    assert response.headers["x-request-id"] == "ok-1"
